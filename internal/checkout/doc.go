// Package checkout is the lane: its open charge, the scans that pay it, and
// the attempts (orders) the poller drives. It is the one place where a
// scan, a charge and an order meet. A charge comes from the till through
// the local API (Open), or is made by a fixed-fee lane at its first scan; a
// scan comes from the lane's scanners (through the daemon) or from the API,
// and both reach Service.Scan.
//
// A scan is checked on the box first (scanner.Router, the duplicate window,
// the lane's state, the gateway link, the pay request itself), so that
// whatever the gateway would refuse is refused without using up the
// customer's code. Then the code's hash, the new order and its charge are
// written in one journal transaction and fsync'd, and only then is the
// order handed to poller.Launch: a pay never leaves without its record, and
// a code that was ever submitted is never submitted again. If the journal
// cannot be written, every lane goes out of service rather than take money
// without a record.
//
// The poller tells checkout of each journaled change of an order
// (OrderUpdated); checkout folds it into the charge and publishes a
// display.Event for the lane's displays and the till's stream. A result
// about a charge the lane has moved on from is a late result: for the till,
// never for a customer display. Cancel, Refund and Resolve are handed to
// the poller, which owns the order. checkout never calls the gateway: what
// an answer means is the poller's to decide.
package checkout
