// Package defect puts back, on purpose, money-path defects posd once had,
// one at a time, so that the simulation (internal/sim) can prove it
// catches each of them: a check that never fails proves nothing. The
// journal, the poller, the lanes, the clock and reconciliation ask
// On(name) at the spot where the defect lived; each name is declared, with
// what it puts back, in defect.go.
//
// Only a binary built with the posd_defects tag can turn one on; in every
// other build On is the constant false and the compiler drops the old code
// paths, so a posd that takes money cannot carry them.
package defect
