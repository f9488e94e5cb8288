// Package hq is head office's side of the fleet: posd-hq's consumer, its
// database and its view. Every box publishes its records (orders,
// charges, refunds, devices) through its outbox (internal/fleet) to its
// store's NATS stream; head office's stream sources the stores' (through
// a relay per store, docs/fleet) and the Consumer reads it with a durable
// JetStream consumer into a Store: SQLite for a small chain, PostgreSQL
// for a large one, one table keeping each record at its highest version.
//
// # Trust
//
// Head office trusts no box and no store. A record is taken only on
// exactly the subject its merchant, store, lane and kind make (the subject
// head office's stream wrote the source's store into), from a body Parse
// accepts (no NUL, no invalid UTF-8, no control characters or overlong
// names) at a version below head office's clock in milliseconds plus
// MaxVersionAhead; anything else is terminated and counted, never
// delivered for ever. No hash of a payment code is stored.
//
// # Delivery
//
// A batch is stored in one transaction and acknowledged after it
// committed: a consumer killed mid-batch acknowledged nothing of it, and
// the versions make a second delivery change nothing. A batch the
// database fails is stored one record at a time; while the database is
// unavailable nothing is terminated.
//
// The view (Handler, Protect) serves the unresolved orders, devices down
// and day totals, paged, as JSON, a page and a CSV export, behind a token
// off loopback.
package hq
