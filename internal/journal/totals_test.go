package journal

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/money"
)

// A refund counts on the day the gateway confirmed it, under the cashier
// and shift it names as a pair (the sale's only when it names neither);
// the sale counts on its own day under its own.
func TestTotalsCountARefundWhereItWasMade(t *testing.T) {
	j := openTest(t)
	day1 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.Local)
	day2 := day1.AddDate(0, 0, 1)
	o := money.NewOrder(money.Order{MchTradeID: "S001_POS01_T1", ChargeID: "CHT", Lane: "L1", TotalFee: 1000,
		OpUserID: "alice", Shift: "morning", Wallet: "alipay"}, day1.Add(10*time.Hour))
	o.Phase, o.State, o.RefundedFee = money.PhaseDone, money.Paid, 300
	c := money.Charge{ID: "CHT", Lane: "L1", TotalFee: 1000, State: money.PartiallyRefunded, AttemptIDs: []string{o.MchTradeID},
		CreatedAt: o.CreatedAt, UpdatedAt: o.CreatedAt, ExpiresAt: o.CreatedAt}
	asked := day2.Add(-10 * time.Second)
	r := money.Refund{MchRefundID: "RT1", RefundID: "R1", ChargeID: "CHT", MchTradeID: o.MchTradeID, Lane: "L1", RefundFee: 300,
		OpUserID: "bob", State: money.Refunded, CreatedAt: asked, UpdatedAt: day2.Add(40 * time.Second), FinishedAt: day2.Add(40 * time.Second)}
	require.NoError(t, j.Update(func(tx *Tx) error {
		if err := tx.RecordAttempt(&o, &c); err != nil {
			return err
		}
		return tx.RecordRefund(&r)
	}))
	total := func(from time.Time, f money.TotalsFilter) money.WalletTotals {
		t.Helper()
		rows, err := j.Totals(from, from.AddDate(0, 0, 1), f)
		require.NoError(t, err)
		return rows[len(rows)-1]
	}
	first := total(day1, money.TotalsFilter{})
	assert.Equal(t, int64(1000), first.PaidFee)
	assert.Zero(t, first.RefundedFee, "asked on day 1, confirmed on day 2")
	second := total(day2, money.TotalsFilter{})
	assert.Zero(t, second.PaidFee)
	assert.Equal(t, int64(300), second.RefundedFee)
	assert.Equal(t, int64(300), total(day2, money.TotalsFilter{OpUserID: "bob"}).RefundedFee)
	assert.Zero(t, total(day2, money.TotalsFilter{Shift: "morning"}).RefundedFee, "bob named no shift: not the sale's")
	assert.Zero(t, total(day2, money.TotalsFilter{OpUserID: "alice"}).RefundedFee)
	assert.Equal(t, int64(1000), total(day1, money.TotalsFilter{OpUserID: "alice", Shift: "morning"}).PaidFee)
}
