// Package fleet sends a box's orders, charges, refunds and device states
// to the chain's head office through NATS JetStream.
//
// The journal writes every change into its outbox in the transaction that
// makes the change (journal.SetOutbox); the Publisher reads the outbox in
// order and publishes each entry's record, as it is then, to
// PREFIX.<merchant>.<store>.<lane>.orders|refunds|devices with a
// Nats-Msg-Id of the record's kind, id and version, and removes it only
// once the stream acknowledged it. A crash between the commit and the
// publish, or a lost ack, sends an entry again; the stream's duplicate
// window drops the copy, and the head office (cmd/posd-hq) keeps a
// record's highest version anyway. The payment path never waits: with the
// broker away, the outbox grows and drains when it is back.
//
// posd publishes to the stream the operator created (README: "The head
// office"); it creates and changes no stream.
package fleet
