// Package money is the house vocabulary: the records posd keeps about money
// and the words for their states, named once and used by every package
// (the journal stores them, the poller drives orders, the lanes hold
// charges, the API and the displays show them).
//
//   - An Order is one payment attempt: one customer code, one
//     mch_trade_id, forever. Its State is what the gateway says of it
//     (paying, paid, declined, reversed, closed, failed, unknown,
//     refunded); its Phase is the call it makes next in the confirmation
//     flow (poller.Step).
//   - A Charge is an amount a lane asks for. It is paid by at most one of
//     its attempts (AttemptIDs, oldest first); its State is what the till
//     and the customer see (awaiting_scan, paying, paid, canceled,
//     refunded, needs_attention).
//
// The words are the API's: the journal, /v1/events and every display use
// them as they are, so that no layer maps one vocabulary onto another.
package money
