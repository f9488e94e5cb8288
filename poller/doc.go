// Package poller drives every payment attempt to a final state. An attempt
// is an Order: one code, one mch_trade_id, forever. The lane journals a new
// order in its pay phase and hands it to Launch, which sends the pay at
// once; from then on the poller alone makes the order's gateway calls, and
// it tells the lane of every change through Options.OnUpdate.
//
// The flow is a pure state machine, Step: given an order, the classified
// answer to the call its phase made, and the time, it returns the next
// order. The runner journals that order before it makes the call that
// depends on it, so a crash at any point resumes from the journal (Resume)
// knowing what may have been sent. A pay cut short by a crash is queried,
// never sent again: the full code lives in memory only, and is dropped as
// soon as the pay has any outcome.
//
// DefaultPolicy is the schedule of docs/protocol.md, "The confirmation
// flow": query every 5 s, six times; then reverse, a few times more while
// the gateway answers recall Y or nothing trusted; a gateway without
// reverse gets the fallback instead (query, then refund a paid order or
// close an unpaid one); then one confirming query decides what posd
// reports. An order still unknown after that needs attention: the
// reconciler asks again, ever less often, and reverses it if it is still
// open, until an answer or an operator settles it. Along the way an
// Unknown answer never becomes a decline, a 301 after a signed answer
// showed the order is never taken for "nothing was created", and
// trade_state 1 (a refund started) is never "paid".
//
// Run dispatches due orders with a bounded number of calls in flight; Wait
// lets those finish on shutdown, then cuts them short and leaves the rest
// to the journal. The poller knows no scanner or display.
package poller
