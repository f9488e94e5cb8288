package poller

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"example.com/posd/internal/money"
	"example.com/posd/payment"
)

// An answer of the grid: a result the gateway gives to a call.
type answer struct {
	name string
	r    payment.Result
}

func ans(name string, o payment.Outcome, ts int) answer {
	return answer{name, payment.Result{Outcome: o, TradeState: ts, Reason: "grid"}}
}

// status is a close or refund answer; a refund's carries its amount (-1:
// the grid sets the refund's own).
func status(name string, o payment.Outcome, st int, fee int64) answer {
	return answer{name, payment.Result{Outcome: o, TradeState: payment.NoTradeState, Status: st, RefundFee: fee, Reason: "grid"}}
}

var (
	lost    = ans("unknown", payment.Unknown, payment.NoTradeState)
	notSent = ans("not sent", payment.NotSent, payment.NoTradeState)
	missing = ans("301", payment.NotFound, payment.NoTradeState)
	paid    = ans("paid", payment.Paid, payment.StatePaid)
	// What an order query answers. trade_state 1: refunded, by posd's
	// reverse, its fallback, or since a restored journal's copy; 3 and 4
	// after a close or reverse.
	queryAnswers = []answer{paid, ans("refunding", payment.Paid, payment.StateRefunding),
		ans("closed", payment.NotPaid, payment.StateClosed), ans("reversed", payment.NotPaid, payment.StateReversed),
		ans("declined", payment.NotPaid, payment.StateFailed), ans("paying", payment.Pending, payment.StatePaying),
		missing, lost, notSent}
	refundAnswers = []answer{status("done", payment.Done, 0, -1), status("processing", payment.Done, 1, -1),
		status("failed", payment.Pending, -1, -1), lost, notSent}
)

// A cell of the grid: an order as the flow brings it to its phase, and
// the answers the gateway gives to the call it makes there.
type cell struct {
	name    string
	o       money.Order
	answers []answer
}

