package lane

// Review of 4a1e580: an earlier attempt that a reconciliation reopened and
// that ended paid moves its charge to "paid" (money.Settle lets "paid"
// through for any attempt, by design), but the lane refunds a charge by its
// latest attempt only.

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/journal"
	"example.com/posd/internal/money"
)

// Rule: a paid charge can be refunded by the till (and a charge agrees
// with its latest attempt). Charge CH1: attempt A (reopened by a
// reconciliation, ended paid at the gateway), then B (declined). Settle
// made the charge "paid"; RefundCharge looks at the latest attempt only
// (refundsAndPaid: c.AttemptIDs[n-1]), finds B declined and refuses with
// "charge CH1 is paid; only a paid charge is refunded". The money A took
// cannot be given back through the charge the till holds.
func TestReview2ChargePaidByAnEarlierAttemptCannotBeRefunded(t *testing.T) {
	s, j, _ := newService(t, Config{ID: "L1", DeviceInfo: "POS01"})
	defer j.Close()
	now := time.Now()
	mk := func(id string, st money.State) {
		o := money.NewOrder(money.Order{MchTradeID: id, ChargeID: "CH1", Lane: "L1", TotalFee: 100, DeviceInfo: "POS01",
			AuthCode: "281234567890123456", PayType: "alipay.micro", Wallet: "alipay", Subject: "s", Body: "b", ClientIP: "127.0.0.1"}, now)
		o.Phase, o.State, o.FinishedAt = money.PhaseDone, st, now
		require.NoError(t, j.Update(func(tx *journal.Tx) error { _, err := tx.SaveStep(&o, now); return err }))
	}
	mk("S001_POS01_A1", money.Declined)
	mk("S001_POS01_B2", money.Declined)
	c := money.Charge{ID: "CH1", Lane: "L1", TotalFee: 100, State: money.Canceled, AttemptIDs: []string{"S001_POS01_A1", "S001_POS01_B2"},
		CreatedAt: now, ExpiresAt: now, UpdatedAt: now}
	require.NoError(t, j.Update(func(tx *journal.Tx) error { return tx.OpenCharge(&c) }))
	// The reopened A ends paid, as the poller's step journals it.
	require.NoError(t, j.Update(func(tx *journal.Tx) error {
		a, _, _ := tx.Order("S001_POS01_A1")
		a.State, a.FinishedAt = money.Paid, now.Add(time.Minute)
		_, err := tx.SaveStep(&a, now.Add(time.Minute))
		return err
	}))
	v, err := s.Get("CH1")
	require.NoError(t, err)
	require.Equal(t, money.Paid, v.Charge.State, "A's money shows on the charge")

	_, _, err = s.RefundCharge("CH1", RefundRequest{})
	assert.NoError(t, err, "the till cannot refund a charge posd shows paid")
}
