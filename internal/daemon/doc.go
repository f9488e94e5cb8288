// Package daemon wires posd together and runs it: the gateway client (or
// the sandbox, embedded and listening on loopback), the journal, the
// poller, the lanes (internal/lane), the scanners, the displays, the local API and
// the link probe. cmd/posd only parses flags and calls Run, or Scan, which
// reads the scanners and pays nothing.
//
// Start-up goes in the order that keeps money safe. The journal is checked
// in a process of its own (bbolt may panic on damage) and, if damaged,
// opened read-only with the lanes out of service. Displays start before
// the lanes publish their state. The poller resumes every unfinished
// order before the API or a scanner can start a new one. Each scanner hands
// its codes to its lane through a small queue, so that the reader keeps
// draining its device while a pay's journal commit runs; a code read while
// posd stops is not paid.
//
// Shutdown is the reverse: scanners, displays and the API stop, the poller
// starts nothing new, calls in flight get up to shutdown_timeout, and what
// is left resumes from the journal at the next start. SIGHUP rereads the
// config and applies the merchant key, the displays and the settings of
// lanes not in use; anything else it names as needing a restart. The
// config's scanner and display types are registered here, beside what
// builds them, so a program that loads a config imports this package.
//
// Under systemd the daemon says READY=1 once it takes payments and feeds
// the watchdog from its main loop: a stuck posd is restarted, and the
// journal resumes what was in flight.
package daemon
