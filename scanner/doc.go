// Package scanner turns input devices into payment codes. Each reader is a
// Source: Lines (the terminal, or any line stream), Serial (a serial
// barcode scanner or sound-wave receiver), Evdev (a keyboard-wedge scanner,
// grabbed so its codes never type into a focused window) and HID (a USB
// scanner in keyboard or HID-POS mode). Under them sit decoders that need
// no device, so that every byte format is tested as bytes: LineFramer,
// KeyDecoder with EvdevStream and BootReports, and HIDPOS.
//
// A device's Source (Serial, Evdev, HID) runs until its context ends. It
// finds the device again after an unplug, with a jittered backoff so that a
// lane's devices do not retry in step, and tells its health through a
// Report (GET /v1/devices). Each code goes
// to the emit function as a Scan; in posd the daemon queues it for the
// lane and the reader reads on, because a keyboard scanner's kernel queue
// holds about ten keys and must not wait for a journal commit.
//
// Router checks a code against the wallet table (digits, prefix, length)
// and names its wallet and pay_type; Dedup makes the same code read twice
// within a window one scan. The lane uses both before anything is written.
//
// A reader never pays: it does not talk to the gateway, never sees a
// charge or an order, and nothing comes back to it from a payment. A
// partial code (too long a gap between keys, events the kernel dropped, a
// device replugged mid-code) is thrown away, never completed or guessed:
// the cashier scans again.
package scanner
