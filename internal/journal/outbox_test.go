package journal

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/money"
)

// Every change of an order, its charge and a refund lands in the outbox
// in the transaction that makes it, in order, with the record's version;
// off, nothing does. Acked entries leave from the front.
func TestOutboxFollowsEveryChange(t *testing.T) {
	j, err := Open(filepath.Join(t.TempDir(), "j.db"))
	require.NoError(t, err)
	defer j.Close()
	now := time.Now()
	o := money.NewOrder(money.Order{MchTradeID: "S1_POS1_A1", ChargeID: "CH1", Lane: "L1", TotalFee: 100, AuthCode: "281234567890123456"}, now)
	c := money.Charge{ID: "CH1", Lane: "L1", TotalFee: 100, State: money.Paying, AttemptIDs: []string{o.MchTradeID}}
	require.NoError(t, j.Update(func(tx *Tx) error { return tx.RecordAttempt(&o, &c) }))
	require.NoError(t, j.View(func(tx *Tx) error {
		e, err := tx.Outbox(10)
		assert.Empty(t, e, "off: nothing")
		return err
	}))

	j.SetOutbox(true)
	o.State, o.Phase, o.FinishedAt = money.Paid, money.PhaseDone, now
	require.NoError(t, j.Update(func(tx *Tx) error { _, err := tx.SaveStep(&o, now); return err }))
	r := money.Refund{MchRefundID: "S1_POS1_A1R1", ChargeID: "CH1", Lane: "L1", RefundFee: 30, State: money.Pending}
	require.NoError(t, j.Update(func(tx *Tx) error { return tx.RecordRefund(&r) }))
	require.NoError(t, j.Update(func(tx *Tx) error { return tx.AddDevice("L1", "scanner0", map[string]string{"state": "down"}) }))
	require.NoError(t, j.Update(func(tx *Tx) error { return Fail(tx.AddDevice("L1", "lost", nil)) }), "rolled back with its transaction")

	var got []string
	var first []OutboxEntry
	require.NoError(t, j.View(func(tx *Tx) error {
		var err error
		first, err = tx.Outbox(100)
		for _, e := range first {
			var rec struct {
				State string `json:"state"`
			}
			_ = json.Unmarshal(e.Record, &rec)
			got = append(got, e.Kind+" "+e.ID+" "+rec.State)
		}
		st := tx.OutboxStats()
		assert.Equal(t, uint64(5), st.Pending)
		assert.False(t, st.Oldest.IsZero())
		return err
	}))
	assert.Equal(t, []string{"order S1_POS1_A1 paid", "charge CH1 paid", "refund S1_POS1_A1R1 pending", "charge CH1 paid", "device L1/scanner0 down"}, got)
	assert.Equal(t, uint64(2), first[0].Version, "the order's second version")
	assert.Less(t, first[1].Seq, first[3].Seq, "in the order written")

	require.NoError(t, j.Update(func(tx *Tx) error { return tx.Acked(first[2].Seq) }))
	require.NoError(t, j.View(func(tx *Tx) error {
		e, err := tx.Outbox(100)
		require.Len(t, e, 2)
		assert.Equal(t, first[3].Seq, e[0].Seq)
		assert.Equal(t, uint64(2), tx.OutboxStats().Pending)
		return err
	}))
}
