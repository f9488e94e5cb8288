package poller

import (
	"slices"

	"example.com/posd/internal/money"
	"example.com/posd/payment"
)

// Transition is one kind of step of the state machine: the phase the
// order was in, what changes that phase's meaning (the refund phases'
// RefundBy), the call it made, and the class of the answer with the
// branch Step took on it ("pending → reverse": the last query's answer
// was "paying"). Each branch of Step has transitions of its own, so that
// a run which reached them all has been down every path of the machine.
type Transition struct {
	Phase money.Phase
	Mode  string
	Call  payment.Call
	Class string
}

func (t Transition) String() string {
	s := string(t.Phase)
	if t.Mode != "" {
		s += " (" + t.Mode + ")"
	}
	return s + " " + string(t.Call) + ": " + t.Class
}

// TransitionOf classifies one step: Step(before, r, …) returned after.
func TransitionOf(before money.Order, r payment.Result, after money.Order) Transition {
	return Transition{Phase: before.Phase, Mode: modeOf(&before), Call: before.Call(),
		Class: answerClass(&before, r) + " → " + branchOf(&before, &after)}
}

func modeOf(o *money.Order) string {
	switch {
	case o.Adopt:
		return "adopted"
	case o.RefundCheck && o.Phase == money.PhaseRefundQuery:
		return o.RefundBy + ", before sending"
	case o.Phase == money.PhaseRefund || o.Phase == money.PhaseRefundQuery:
		return o.RefundBy
	}
	return ""
}

// answerClass is the outcome, refined where Step looks at more of the
// answer than its outcome.
func answerClass(o *money.Order, r payment.Result) string {
	c := r.Outcome.String()
	refund := o.Phase == money.PhaseRefund || o.Phase == money.PhaseRefundQuery
	switch {
	case r.Outcome == payment.Paid && r.TradeState == payment.StateRefunding:
		c += " refunding"
	case r.Outcome == payment.Done && refund && r.Status != 0:
		c += " processing"
	case r.Outcome == payment.NotFound && o.Seen && o.Phase != money.PhaseRefundQuery:
		c += " after a signed answer" // a lagging replica
	}
	return c
}

// branchOf names where a step left the order: its final state, or the
// phase it goes on in ("again": the same call once more; "next": the
// same phase with the next refund id).
func branchOf(before, after *money.Order) string {
	switch {
	case after.Phase == money.PhaseDone:
		return string(after.State)
	case after.Phase == before.Phase && modeOf(after) == modeOf(before) && after.RefundID != before.RefundID:
		return "next"
	case after.Phase == before.Phase && modeOf(after) == modeOf(before):
		return "again"
	}
	to := string(after.Phase)
	if m := modeOf(after); m != "" {
		to += " (" + m + ")"
	}
	return to
}

// Handled lists every transition the machine makes on the answers the
// gateway gives, one class a line: TestHandledIsWhatStepDoes holds it to
// Step and prints the lines a new branch needs. A run of the simulation
// of CI's size must reach each of them. An adopted order (an older posd
// took a 107 for its own) is not listed: no posd makes one now.
func Handled() []Transition { return slices.Clone(handled) }

