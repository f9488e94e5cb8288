package checkout

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"example.com/posd/internal/journal"
	"example.com/posd/internal/money"
)

// A start reads the charges of the journal's live index only: it must
// hold exactly the charges Start keeps (open, or needing attention).
func TestJournalLiveIndexAgreesWithStart(t *testing.T) {
	j, err := journal.Open(filepath.Join(t.TempDir(), "j.db"))
	require.NoError(t, err)
	defer j.Close()
	states := []money.State{money.AwaitingScan, money.Paying, money.Paid, money.Canceled, money.Refunded, money.NeedsAttention}
	want := map[string]bool{}
	require.NoError(t, j.Update(func(tx *journal.Tx) error {
		for _, st := range states {
			c := money.Charge{ID: "C-" + string(st), State: st, UpdatedAt: time.Unix(1e9, 0)}
			want[c.ID] = c.Open() || c.State == money.NeedsAttention
			if err := tx.Put(journal.Charges, c.ID, c); err != nil {
				return err
			}
		}
		return nil
	}))
	got := map[string]bool{}
	require.NoError(t, j.View(func(tx *journal.Tx) error {
		return tx.ForEachLive(journal.Charges, func(k string, _ []byte) error { got[k] = true; return nil })
	}))
	for id, live := range want {
		require.Equal(t, live, got[id], "charge %s", id)
	}
}
