package sim

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"example.com/posd/internal/money"
	"example.com/posd/internal/reconcile"
	"example.com/posd/payment"
	"example.com/posd/poller"
)

// ciBudget is the events of CI's run (make sim): within it, every path of
// the state machine must be reached.
const ciBudget = 100 * 5000

// checkCoverage prints which transitions the run reached and how often.
// Run by make sim (POSD_SIM_COVERAGE=1) with CI's budget or more, it fails
// if one the tables list was never reached: a mutation there would go
// unseen. A smaller run, as make test's or a replay, only prints.
func checkCoverage(t *testing.T, reached Coverage, events int) {
	t.Logf("transitions reached (count, phase (mode) call: answer → where the machine took the order):\n%s", reached.Table())
	if m := reached.Missing(); len(m) > 0 && events >= ciBudget && os.Getenv("POSD_SIM_COVERAGE") == "1" {
		t.Errorf("%d transitions of the machine never reached in %d events: a mutation there would go unseen; aim the gateway model at them (internal/sim/gateway.go):\n  %s",
			len(m), events, lines(m))
	}
}

func lines[T fmt.Stringer](ts []T) string {
	var b strings.Builder
	for i, t := range ts {
		if i > 0 {
			b.WriteString("\n  ")
		}
		b.WriteString(t.String())
	}
	return b.String()
}

// TestNotAimedAtIsHandled: an excuse names a transition the tables list;
// one left behind by a change of the machine would excuse nothing.
func TestNotAimedAtIsHandled(t *testing.T) {
	listed := map[poller.Transition]bool{}
	for _, tr := range handled() {
		listed[tr] = true
	}
	for tr := range notAimedAt {
		if !listed[tr] {
			t.Errorf("notAimedAt excuses %v, which the tables do not list", tr)
		}
	}
}

// TestReconcileClasses: each reconciliation reconcileHandled lists is one
// reconcile.Compare makes, of a final order and a gateway's answer.
func TestReconcileClasses(t *testing.T) {
	answer := func(o payment.Outcome, ts int) payment.Result { return payment.Result{Outcome: o, TradeState: ts} }
	answers := []payment.Result{answer(payment.Paid, payment.StatePaid), answer(payment.Paid, payment.StateRefunding),
		answer(payment.NotPaid, payment.StateReversed), answer(payment.NotPaid, payment.StateClosed),
		answer(payment.NotPaid, payment.StateFailed), answer(payment.Pending, payment.StatePaying),
		answer(payment.NotFound, payment.NoTradeState), answer(payment.Unknown, payment.NoTradeState)}
	made := map[poller.Transition]bool{}
	for _, s := range []money.State{money.Paid, money.Refunded, money.Reversed, money.Declined, money.Failed, money.Closed} {
		for _, refunded := range []int64{0, 30} {
			o := money.Order{State: s, Phase: money.PhaseDone, TotalFee: 100, RefundProgress: money.RefundProgress{RefundedFee: refunded}}
			for _, q := range answers {
				made[poller.Transition{Phase: o.Phase, Mode: string(s), Call: payment.CallQuery, Class: reconcileClass(q, reconcile.Compare(&o, q))}] = true
			}
		}
	}
	for _, tr := range reconcileHandled {
		if tr.Call != "" && !made[tr] {
			t.Errorf("reconcileHandled lists %v, which reconcile.Compare never makes", tr)
		}
	}
}