// grid is every kind of order the flow brings to each phase, with the
// answers the gateway gives it: what Handled must list.
func grid() []cell {
	p := DefaultPolicy()
	var g []cell
	add := func(name string, o money.Order, answers ...answer) { g = append(g, cell{name, o, answers}) }
	base := fresh()
	base.CreatedAt = t0.Add(-time.Hour) // the steps are at t0: long after the pay, unless "recent"
	type variant struct {
		name string
		f    func(*money.Order)
	}
	// each is every combination of the variants, each on or off.
	each := func(phase money.Phase, set func(*money.Order), vs []variant, answers ...answer) {
		for bits := 0; bits < 1<<len(vs); bits++ {
			o, name := base, string(phase)
			o.Phase, o.AuthCode = phase, ""
			set(&o)
			for i, v := range vs {
				if bits&(1<<i) != 0 {
					v.f(&o)
					name += ", " + v.name
				}
			}
			add(name, o, answers...)
		}
	}
	seen := variant{"seen", func(o *money.Order) { o.Seen, o.TradeID = true, "T1" }}
	recent := variant{"recent (stopped by the till)", func(o *money.Order) { o.CreatedAt, o.Queries = t0.Add(-2*time.Second), 1 }}
	restored := variant{"restored", func(o *money.Order) { o.Restored = true }}
	last := func(f func(*money.Order)) variant { return variant{"last try", f} }
	none := func(*money.Order) {}

	add("pay", fresh(), paid, ans("declined", payment.NotPaid, payment.StateFailed), ans("paying", payment.Pending, payment.StatePaying),
		lost, notSent, ans("107", payment.Duplicate, payment.NoTradeState), ans("refused", payment.Rejected, payment.NoTradeState))
	each(money.PhaseQuery, none, []variant{seen, last(func(o *money.Order) { o.Queries = p.QueryAttempts - 1 })}, queryAnswers...)
	each(money.PhaseCheck, none, nil, paid, ans("declined", payment.NotPaid, payment.StateFailed),
		ans("closed", payment.NotPaid, payment.StateClosed), ans("paying", payment.Pending, payment.StatePaying), missing, lost, notSent)

	reversing := func(o *money.Order) { o.ReverseSent, o.Queries = true, p.QueryAttempts }
	each(money.PhaseReverse, reversing, []variant{seen, recent, last(func(o *money.Order) { o.Reverses = p.ReverseAttempts - 1 })},
		ans("reversed", payment.NotPaid, payment.StateReversed), missing, ans("no reverse", payment.NoReverse, payment.NoTradeState),
		ans("recall Y", payment.Pending, payment.StateRevoking), lost, notSent)
	// A gateway without reverse neither reverses nor says 4.
	each(money.PhaseFallback, reversing, []variant{seen, recent}, slices.Delete(slices.Clone(queryAnswers), 3, 4)...)
	each(money.PhaseClose, reversing, []variant{seen, recent, last(func(o *money.Order) { o.Tries = p.ReverseAttempts - 1 })},
		status("closed", payment.Done, 0, 0), status("not closed", payment.Pending, -1, 0), missing, lost, notSent)
	each(money.PhaseConfirm, reversing, []variant{seen, recent, restored}, queryAnswers...)
	each(money.PhaseConfirm, func(o *money.Order) { // the fallback's refund was refused
		o.ReverseSent, o.Seen, o.RefundBy, o.RefundID = true, true, "fallback", FallbackRefundID(o.MchTradeID)
		o.Refunds = []string{o.RefundID}
	}, nil, queryAnswers...)
	each(money.PhaseReconcile, reversing, []variant{seen, restored}, queryAnswers...)
	// A paid order of a restored journal: paid, or refunded since.
	each(money.PhaseVerify, func(o *money.Order) { o.State, o.Seen, o.Restored = money.Paid, true, true },
		[]variant{last(func(o *money.Order) { o.Tries = 11 }),
			{"with refunds", func(o *money.Order) { o.Refunds, o.RefundedFee = []string{RestRefundID(o.MchTradeID)}, 30 }}},
		paid, ans("refunding", payment.Paid, payment.StateRefunding), lost, notSent)

	// The refund path: an operator's refund, or the fallback's of a
	// payment made too late; the refund_query asked before it is sent,
	// the refund, the refund_query that judges it.
	refunding := func(by string) func(*money.Order) {
		return func(o *money.Order) {
			o.State, o.Seen, o.ReverseSent = money.Paid, true, by == "fallback"
			startRefund(o, by, t0)
		}
	}
	sending := func(by string) func(*money.Order) {
		return func(o *money.Order) {
			refunding(by)(o)
			o.Phase, o.RefundCheck = money.PhaseRefund, false
		}
	}
	asking := func(by string, sends, missed int) func(*money.Order) {
		return func(o *money.Order) {
			sending(by)(o)
			o.Phase, o.RefundUnknown, o.RefundSends, o.RefundMissing = money.PhaseRefundQuery, true, sends, missed
		}
	}
	partly := variant{"in part", func(o *money.Order) { o.RefundFee = 30 }}
	refundLast := last(func(o *money.Order) { o.Tries = p.ReverseAttempts - 1 })
	resend := variant{"resent after a lost answer", func(o *money.Order) { o.RefundUnknown, o.RefundSends = true, 1 }}
	refused := ans("refused", payment.Rejected, payment.NoTradeState)
	for _, by := range []string{"operator", "fallback"} {
		vs, asked := []variant{partly, restored}, append(refundAnswers, missing)
		if by == "fallback" {
			// All of it, and a restored journal's fallback refund ends as
			// any other. Its id is the order's: only a restore could have
			// made or failed it already.
			vs, asked = nil, []answer{missing, lost, notSent}
		}
		// An operator's figure counts refunds posd does not know: this one
		// may be among them, and more than is left, or not.
		counted := variant{"an operator's figure", func(o *money.Order) { o.RefundFee, o.RefundedFee, o.RefundedElsewhere = 50, 30, 30 }}
		beyond := variant{"more than is left", func(o *money.Order) { o.RefundFee, o.RefundedFee, o.RefundedElsewhere = 50, 80, 80 }}
		long := variant{"missing a while", func(o *money.Order) { o.RefundMissing = 2*p.ReverseAttempts + 5 }}
		if by == "operator" {
			vs = append(vs, counted, beyond, long)
		}
		each(money.PhaseRefundQuery, refunding(by), vs, asked...)
		each(money.PhaseRefund, sending(by), append(vs, resend, refundLast), append(refundAnswers, refused)...)
		each(money.PhaseRefundQuery, asking(by, 1, 0), vs, append(refundAnswers, missing)...)
		each(money.PhaseRefundQuery, asking(by, p.ReverseAttempts, 0), vs, append(refundAnswers, missing)...)
		each(money.PhaseRefundQuery, asking(by, p.ReverseAttempts, 2*p.ReverseAttempts+5), vs, append(refundAnswers, missing)...)
	}
	// A discovery of the refunds a paid order has at the gateway: the
	// order was seen refunding (trade_state 1), or the journal is a
	// restored copy; two refund ids are known. What it finds is never all
	// of the order: the journal counts the refunds it knows of already.
	discovering := func(o *money.Order) {
		o.State, o.Seen, o.TradeState = money.Paid, true, payment.StateRefunding
		o.Refunds = []string{RestRefundID(o.MchTradeID), RefundIDFor(o.MchTradeID, "T1")}
		discoverRefunds(o, t0)
	}
	each(money.PhaseRefundQuery, discovering, []variant{restored,
		{"reversed once", func(o *money.Order) { o.ReverseSent = true }},
		{"the last id", func(o *money.Order) { o.RefundAsk = 2 }},
		{"found 30", func(o *money.Order) { o.RefundsFound, o.FoundFee = 1, 30 }},
		{"missing a while", func(o *money.Order) { o.RefundMissing = 2 }},
		{"trade_state 0", func(o *money.Order) { o.TradeState = payment.StatePaid }},
	}, status("done, 30", payment.Done, 0, 30), status("processing", payment.Done, 1, 30),
		status("failed", payment.Pending, -1, 30), missing, lost, notSent)
	return g
}

