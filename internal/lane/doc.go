// Package lane is the store's checkout lanes: each lane's open charge, the
// scans that pay it, and the attempts (orders) the poller drives. It is
// the one place where a scan, a charge and an order meet. A charge comes
// from the till through the local API (Open), or is made by a fixed-fee
// lane at its first scan; a scan comes from the lane's scanners (through
// the daemon) or from the API, and both reach Service.Scan.
//
// A scan is checked on the box first (scanner.Router, the duplicate window,
// the lane's state, the gateway link, the pay request itself), so that
// whatever the gateway would refuse is refused without using up the
// customer's code. Then the code's hash, the new order and its charge are
// recorded in one journal transaction and fsync'd (journal.Tx.RecordAttempt),
// and only then is the order handed to poller.Launch: a pay never leaves
// without its record, and a code that was ever submitted is never
// submitted again. If the journal cannot be written, every lane goes out
// of service rather than take money without a record.
//
// Each lane has a lock of its own, held across that lane's journal writes:
// one lane's fsync never holds another lane's scan. The service's own lock
// guards only whether the lanes are in service and the gateway reachable,
// and is never held while a lane's lock is taken.
//
// The poller journals each step of an order together with what it does to
// the order's charge (journal.Tx.SaveStep, money.Settle) and then tells the
// lane (OrderUpdated), which takes the committed charge and publishes a
// display.Event in the house's words for the lane's displays and the
// till's stream. A result about a charge the lane has moved on from is a
// late result: for the till, never for a customer display. The lane's own
// changes of a charge (the till's abort, a cancel, an expiry) are applied
// to the charge as stored (journal.Tx.UpdateCharge). Cancel, Refund and
// Resolve of an order are handed to the poller, which owns the order. A
// lane never calls the gateway: what an answer means is the poller's to
// decide.
package lane
