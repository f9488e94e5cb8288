// Package device opens the ports that scanners, displays and printers sit
// on (serial ports, USB printer-class nodes, network printers) and keeps
// the health of every device for GET /v1/devices.
//
// An Opener opens its port anew on every call, and a port named by USB id
// (VVVV:PPPP[:SERIAL], ParseUSBID) is looked up again each time, so a
// device unplugged and plugged back in under another /dev node is found by
// the reader or display that owns it. The owners decide when to open, retry
// and close; this package holds no port open and starts no goroutine.
//
// Each device tells its State (connected, gone, permission denied,
// degraded) through the function a Registry hands out (Reporter), and
// StateOf turns an open error into a State an operator can act on. The
// registry only records: a device's health never decides whether a payment
// is taken, and nothing here reads a code or knows an order.
package device