var handled = slices.Concat(
	in(money.PhasePay, "",
		"duplicate → failed",
		"not_paid → declined",
		"not_sent → failed",
		"paid → paid",
		"pending → query",
		"rejected → check",
		"unknown → query",
	),
	in(money.PhaseQuery, "",
		"not_found after a signed answer → again",
		"not_found after a signed answer → reverse",
		"not_found → again",
		"not_found → reverse",
		"not_paid → closed",
		"not_paid → declined",
		"not_paid → reversed",
		"not_sent → again",
		"not_sent → reverse",
		"paid refunding → attention",
		"paid → paid",
		"pending → again",
		"pending → reverse",
		"unknown → again",
		"unknown → reverse",
	),
	in(money.PhaseCheck, "",
		"not_found → failed",
		"not_paid → closed",
		"not_paid → declined",
		"not_sent → query",
		"paid → paid",
		"pending → query",
		"unknown → query",
	),
	in(money.PhaseReverse, "",
		"no_reverse → fallback_query",
		"not_found after a signed answer → again",
		"not_found after a signed answer → confirm",
		"not_found → confirm",
		"not_paid → confirm",
		"not_sent → again",
		"not_sent → confirm",
		"pending → again",
		"pending → confirm",
		"unknown → again",
		"unknown → confirm",
	),
	in(money.PhaseFallback, "",
		"not_found after a signed answer → close",
		"not_found → close",
		"not_found → failed",
		"not_paid → closed",
		"not_paid → declined",
		"not_sent → close",
		"paid refunding → reversed",
		"paid → refund_query (fallback, before sending)",
		"pending → close",
		"unknown → close",
	),
	in(money.PhaseClose, "",
		"done → confirm",
		"not_found after a signed answer → again",
		"not_found after a signed answer → confirm",
		"not_found → confirm",
		"not_sent → again",
		"not_sent → confirm",
		"pending → again",
		"pending → confirm",
		"unknown → again",
		"unknown → confirm",
	),
	in(money.PhaseConfirm, "",
		"not_found after a signed answer → reconcile",
		"not_found → failed",
		"not_found → reconcile",
		"not_paid → closed",
		"not_paid → declined",
		"not_paid → reversed",
		"not_sent → reconcile",
		"paid refunding → attention",
		"paid refunding → reversed",
		"paid → paid",
		"pending → reconcile",
		"unknown → reconcile",
	),
	in(money.PhaseReconcile, "",
		"not_found after a signed answer → again",
		"not_found → failed",
		"not_paid → closed",
		"not_paid → declined",
		"not_paid → reversed",
		"not_sent → again",
		"paid refunding → attention",
		"paid refunding → reversed",
		"paid → paid",
		"pending → reverse",
		"unknown → again",
	),
	in(money.PhaseVerify, "",
		"not_sent → again",
		"paid refunding → attention",
		"paid refunding → refund_query (discover)",
		"paid → paid",
		"paid → refund_query (discover)",
		"unknown → again",
	),
	in(money.PhaseRefund, "operator",
		"done processing → refund_query (operator)",
		"done → paid",
		"done → refunded",
		"done → verify",
		"not_sent → refund_query (operator)",
		"pending → again",
		"pending → refund_query (operator)",
		"rejected → paid",
		"rejected → refund_query (operator)",
		"rejected → verify",
		"unknown → refund_query (operator)",
	),
	in(money.PhaseRefund, "fallback",
		"done processing → refund_query (fallback)",
		"done → reversed",
		"not_sent → refund_query (fallback)",
		"pending → again",
		"pending → refund_query (fallback)",
		"rejected → confirm",
		"rejected → refund_query (fallback)",
		"unknown → refund_query (fallback)",
	),
	in(money.PhaseRefundQuery, "operator, before sending",
		"done processing → refund_query (operator)",
		"done → paid",
		"done → refunded",
		"done → verify",
		"not_found → again",
		"not_found → paid",
		"not_found → refund (operator)",
		"not_found → verify",
		"not_sent → again",
		"pending → paid",
		"pending → refund (operator)",
		"pending → verify",
		"unknown → again",
	),
	in(money.PhaseRefundQuery, "operator",
		"done processing → again",
		"done → paid",
		"done → refunded",
		"done → verify",
		"not_found → again",
		"not_found → paid",
		"not_found → refund (operator)",
		"not_found → verify",
		"not_sent → again",
		"pending → paid",
		"pending → verify",
		"unknown → again",
	),
	in(money.PhaseRefundQuery, "fallback, before sending",
		"not_found → refund (fallback)",
		"not_sent → again",
		"unknown → again",
	),
	in(money.PhaseRefundQuery, "fallback",
		"done processing → again",
		"done → reversed",
		"not_found → again",
		"not_found → confirm",
		"not_found → refund (fallback)",
		"not_sent → again",
		"pending → confirm",
		"unknown → again",
	),
	in(money.PhaseRefundQuery, "discover",
		"done processing → again",
		"done → attention",
		"done → next",
		"done → paid",
		"not_found → again",
		"not_found → attention",
		"not_found → next",
		"not_found → paid",
		"not_sent → again",
		"pending → attention",
		"pending → next",
		"pending → paid",
		"unknown → again",
	),
)

// in is the transitions of a phase in a mode, by class.
func in(ph money.Phase, mode string, classes ...string) []Transition {
	call := (&money.Order{Phase: ph}).Call()
	ts := make([]Transition, len(classes))
	for i, c := range classes {
		ts[i] = Transition{ph, mode, call, c}
	}
	return ts
}
