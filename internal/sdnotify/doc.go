// Package sdnotify speaks systemd's notify protocol: READY=1 once posd can
// take payments, WATCHDOG=1 from the daemon's main loop, STOPPING=1 on the
// way out. The watchdog is what restarts a posd that hangs; the journal
// then resumes whatever was in flight, so a restart costs time, not money.
// Feeding it from the main loop, not from a timer goroutine of its own, is
// the point: a loop that stopped turning must stop the pings.
//
// WatchdogInterval is half of WATCHDOG_USEC, and 0 when systemd asked for
// no watchdog or asked another process. Each Notify is one datagram on a
// connection of its own: nothing is held open between messages.
//
// Without NOTIFY_SOCKET (not under systemd) every call does nothing, and a
// failure to notify is only logged: telling systemd never stands in the way
// of a payment.
package sdnotify
