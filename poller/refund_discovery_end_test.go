package poller

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/money"
	"example.com/posd/payment"
)

// A restored journal's paid order with a refund posd made (T1). The
// protocol's refund_query answer is refund_status; refund_fee is not
// promised (payment.Classify keeps it "when the answer gives it", and the
// refund check takes its absence as "the amount asked"). A discovery that
// meets "done" without an amount must still end (final, or an operator's):
// otherwise the order stays in refund_query for ever, neither refundable
// nor resolvable.
func TestDiscoveryEndsOnARefundAnsweredWithoutItsAmount(t *testing.T) {
	p := DefaultPolicy()
	o := fresh()
	o.AuthCode = ""
	o.State, o.Phase, o.Restored, o.RefundedFee = money.Paid, money.PhaseVerify, true, 30
	o.Refunds = []string{RefundIDFor(o.MchTradeID, "T1")}
	o = Step(o, payment.Result{Outcome: payment.Paid, TradeState: payment.StatePaid, TradeID: "T"}, t0, p)
	require.Equal(t, money.PhaseRefundQuery, o.Phase, "its refunds are asked")
	for range 100 {
		if !o.Active() {
			break
		}
		switch o.Call() {
		case payment.CallRefundQuery:
			o = Step(o, payment.Result{Outcome: payment.Done, Status: 0, TradeState: payment.NoTradeState}, o.NextAt, p)
		default:
			o = Step(o, payment.Result{Outcome: payment.Paid, TradeState: payment.StatePaid, TradeID: "T"}, o.NextAt, p)
		}
	}
	assert.False(t, o.Active(), "still %s after 100 answers (next at %s)", o.Phase, o.NextAt)
}

// An older posd's discovery was under way at the upgrade: its journal has
// the order in refund_query asking <id>R1 (RefundSeq 1), no RefundAsk. The
// gateway holds R1, 50 of 100 fen. The new discovery counts the answer
// for the id in flight, then asks every known id from the first, R1
// again, and adds it a second time: 100 of 100, "refunded" in full.
func TestOlderDiscoveryInFlightAtUpgradeCountsEachRefundOnce(t *testing.T) {
	p := DefaultPolicy()
	o := fresh()
	o.AuthCode = ""
	o.State, o.Restored, o.TradeState = money.Paid, true, payment.StateRefunding
	o.Phase, o.RefundBy, o.RefundSeq = money.PhaseRefundQuery, "discover", 1
	o.RefundID = RefundIDN(o.MchTradeID, 1)
	r1 := o.RefundID
	for i := 0; o.Active(); i++ {
		require.Less(t, i, 100)
		require.Equal(t, payment.CallRefundQuery, o.Call(), "a discovery only asks")
		r := payment.Result{Outcome: payment.NotFound, TradeState: payment.NoTradeState}
		if o.RefundID == r1 {
			r = payment.Result{Outcome: payment.Done, Status: 0, RefundFee: 50, TradeState: payment.NoTradeState}
		}
		o = Step(o, r, o.NextAt, p)
	}
	assert.NotEqual(t, money.Refunded, o.State, "the gateway gave back 50 of 100")
	assert.LessOrEqual(t, o.RefundedFee, int64(50))
}
