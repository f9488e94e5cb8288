package money

import (
	"testing"
	"time"
)

// A restored journal's paid order is verified
// at the gateway (poller stepVerify → settle): it may end closed or
// reversed (trade_state 3/6, or a refund after posd's reverse). SaveStep
// moves its charge by Settle, which keeps the charge "paid": the API, a
// reprint (Reprint checks the charge) and the simulation's new invariant
// (which asks Settle) all say paid while the only attempt says not paid.
func TestSettleCancelsAPaidChargeFoundNotPaid(t *testing.T) {
	now := time.Now()
	for _, st := range []State{Closed, Reversed, Declined} {
		c := Charge{ID: "CH1", State: Paid, AttemptIDs: []string{"A1"}, ExpiresAt: now.Add(-time.Hour)}
		o := Order{MchTradeID: "A1", ChargeID: "CH1", Phase: PhaseDone, State: st,
			ErrMsg: "found " + string(st) + " at the gateway after the journal was restored from an older copy"}
		Settle(&c, &o, now)
		if c.State == Paid {
			t.Errorf("attempt %s, its charge still %s", st, c.State)
		}
	}
}

// Rule: never shown as paid when it is not. A charge paid by an earlier
// attempt (a reopened attempt that ended paid: TestSettleFollowsTheLatest
// Attempt's {Paid, Canceled, Paid}) is verified after a journal restore, or
// refunded: the gateway says that attempt is reversed, closed or refunded
// in full. Settle's guard drops the step and the charge stays paid.
// (TestSettleCancelsAPaidChargeFoundNotPaid holds the same rule for a
// charge paid by its latest attempt.)
func TestPaidByAnEarlierAttemptThenNotPaidAfterAll(t *testing.T) {
	now := time.Now()
	for _, st := range []State{Closed, Reversed, Refunded} {
		c := Charge{ID: "CH1", State: Paid, AttemptIDs: []string{"A1", "A2"}, ExpiresAt: now.Add(-time.Hour)}
		o := Order{MchTradeID: "A1", ChargeID: "CH1", Phase: PhaseDone, State: st, TotalFee: 100}
		Settle(&c, &o, now)
		if c.State == Paid {
			t.Errorf("the attempt that paid the charge is now %s; the charge still %s", st, c.State)
		}
	}
}
