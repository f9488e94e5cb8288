// Package payment speaks the gateway protocol of docs/protocol.md: it builds the
// six calls (pay, query, reverse, order_close, refund, refund_query), signs
// them with the merchant key, and classifies every answer into a Result.
// A scanned code reaches it only as the AuthCode of a PayRequest that the
// poller sends for an order a lane has journaled; the Result goes back to
// the poller's state machine, which alone decides what happens next. The
// package knows no lane, device, display or journal.
//
// Classification is strict in one direction, because that is where money
// is lost. Only a signed answer (Verify) about the order that was sent (the
// same merchant, mch_trade_id and amount: Expect) may say Paid or NotPaid.
// A timeout, a transport or HTTP error, code 600 or 601, a bad signature or
// an answer about another order is Unknown, never a decline: the order may
// exist and be paid, and only a query can tell. Results are values, never
// errors, so that no caller can drop a case by returning early.
//
// A request is sent once, and only where it was meant to go. The client
// keeps net/http from replaying a pay (no GetBody), refuses redirects (they
// would carry the payment code elsewhere) and insists on https with a
// verified certificate, plain http being allowed to loopback only (the
// sandbox). A request that provably never left the box (no connection, no
// byte written, as httptrace tells) is NotSent: nothing exists at the
// gateway and the customer's code is not used up. The link itself is
// watched with bare TCP and TLS handshakes (Probe, Watch, OnLink), never a
// payment call.
//
// No Result carries the key or a full payment code: MaskCode and CodeHash
// are the forms the rest of posd keeps. payment/sandbox plays the gateway
// for tests and for `make run`.
package payment
