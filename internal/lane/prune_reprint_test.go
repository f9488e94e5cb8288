package lane

// Prune deletes orders in one pass and charges in a second, in many transactions
// and without the service lock. Between the two passes (for a year of
// history: hundreds of transactions) a paid charge is in the journal while
// its only attempt is not, and the API reads it.

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"example.com/posd/internal/journal"
	"example.com/posd/internal/money"
)

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
