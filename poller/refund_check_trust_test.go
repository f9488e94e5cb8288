package poller

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/money"
	"example.com/posd/payment"
)

// resolvedPaid is a paid order of 100 fen that an operator resolved as
// "paid, refunded N": refunds posd did not know of (a restore, the back
// office) counted as refunded elsewhere.
func resolvedPaid(t *testing.T, refunded int64) money.Order {
	t.Helper()
	o := fresh()
	o.AuthCode = ""
	o.State, o.Phase = money.Unknown, money.PhaseAttention
	decide(&o, Decision{Paid: true, RefundedFee: refunded, By: "op", Why: "the gateway's figure"}, t0)
	require.Equal(t, money.Paid, o.State)
	require.Equal(t, refunded, o.RefundedElsewhere)
	return o
}

// The till retries T1 (60 fen), one of the refunds the operator's figure
// counts: more than posd thinks is left, so StartRefund lets it through
// only to ask the gateway. A question that got no trusted answer (a
// timeout, a single unsigned 301 from a lagging replica) says nothing
// about whether T1 was made; calling it "not made" tells the till the
// refund failed while the gateway may well hold it.
func TestRefundCheckWithoutATrustedAnswerIsNotAFailure(t *testing.T) {
	p := DefaultPolicy()
	for name, answer := range map[string]payment.Result{
		"timeout":      {Outcome: payment.Unknown, TradeState: payment.NoTradeState, Reason: "timeout"},
		"a single 301": {Outcome: payment.NotFound, TradeState: payment.NoTradeState, Reason: "301"},
	} {
		t.Run(name, func(t *testing.T) {
			o := resolvedPaid(t, 60)
			startRefundOf(&o, "operator", 60, RefundIDFor(o.MchTradeID, "T1"), t0)
			require.True(t, o.RefundCheck)
			o = Step(o, answer, t0, p)
			assert.NotEqual(t, money.Failed, o.RefundResult, "no trusted answer, yet the refund is reported failed: %s", o.ErrMsg)
			assert.Equal(t, payment.CallRefundQuery, o.Call(), "the refund is still asked about")
		})
	}
}

// The operator resolved the order "paid, 30 refunded": the till's T1 (30),
// made by a run the restored journal does not remember. The till retries
// T1; the question before sending meets one 301 from a lagging replica,
// so posd sends T1, and the gateway answers it as the refund it already
// made. posd then counts those 30 fen on top of the operator's 30: it
// says 60 went back where the gateway gave back 30.
func TestRefundCheckOneNotFoundDoesNotCountARefundTwice(t *testing.T) {
	p := DefaultPolicy()
	o := resolvedPaid(t, 30)
	startRefundOf(&o, "operator", 30, RefundIDFor(o.MchTradeID, "T1"), t0)
	o = Step(o, payment.Result{Outcome: payment.NotFound, TradeState: payment.NoTradeState, Reason: "301 from a lagging replica"}, t0, p)
	for i := 0; o.Active(); i++ {
		require.Less(t, i, 50)
		switch o.Call() {
		case payment.CallRefund, payment.CallRefundQuery: // the gateway holds T1, 30 fen
			o = Step(o, payment.Result{Outcome: payment.Done, Status: 0, RefundFee: 30, TradeState: payment.NoTradeState}, o.NextAt, p)
		default:
			o = Step(o, payment.Result{Outcome: payment.Paid, TradeState: payment.StateRefunding, TradeID: "T"}, o.NextAt, p)
		}
	}
	assert.Equal(t, int64(30), o.RefundedFee, "the gateway gave back 30 fen in all")
}
