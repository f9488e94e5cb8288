package journal

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/money"
)

// putFinal journals a final paid order and its charge, final at at.
func putFinal(t *testing.T, j *Journal, id string, at time.Time) {
	t.Helper()
	o := money.NewOrder(money.Order{MchTradeID: id, ChargeID: "CH" + id, AuthCode: "28" + id}, at)
	o.Phase, o.State, o.FinishedAt = money.PhaseDone, money.Paid, at
	c := money.Charge{ID: "CH" + id, Lane: "L1", State: money.Paid, AttemptIDs: []string{id}, UpdatedAt: at}
	require.NoError(t, j.Update(func(tx *Tx) error {
		if err := tx.OpenCharge(&c); err != nil {
			return err
		}
		return tx.RecordAttempt(&o, &c)
	}))
}

// The newest time the records hold (what a journal of a posd that saved
// no observed time is judged by), and the observed time once saved: the
// save decides, not the records (which a clock run ahead may have dated).
func TestObservedTime(t *testing.T) {
	j := openTest(t)
	newest, err := j.Newest()
	require.NoError(t, err)
	assert.True(t, newest.IsZero(), "an empty journal has seen nothing")

	now := time.Now().Round(0)
	putFinal(t, j, "OLD000001", now.Add(-48*time.Hour))
	putFinal(t, j, "NEWEST001", now.Add(-time.Hour))
	newest, err = j.Newest()
	require.NoError(t, err)
	assert.True(t, newest.Equal(now.Add(-time.Hour)), "%s", newest)
	seen, wall, err := j.Observed()
	require.NoError(t, err)
	assert.True(t, seen.IsZero() && wall.IsZero(), "nothing saved yet")

	putFinal(t, j, "AHEAD0001", now.AddDate(12, 0, 0)) // a clock twelve years ahead wrote it
	require.NoError(t, j.SetObserved(now, now.AddDate(0, 0, 20)))
	seen, wall, err = j.Observed()
	require.NoError(t, err)
	assert.True(t, seen.Equal(now), "%s", seen)
	assert.True(t, wall.Equal(now.AddDate(0, 0, 20)), "%s", wall)
	newest, err = j.Newest()
	require.NoError(t, err)
	assert.True(t, newest.Equal(now.AddDate(12, 0, 0)), "%s", newest)
}

// A record the outbox holds for the head office is not pruned, however
// old, until the broker has acknowledged it.
func TestPruneKeepsWhatHeadOfficeHasNotGot(t *testing.T) {
	j := openTest(t)
	j.SetOutbox(true)
	old := time.Now().Add(-200 * 24 * time.Hour)
	putFinal(t, j, "UNSENT001", old)
	o, c, err := j.Prune(time.Now())
	require.NoError(t, err)
	assert.Equal(t, [2]int{0, 0}, [2]int{o, c}, "not yet at head office")

	var last uint64
	require.NoError(t, j.View(func(tx *Tx) error {
		es, err := tx.Outbox(100)
		if len(es) > 0 {
			last = es[len(es)-1].Seq
		}
		return err
	}))
	require.NotZero(t, last)
	j.OutboxAcked(last)
	o, c, err = j.Prune(time.Now())
	require.NoError(t, err)
	assert.Equal(t, [2]int{1, 1}, [2]int{o, c}, "acknowledged: pruned")
}
