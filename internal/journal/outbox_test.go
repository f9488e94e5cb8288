package journal

import (
	"encoding/json"
	"fmt"
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
		require.NoError(t, err)
		for _, e := range first {
			got = append(got, fmt.Sprintf("%s %s v%d", e.Kind, e.ID, e.Version))
		}
		// What is sent is the record as it is now.
		e := first[1]
		ok, err := tx.Current(&e)
		require.True(t, ok)
		var rec struct {
			State   string `json:"state"`
			Version uint64 `json:"version"`
		}
		require.NoError(t, json.Unmarshal(e.Record, &rec))
		assert.Equal(t, "paid", rec.State)
		assert.Equal(t, uint64(3), e.Version, "the charge's latest version")
		assert.Equal(t, e.Version, rec.Version)
		st := tx.OutboxStats()
		assert.Equal(t, uint64(5), st.Pending)
		assert.False(t, st.Oldest.IsZero())
		return err
	}))
	assert.Equal(t, []string{"order S1_POS1_A1 v2", "charge CH1 v2", "refund S1_POS1_A1R1 v1", "charge CH1 v3", "device L1/scanner0 v5"}, got)
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

// Acknowledged entries go with the next write, in its own transaction.
func TestOutboxAckedGoWithTheNextWrite(t *testing.T) {
	j, err := Open(filepath.Join(t.TempDir(), "j.db"))
	require.NoError(t, err)
	defer j.Close()
	j.SetOutbox(true)
	for range 3 {
		require.NoError(t, j.Update(func(tx *Tx) error { return tx.AddDevice("L1", "s", map[string]string{"state": "gone"}) }))
	}
	var es []OutboxEntry
	require.NoError(t, j.View(func(tx *Tx) error { es, err = tx.Outbox(10); return err }))
	require.Len(t, es, 3)
	j.OutboxAcked(es[1].Seq)
	require.NoError(t, j.View(func(tx *Tx) error {
		assert.Equal(t, uint64(3), tx.OutboxStats().Pending, "a read removes nothing")
		return nil
	}))
	require.NoError(t, j.Update(func(tx *Tx) error { return tx.putString(codeBucket, "k", "v") }))
	require.NoError(t, j.View(func(tx *Tx) error {
		left, err := tx.Outbox(10)
		require.Len(t, left, 1)
		assert.Equal(t, es[2].Seq, left[0].Seq)
		return err
	}))
}
