package poller

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/journal"
	"example.com/posd/internal/money"
	"example.com/posd/payment"
)

// kill -9 after a refund left the box, before its answer was journaled:
// the resumed order asks refund_query first, never "refused" on a resend.
func TestRefundResumedAfterCrashIsConfirmed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The first refund reached the gateway and was carried out; posd was
		// killed before the answer. The gateway refuses the resend, and
		// refund_query says the refund is done.
		gw := &fakeGateway{answer: func(c payment.Call, _ string, _ int) payment.Result {
			switch c {
			case payment.CallRefund:
				return res(payment.Rejected, payment.NoTradeState)
			case payment.CallRefundQuery:
				return payment.Result{Outcome: payment.Done, Status: 0, TradeState: payment.NoTradeState}
			}
			return res(payment.Paid, payment.StateRefunding)
		}}
		pl, j := newTestPoller(t, gw, nil)
		now := time.Now()
		o := newJournalOrder(t, j, "REFUNDED1", now)
		o = Step(o, res(payment.Paid, 0), now, DefaultPolicy())
		startRefund(&o, "operator", now) // what StartRefund journals before the refund leaves
		require.NoError(t, j.Update(func(tx *journal.Tx) error { return saveOrder(tx, o) }))

		_, err := pl.Resume(now)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		go pl.Run(ctx)
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		cancel()
		pl.Wait(time.Second)

		var got money.Order
		require.NoError(t, j.View(func(tx *journal.Tx) error { var err error; got, _, err = tx.Order("REFUNDED1"); return err }))
		t.Logf("calls: %v; final: %s %s %q", gw.callsOf("REFUNDED1"), got.Phase, got.State, got.ErrMsg)
		assert.Equal(t, money.Refunded, got.State, "the refund was carried out; refund_query was never asked")
	})
}
