// Package display shows what happens at a lane to the customer and the
// cashier. The lanes (internal/lane) publish an Event to a Hub for every change of a lane:
// a charge awaiting a scan, paying, paid, declined, a scan refused, the
// gateway offline, a device come or gone. Each display subscribes with its
// own bounded queue and runs on its own goroutine (RunDevice, Printer.Run,
// one per Web stream), so a slow or broken display drops stale frames and
// shows the newest state; Publish never blocks and a display never delays a
// payment.
//
// The displays are Terminal (a line per event, for development), VFDDevice
// (a 2 × 20 pole display on a serial port), Printer (ESC/POS receipts,
// queued durably and printed once the printer reports itself ready) and Web
// (the customer page and the till's event stream, as server-sent events).
//
// An Event carries only what may be shown: never a payment code, a key or
// a signature. A customer sees less still (ForCustomer, CustomerView): a late
// result, the outcome of a charge the lane has moved on from, goes to the
// till alone, never to a pole display, web page or receipt, where it would
// pass for the current customer's. Text bound for a printer loses its
// control characters, since an ESC in a trade id would be a command.
//
// Displays only receive. They never call the gateway or the poller and
// cannot change an order or a charge (the printer's queue holds receipts,
// nothing else); a display that fails says so through its Report and the
// payment goes on without it.
package display