// TestHandledIsWhatStepDoes: Handled lists exactly the transitions Step
// makes on the grid, so that a run which reached all of Handled has been
// down every path of the machine, and a new branch of Step cannot go
// unlisted.
func TestHandledIsWhatStepDoes(t *testing.T) {
	p := DefaultPolicy()
	now := t0
	made := map[Transition]string{} // an example of each
	for _, c := range grid() {
		for _, a := range c.answers {
			if a.r.RefundFee < 0 {
				a.r.RefundFee = RefundFeeOf(&c.o)
			}
			tr := TransitionOf(c.o, a.r, Step(c.o, a.r, now, p))
			if _, ok := made[tr]; !ok {
				made[tr] = c.name + " ← " + a.name
			}
		}
	}
	listed := map[Transition]bool{}
	for _, tr := range Handled() {
		if listed[tr] {
			t.Errorf("Handled lists %v twice", tr)
		}
		listed[tr] = true
		if _, ok := made[tr]; !ok {
			t.Errorf("Handled lists %v, which Step never makes on the grid", tr)
		}
	}
	var unlisted []string
	for tr, example := range made {
		if !listed[tr] {
			unlisted = append(unlisted, fmt.Sprintf("%q, // %s", tr, example))
		}
	}
	slices.Sort(unlisted)
	if len(unlisted) > 0 {
		t.Errorf("Step makes %d transitions Handled does not list:\n%s", len(unlisted), strings.Join(unlisted, "\n"))
	}
}
