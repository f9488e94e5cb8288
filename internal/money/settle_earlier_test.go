package money

// Settle moves a charge by the attempt whose money it is, not by the
// attempt's position: a guard "an attempt that is not the charge's latest
// moves it only when paid" would keep a charge paid after its money went.

import (
	"testing"
	"time"
)

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
