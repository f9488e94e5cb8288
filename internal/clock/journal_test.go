package clock

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/journal"
	"example.com/posd/internal/journal/journaltest"
	"example.com/posd/internal/money"
)

// paidAt journals a final paid order and its charge, final at at.
func paidAt(t *testing.T, j *journal.Journal, id string, at time.Time) {
	t.Helper()
	o := money.NewOrder(money.Order{MchTradeID: id, ChargeID: "CH" + id, AuthCode: "28" + id}, at)
	o.Phase, o.State, o.FinishedAt = money.PhaseDone, money.Paid, at
	c := money.Charge{ID: "CH" + id, Lane: "L1", State: money.Paid, AttemptIDs: []string{id}, UpdatedAt: at}
	require.NoError(t, j.Update(func(tx *journal.Tx) error {
		if err := tx.OpenCharge(&c); err != nil {
			return err
		}
		return tx.RecordAttempt(&o, &c)
	}))
}

// A journal of a posd that saved no observed time is judged by its newest
// record; once saved, the save decides, and records dated after the wall
// clock are a fault of their own.
func TestOpenFromTheJournal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := journaltest.Open(t)
		off := -26 * 365 * 24 * time.Hour // the wall clock in 2000
		paidAt(t, j, "PAID00001", time.Now().Add(-time.Hour))
		c, err := Open(j, skewed(&off))
		require.NoError(t, err)
		require.Len(t, c.Faults(), 1, "behind the journal's newest record")
		assert.Equal(t, "behind", c.Faults()[0].Way)
		require.NoError(t, c.Save(j))

		off = 0
		paidAt(t, j, "AHEAD0001", time.Now().AddDate(1, 0, 0)) // a clock a year ahead wrote it
		c, err = Open(j, skewed(&off))
		require.NoError(t, err)
		require.Len(t, c.Faults(), 1)
		assert.Contains(t, c.Faults()[0].Reason, "records dated up to")
	})
}
