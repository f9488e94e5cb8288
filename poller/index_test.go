package poller

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"example.com/posd/internal/journal"
	"example.com/posd/internal/money"
)

// The journal indexes orders from their JSON (journal/index.go); a start
// resumes exactly the orders of its live index. It must agree with Active
// for every phase, or an order would be left undriven after a restart.
func TestJournalLiveIndexAgreesWithActive(t *testing.T) {
	j, err := journal.Open(filepath.Join(t.TempDir(), "j.db"))
	require.NoError(t, err)
	defer j.Close()
	phases := []money.Phase{money.PhasePay, money.PhaseQuery, money.PhaseCheck, money.PhaseReverse, money.PhaseFallback, money.PhaseClose, money.PhaseRefund,
		money.PhaseRefundQuery, money.PhaseVerify, money.PhaseConfirm, money.PhaseReconcile, money.PhaseAttention, money.PhaseDone}
	want := map[string]bool{}
	require.NoError(t, j.Update(func(tx *journal.Tx) error {
		for _, ph := range phases {
			o := money.Order{MchTradeID: "T-" + string(ph), Phase: ph, FinishedAt: time.Unix(1e9, 0)}
			want[o.MchTradeID] = o.Active()
			if err := tx.Put(journal.Orders, o.MchTradeID, o); err != nil {
				return err
			}
		}
		return nil
	}))
	got := map[string]bool{}
	require.NoError(t, j.View(func(tx *journal.Tx) error {
		return tx.ForEachLive(journal.Orders, func(k string, _ []byte) error { got[k] = true; return nil })
	}))
	for id, active := range want {
		require.Equal(t, active, got[id], "order %s: live in the journal's index iff Active", id)
	}
	// A done order is in the index of final records, by its finish time.
	require.NoError(t, j.View(func(tx *journal.Tx) error {
		ids, _ := tx.DoneBefore(journal.Orders, time.Unix(1e9+1, 0), "", 100)
		require.Equal(t, []string{"T-done"}, ids)
		return nil
	}))
}
