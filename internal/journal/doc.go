// Package journal is posd's durable record: every order, every step of its
// confirmation and every charge, written and fsync'd before the request
// that depends on it leaves the box. It owns its schema: the house's
// records (internal/money) are written only through its typed operations
// (records.go), each one change in the caller's transaction. The lane
// records a scan's attempt — the code's hash, the order and its charge —
// in one transaction before the pay (RecordAttempt); the poller saves each
// step before the next call (SaveStep, in a Batch: concurrent steps share
// one fsync), and the step moves the order's charge in the same
// transaction (money.Settle), so the two never disagree, even across a
// crash; a lane changes a charge as it is stored (UpdateCharge), never
// from a copy a step may have overtaken. Printers keep their receipts here
// until printed. At a start, what is unfinished is read back (the live
// index) and resumed; what is final goes after the retention (Prune).
//
// It is a bbolt file owned by one process, and knows nothing of the
// gateway. Orders and charges, its bulk, are stored
// DEFLATE-compressed against a dictionary of typical records (codec.go);
// every read hands back their JSON, and the plain JSON an older posd wrote
// is read as it is. What it guarantees is that a write that returned
// is on disk and that a write that failed says so: every write error wraps
// ErrUnwritable, and the caller then stops taking payments rather than take
// money without a record.
//
// It guards against copies of itself. Each open draws a fresh epoch, from
// which mch_trade_ids are made, so a journal restored from a backup or
// cloned to a second box never reuses an id the gateway has seen. A
// witness file beside it (path.seen) holds the last run and transaction: a
// journal behind its witness is an older copy put back (Restored), and the
// poller asks the gateway again about every order it says was paid. The
// witness also keeps a CRC of the freelist the last commit wrote, so that a
// start checks a journal closed cleanly in bounded time (CheckStart) and
// reads the whole file only when in doubt (after a power cut or a restore).
// A file that fails its check (run in a process of its own: bbolt panics on
// some damage) is opened read-only, so that what it holds can still be
// exported.
//
// A full payment code is never written: orders hold it masked and hashed.
package journal
