// Package defect puts back, on purpose, the money-path defects that issue 9
// fixed, one at a time, so that the simulation (internal/sim) can prove it
// catches each of them: a check that never fails proves nothing. The
// journal, the poller and the lanes ask On(n) at the spot where defect n
// lived.
//
// Only a binary built with the posd_defects tag can turn one on; in every
// other build On is the constant false and the compiler drops the old code
// paths, so a posd that takes money cannot carry them.
//
//  1. a late result of an earlier charge shown on the lane's customer displays
//  2. trade_state 1 after posd's own reverse taken for "paid"
//  3. the journal's epoch kept across restarts (a restored journal reuses
//     ids) and a 107 adopted as posd's own order
//  4. resolve accepted for an order posd is still confirming
//  5. a refund refused after a try whose answer was lost taken as "not refunded"
//  6. a 301 after a signed answer taken as "nothing was created"
//  7. a charge opened without what its pay needs (the code burned at pay time)
//  8. a charge moved by its attempt's step in a transaction of its own (issue
//     12: a crash between the two leaves a charge saying other than its payment)
//  9. a restore recognised by the witness beside the journal only: a copy
//     of the whole state folder, or a journal on a new disk, looks current
//  10. a refund's mch_refund_id numbered by the order's count of refunds,
//     which a restored journal rewinds, and sent without asking first
//  11. a refund the gateway shows (trade_state 1) that none of posd's ids
//     account for taken for a refund in full
//  12. a reconciliation that compares the gateway with the journal as it
//     was when the run began
//  13. a sale's reference kept by its charge after it ended canceled
//  14. a window judged one-sided by the wall clock: a record dated in the
//     future (a clock that ran ahead wrote it) binds a reference, an
//     Idempotency-Key and a refund
//  15. pruning's cutoff taken from the wall clock: a clock run ahead
//     deletes the store's history
package defect
