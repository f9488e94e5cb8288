package defect

// A Defect names one money-path defect the simulation must catch.
type Defect int

// The defects, each where it lived and what it did.
const (
	// StaleChargeShown: a late result of an earlier charge shown on the
	// lane's customer displays (lane).
	StaleChargeShown Defect = iota + 1
	// ReverseTakenForPaid: trade_state 1 after posd's own reverse taken
	// for "paid" (poller).
	ReverseTakenForPaid
	// ReusedIDsAdopted: the journal's epoch kept across restarts (a
	// restored journal reuses ids) and a 107 adopted as posd's own order
	// (journal, poller).
	ReusedIDsAdopted
	// ResolveWhileConfirming: an operator's resolve accepted for an order
	// posd is still confirming (poller).
	ResolveWhileConfirming
	// LostRefundAnswerTakenAsRefused: a refund refused after a try whose
	// answer was lost taken as "not refunded", and sent again at once
	// (poller).
	LostRefundAnswerTakenAsRefused
	// NotFoundAfterSignedAnswer: a 301 after a signed answer taken as
	// "nothing was created" (poller).
	NotFoundAfterSignedAnswer
	// CodeBurnedAtPay: a charge opened without what its pay needs, the
	// code burned at pay time (lane).
	CodeBurnedAtPay
	// ChargeStepApart: a charge moved by its attempt's step in a
	// transaction of its own: a crash between the two leaves a charge
	// saying other than its payment (journal).
	ChargeStepApart
	// WitnessBesideJournal: a restore recognised by the witness beside
	// the journal only: a copy of the whole state folder, or a journal on
	// a new disk, looks current (journal).
	WitnessBesideJournal
	// RefundIDByCount: a refund's mch_refund_id numbered by the order's
	// count of refunds, which a restored journal rewinds, and sent
	// without asking first (lane, poller).
	RefundIDByCount
	// UnaccountedRefundInFull: a refund the gateway shows (trade_state 1)
	// that none of posd's ids account for taken for a refund in full
	// (poller).
	UnaccountedRefundInFull
	// ReconcileAgainstStart: a reconciliation that compares the gateway
	// with the journal as it was when the run began (reconcile).
	ReconcileAgainstStart
	// CanceledKeepsReference: a sale's reference kept by its charge after
	// it ended canceled (lane).
	CanceledKeepsReference
	// OneSidedWindow: a window judged one-sided by the wall clock: a
	// record dated in the future (a clock that ran ahead wrote it) binds a
	// reference, an Idempotency-Key and a refund (clock, lane).
	OneSidedWindow
	// PruneByWallClock: pruning's cutoff taken from the wall clock: a
	// clock run ahead deletes the store's history (clock).
	PruneByWallClock
)

// All is every defect, in order.
var All = []Defect{StaleChargeShown, ReverseTakenForPaid, ReusedIDsAdopted, ResolveWhileConfirming,
	LostRefundAnswerTakenAsRefused, NotFoundAfterSignedAnswer, CodeBurnedAtPay, ChargeStepApart,
	WitnessBesideJournal, RefundIDByCount, UnaccountedRefundInFull, ReconcileAgainstStart,
	CanceledKeepsReference, OneSidedWindow, PruneByWallClock}

var names = [...]string{"none", "StaleChargeShown", "ReverseTakenForPaid", "ReusedIDsAdopted", "ResolveWhileConfirming",
	"LostRefundAnswerTakenAsRefused", "NotFoundAfterSignedAnswer", "CodeBurnedAtPay", "ChargeStepApart",
	"WitnessBesideJournal", "RefundIDByCount", "UnaccountedRefundInFull", "ReconcileAgainstStart",
	"CanceledKeepsReference", "OneSidedWindow", "PruneByWallClock"}

func (d Defect) String() string {
	if d >= 0 && int(d) < len(names) {
		return names[d]
	}
	return "Defect(?)"
}
