package journal

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/money"
)

func openTest(t *testing.T) *Journal {
	t.Helper()
	j, err := Open(filepath.Join(t.TempDir(), "j.db"))
	require.NoError(t, err)
	t.Cleanup(func() { j.Close() })
	return j
}

// A start resumes exactly the orders of the live index, and keeps exactly
// the charges of it: the index must agree with the vocabulary's own
// predicates for every phase and state, or a record would be left undriven
// (or read at every start for years).
func TestLiveIndexAgreesWithTheVocabulary(t *testing.T) {
	j := openTest(t)
	phases := []money.Phase{money.PhasePay, money.PhaseQuery, money.PhaseCheck, money.PhaseReverse, money.PhaseFallback, money.PhaseClose, money.PhaseRefund,
		money.PhaseRefundQuery, money.PhaseVerify, money.PhaseConfirm, money.PhaseReconcile, money.PhaseAttention, money.PhaseDone}
	states := []money.State{money.AwaitingScan, money.Paying, money.Paid, money.Canceled, money.Refunded, money.NeedsAttention}
	wantOrders, wantCharges := map[string]bool{}, map[string]bool{}
	require.NoError(t, j.Update(func(tx *Tx) error {
		for _, ph := range phases {
			o := money.Order{MchTradeID: "T-" + string(ph), Phase: ph, FinishedAt: time.Unix(1e9, 0)}
			wantOrders[o.MchTradeID] = o.Active()
			if _, err := tx.SaveStep(&o, time.Now()); err != nil {
				return err
			}
		}
		for _, st := range states {
			c := money.Charge{ID: "C-" + string(st), State: st, UpdatedAt: time.Unix(1e9, 0)}
			wantCharges[c.ID] = c.Open() || c.State == money.NeedsAttention
			if err := tx.OpenCharge(&c); err != nil {
				return err
			}
		}
		return nil
	}))
	gotOrders, gotCharges := map[string]bool{}, map[string]bool{}
	require.NoError(t, j.View(func(tx *Tx) error {
		if err := tx.EachLiveOrder(func(o money.Order) error { gotOrders[o.MchTradeID] = true; return nil }); err != nil {
			return err
		}
		return tx.EachLiveCharge(func(c money.Charge) error { gotCharges[c.ID] = true; return nil })
	}))
	for id, active := range wantOrders {
		assert.Equal(t, active, gotOrders[id], "order %s: live iff Active", id)
	}
	for id, live := range wantCharges {
		assert.Equal(t, live, gotCharges[id], "charge %s: live iff open or needing attention", id)
	}
	require.NoError(t, j.View(func(tx *Tx) error {
		ids, _ := tx.doneBefore(orderBucket, time.Unix(1e9+1, 0), "", 100)
		assert.Equal(t, []string{"T-done"}, ids, "a done order is indexed by its finish time")
		return nil
	}))
}

// An order's step and its charge are one transaction: the charge is moved
// by money.Settle where the step is saved, each write a new version, and a
// pay that never left gives its code back.
func TestSaveStepMovesTheChargeWithTheOrder(t *testing.T) {
	j := openTest(t)
	now := time.Now()
	o := money.NewOrder(money.Order{MchTradeID: "A1", ChargeID: "CH1", AuthCode: "282941234567890123"}, now)
	c := money.Charge{ID: "CH1", State: money.Paying, AttemptIDs: []string{"A1"}, ExpiresAt: now.Add(time.Minute)}
	require.NoError(t, j.Update(func(tx *Tx) error { return tx.RecordAttempt(&o, &c) }))
	assert.Equal(t, uint64(1), o.Version)
	assert.Equal(t, uint64(1), c.Version)

	step := func(o *money.Order) money.Settled {
		var st money.Settled
		require.NoError(t, j.Update(func(tx *Tx) error {
			var err error
			st, err = tx.SaveStep(o, now)
			return err
		}))
		return st
	}
	o.Phase = money.PhaseQuery // still paying: the charge stays
	st := step(&o)
	assert.True(t, st.Found)
	assert.False(t, st.Changed)
	assert.Equal(t, uint64(2), o.Version)

	o.Phase, o.State, o.NotSent, o.FinishedAt = money.PhaseDone, money.Failed, true, now
	st = step(&o)
	assert.True(t, st.Changed)
	assert.Equal(t, money.Paying, st.Prev)
	assert.Equal(t, money.AwaitingScan, st.Charge.State)
	assert.Equal(t, uint64(2), st.Charge.Version)
	require.NoError(t, j.View(func(tx *Tx) error {
		stored, _, err := tx.Charge("CH1")
		assert.Equal(t, [3]any{st.Charge.State, st.Charge.Reason, st.Charge.Version}, [3]any{stored.State, stored.Reason, stored.Version},
			"what the step reports is what was committed")
		_, used := tx.CodeUsedBy(o.CodeSHA256)
		assert.False(t, used, "a pay that never left gives its code back")
		return err
	}))
	st = step(&o)
	assert.False(t, st.Changed, "a step replayed changes nothing")
}

