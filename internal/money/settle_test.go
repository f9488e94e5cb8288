package money

import (
	"testing"
	"time"
)

// Found by review of 17cc08d. A restored journal's paid order is verified
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

// An earlier attempt that ends late (a reconciliation reopened it and
// reversed it) moves nothing, even through "unknown" on its way: the
// charge follows its latest attempt. Money it took always shows.
func TestSettleFollowsTheLatestAttempt(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		earlier State
		was     State
		want    State
	}{
		{Reversed, Paid, Paid},
		{Closed, Canceled, Canceled},
		{Reversed, AwaitingScan, AwaitingScan},
		{Paid, Canceled, Paid},
		{Unknown, Paid, Paid},
	} {
		ch := Charge{ID: "CH1", State: c.was, AttemptIDs: []string{"A1", "A2"}, ExpiresAt: now.Add(time.Hour)}
		o := Order{MchTradeID: "A1", ChargeID: "CH1", Phase: PhaseDone, State: c.earlier}
		if c.earlier == Unknown {
			o.Phase = PhaseAttention
		}
		Settle(&ch, &o, now)
		if ch.State != c.want {
			t.Errorf("charge %s, earlier attempt ends %s: charge %s, want %s", c.was, c.earlier, ch.State, c.want)
		}
	}
}
