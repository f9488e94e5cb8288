package lane

import (
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/display"
	"example.com/posd/internal/journal"
	"example.com/posd/internal/money"
)

// The till's lines show between payments for their ttl; a lane with a
// charge open refuses them, and a charge takes the screen over.
func TestShowLines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _, hub := newService(t, Config{ID: "L1", DeviceInfo: "POS01"})
		sub := hub.Subscribe("L1", 16)
		for len(sub.C()) > 0 {
			<-sub.C()
		}
		require.NoError(t, s.ShowLines("L1", []string{"Apples 2 × 3.50", "Total ¥7.00"}, 30*time.Second))
		e := <-sub.C()
		assert.Equal(t, display.Lines, e.Kind)
		assert.Equal(t, []string{"Apples 2 × 3.50", "Total ¥7.00"}, e.Text)
		time.Sleep(31 * time.Second)
		synctest.Wait()
		assert.Equal(t, display.Idle, (<-sub.C()).Kind, "the ttl ends them")

		assert.True(t, errors.Is(s.ShowLines("L1", nil, time.Second), ErrInvalid))
		assert.True(t, errors.Is(s.ShowLines("L1", []string{"Total\x1b[2J"}, time.Second), ErrInvalid), "no control bytes")
		assert.True(t, errors.Is(s.ShowLines("L9", []string{"x"}, time.Second), ErrNotFound))
		require.NoError(t, s.ShowLines("L1", []string{"Bread"}, time.Minute))
		// A charge opens (the bubble's clock says 2000: Open would refuse
		// it for the clock, so the lane takes it as Open does).
		l := s.lanes["L1"]
		l.mu.Lock()
		l.open = "CH1"
		stopLinesLocked(l)
		l.mu.Unlock()
		assert.True(t, errors.Is(s.ShowLines("L1", []string{"x"}, time.Second), ErrConflict), "a payment holds the screen")
		for len(sub.C()) > 0 {
			<-sub.C()
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		for len(sub.C()) > 0 {
			assert.NotEqual(t, display.Idle, (<-sub.C()).Kind, "the lines' end does not clear the charge's screen")
		}
	})
}

// Reprint checks the attempt it indexes was found: it indexed the last
// attempt of the view without checking that it was found; between Prune's
// orders pass and its charges pass the attempt is gone and Reprint panics
// (index out of range) with s.mu held (released by its defer; net/http
// drops the till's connection). Before 3688da6 both were deleted in one
// transaction under the lock, so no reader saw the half-pruned state.
func TestReprintBetweenPrunePasses(t *testing.T) {
	s, j, _ := newService(t, Config{ID: "L1", DeviceInfo: "POS01"})
	old := time.Now().Add(-200 * 24 * time.Hour)
	o := money.NewOrder(money.Order{MchTradeID: "OLDPAID01", ChargeID: "CHOLDPAID01", Lane: "L1", AuthCode: "28OLDPAID01"}, old)
	o.Phase, o.State, o.FinishedAt = money.PhaseDone, money.Paid, old
	// The charge final only now: Prune takes the order and keeps the
	// charge, as its first pass does to every charge it has not reached.
	c := money.Charge{ID: "CHOLDPAID01", Lane: "L1", TotalFee: 100, State: money.Paid, AttemptIDs: []string{o.MchTradeID}, UpdatedAt: time.Now()}
	require.NoError(t, j.Update(func(tx *journal.Tx) error { return tx.RecordAttempt(&o, &c) }))
	cutoff := time.Now().Add(-180 * 24 * time.Hour)
	n, nc, err := j.Prune(cutoff)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Zero(t, nc)

	v, err := s.Get(c.ID)
	require.NoError(t, err)
	t.Logf("mid-prune: charge %s is %s with %d attempts", v.Charge.ID, v.Charge.State, len(v.Attempts))

	var perr error
	func() {
		defer func() {
			if r := recover(); r != nil {
				perr = fmt.Errorf("panic: %v", r)
			}
		}()
		_, err = s.Reprint(c.ID)
	}()
	require.NoError(t, perr, "Reprint of a paid charge whose attempt a running prune already removed")
}