// UpdateCharge works on the committed charge, not on a caller's copy that
// a step has overtaken.
func TestUpdateChargeSeesTheCommittedCharge(t *testing.T) {
	j := openTest(t)
	now := time.Now()
	o := money.NewOrder(money.Order{MchTradeID: "A1", ChargeID: "CH1", AuthCode: "282941234567890123"}, now)
	c := money.Charge{ID: "CH1", State: money.Paying, AttemptIDs: []string{"A1"}, ExpiresAt: now.Add(time.Minute)}
	require.NoError(t, j.Update(func(tx *Tx) error { return tx.RecordAttempt(&o, &c) }))
	o.Phase, o.State, o.FinishedAt = money.PhaseDone, money.Paid, now
	require.NoError(t, j.Update(func(tx *Tx) error { _, err := tx.SaveStep(&o, now); return err }))

	var got money.Charge
	require.NoError(t, j.Update(func(tx *Tx) error {
		var err error
		got, _, err = tx.UpdateCharge("CH1", func(sc *money.Charge) bool {
			if sc.State != money.Paying { // the till's abort, too late
				return false
			}
			sc.Aborting = true
			return true
		})
		return err
	}))
	assert.Equal(t, money.Paid, got.State)
	assert.False(t, got.Aborting)
}

// Prune deletes what was final before the cutoff, with its code's index
// entry and idempotency key, and never what is unresolved or recent.
func TestPrune(t *testing.T) {
	j := openTest(t)
	now := time.Now()
	old, recent := now.Add(-200*24*time.Hour), now.Add(-time.Hour)
	put := func(id string, final bool, at time.Time) {
		o := money.NewOrder(money.Order{MchTradeID: id, ChargeID: "CH" + id, AuthCode: "28" + id}, at)
		o.Phase, o.State = money.PhaseReconcile, money.Unknown
		c := money.Charge{ID: "CH" + id, Lane: "L1", State: money.NeedsAttention, AttemptIDs: []string{id}, UpdatedAt: at, IdempotencyKey: "k" + id}
		if final {
			o.Phase, o.State, o.FinishedAt = money.PhaseDone, money.Paid, at
			c.State = money.Paid
		}
		require.NoError(t, j.Update(func(tx *Tx) error {
			if err := tx.OpenCharge(&c); err != nil {
				return err
			}
			return tx.RecordAttempt(&o, &c)
		}))
	}
	put("OLDFINAL1", true, old)
	put("RECENT001", true, recent)
	put("OLDOPEN01", false, old)
	o, c, err := j.Prune(now.Add(-180 * 24 * time.Hour))
	require.NoError(t, err)
	assert.Equal(t, 1, o)
	assert.Equal(t, 1, c)
	require.NoError(t, j.View(func(tx *Tx) error {
		for id, want := range map[string]bool{"OLDFINAL1": false, "RECENT001": true, "OLDOPEN01": true} {
			_, ok, _ := tx.Order(id)
			assert.Equal(t, want, ok, id)
			_, ok, _ = tx.Charge("CH" + id)
			assert.Equal(t, want, ok, "charge of "+id)
			_, ok, _ = tx.ChargeByKey("k" + id)
			assert.Equal(t, want, ok, "idempotency key of "+id)
			_, ok = tx.CodeUsedBy(money.NewOrder(money.Order{AuthCode: "28" + id}, now).CodeSHA256)
			assert.Equal(t, want, ok, "code of "+id)
		}
		return nil
	}))
}
