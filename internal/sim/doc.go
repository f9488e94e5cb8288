// Package sim is a deterministic simulation of the whole daemon, in the
// manner of FoundationDB's and TigerBeetle's (VOPR): one process, a virtual
// clock (a testing/synctest bubble), one seed, and the real code — lanes,
// charges, the poller and its state machine, the bbolt journal, the payment
// client with its signing, decoding and classification — against a gateway
// model whose ledger is the truth.
//
// Tills, scanners and operators act at random from the seed; the gateway
// answers late, wrongly signed, not at all or from a lagging replica; the
// process crashes and restarts, and its journal is restored from older
// copies. After every event the money rules are checked as invariants: a
// pay is never sent twice, a code never goes out under two ids, no refund
// exceeds what was paid, what posd reports paid the ledger has as paid, a
// customer display never shows another charge's result. posd's wall clock
// jumps (seconds to years, either way, set right later or not until a
// restart) while the virtual clock is the truth: no record is pruned
// before its retention by the true time or before the head office had it,
// and no till reference, Idempotency-Key or refund binds a record dated
// in the future or another sale's charge. The same seed gives the same
// run, so a violation is a replayable trace.
//
// With a posd_defects build, internal/defect puts old bugs back one at a
// time to show that the simulation catches each. Nothing here runs in the
// daemon: it is a test harness (make sim).
package sim
