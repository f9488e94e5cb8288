package poller

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/journal"
	"example.com/posd/internal/money"
	"example.com/posd/payment"
)

// The whole state folder is put back from a backup (the witness away saw
// later runs). The first start after it opens the journal, which marks
// both witnesses with its run, and then stops before Resume has put every
// paid order in verify: a web display's port taken, the key file not yet
// restored, systemd's start timeout while Resume saves a year of paid
// orders one by one, a power cut. The next start must still treat the
// journal as the copy it is; otherwise the orders it says were paid, some
// refunded since the copy, are never asked again.
func TestRestoreIsNotForgottenWhenTheFirstStartIsCutShort(t *testing.T) {
	state := t.TempDir()
	path, away := filepath.Join(state, "journal.db"), filepath.Join(t.TempDir(), "journal.witness")
	open := func() *journal.Journal {
		j, err := journal.OpenWith(path, journal.Options{Witness: away})
		require.NoError(t, err)
		return j
	}
	now := time.Now()
	j := open()
	o := money.NewOrder(money.Order{MchTradeID: "S1_L1_ABCDEF1", TotalFee: 100, DeviceInfo: "L1", PayType: "alipay.micro",
		Subject: "s", Body: "b", ClientIP: "127.0.0.1"}, now)
	o.Phase, o.State, o.FinishedAt, o.TradeState = money.PhaseDone, money.Paid, now, payment.StatePaid
	require.NoError(t, j.Update(func(tx *journal.Tx) error { _, err := tx.SaveStep(&o, now); return err }))
	require.NoError(t, j.Close())
	backup := t.TempDir()
	for _, name := range []string{"journal.db", "journal.db.seen"} {
		copyFile(t, filepath.Join(state, name), filepath.Join(backup, name))
	}
	require.NoError(t, open().Close()) // runs after the backup (the order is refunded meanwhile)

	for _, name := range []string{"journal.db", "journal.db.seen"} {
		copyFile(t, filepath.Join(backup, name), filepath.Join(state, name))
	}
	j = open()
	require.True(t, j.Restored(), "the folder put back is recognised")
	require.NoError(t, j.Close()) // the start ends before Resume

	j = open()
	defer j.Close()
	p := New(Options{Gateway: &fakeGateway{}, Journal: j, Policy: DefaultPolicy()})
	_, err := p.Resume(time.Now())
	require.NoError(t, err)
	var got money.Order
	require.NoError(t, j.View(func(tx *journal.Tx) error { got, _, _ = tx.Order(o.MchTradeID); return nil }))
	assert.Equal(t, money.PhaseVerify, got.Phase, "the copy's paid order is asked at the gateway again")
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, b, 0o600))
}
