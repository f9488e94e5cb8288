package poller

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/journal"
	"example.com/posd/internal/money"
	"example.com/posd/payment"
)

// A final order the gateway still holds open (a reconciliation's finding)
// is reversed and confirmed by the normal flow; a paid one, or one still
// driven, is refused and left as it is.
func TestReopen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw := &fakeGateway{answer: func(c payment.Call, _ string, n int) payment.Result {
			if c == payment.CallReverse && n == 1 {
				return res(payment.Pending, 6) // recall: the customer is entering a password
			}
			return res(payment.NotPaid, 4)
		}}
		var updates []money.Order
		p, j := newTestPoller(t, gw, func(o money.Order, _ money.Settled) { updates = append(updates, o) })
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go p.Run(ctx)

		now := time.Now()
		final := func(id string, st money.State) {
			o := newJournalOrder(t, j, id, now)
			o.Phase, o.State, o.FinishedAt = money.PhaseDone, st, now
			require.NoError(t, j.Update(func(tx *journal.Tx) error { return saveOrder(tx, o) }))
		}
		final("DECLINED1", money.Declined)
		final("PAID00001", money.Paid)
		newJournalOrder(t, j, "DRIVEN001", now)

		_, err := p.Reopen("PAID00001", "test", now)
		require.ErrorIs(t, err, ErrNotReopenable, "a paid order is an operator's decision")
		_, err = p.Reopen("DRIVEN001", "test", now)
		require.Error(t, err, "an order in its pay phase is driven already")
		_, err = p.Reopen("NOSUCH", "test", now)
		require.Error(t, err)
		assert.Zero(t, p.Pending(), "nothing refused is held")

		o, err := p.Reopen("DECLINED1", "reconciliation of 2026-11-26", now)
		require.NoError(t, err)
		assert.Equal(t, money.PhaseReverse, o.Phase)
		_, err = p.Reopen("DECLINED1", "twice", now)
		require.ErrorIs(t, err, ErrBusy)
		time.Sleep(time.Minute)
		synctest.Wait()

		var got money.Order
		require.NoError(t, j.View(func(tx *journal.Tx) error { got, _, err = tx.Order("DECLINED1"); return err }))
		assert.Equal(t, money.Reversed, got.State, "final as the gateway has it")
		assert.True(t, got.Final())
		assert.Equal(t, "reconciliation of 2026-11-26", got.Reopened)
		var calls []payment.Call
		for _, c := range gw.callsOf("DECLINED1") {
			calls = append(calls, c.call)
		}
		assert.Equal(t, []payment.Call{payment.CallReverse, payment.CallReverse, payment.CallQuery}, calls,
			"a reverse refused while the customer enters a password is retried, then confirmed")
		assert.Empty(t, gw.callsOf("PAID00001"))
		require.NotEmpty(t, updates)
		assert.Equal(t, money.Reversed, updates[len(updates)-1].State, "the lane hears every step")
		assert.Zero(t, p.Pending())
	})
}

// A reconciliation's signed answer showed an order posd ended failed
// (its first run met only a lagging replica's 301s, and used up its
// queries): reopened, the 301s of the replica still lagging are never
// "nothing was created" again.
func TestAReopenedOrderIsNotFailedOnALaggingReplicasFirst301(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A lagging replica answers 301 to everything, its reverse too: no
		// reverse lands, so its queries stay 301.
		gw := &fakeGateway{answer: func(payment.Call, string, int) payment.Result { return res(payment.NotFound, payment.NoTradeState) }}
		p, j := newTestPoller(t, gw, nil)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go p.Run(ctx)

		now := time.Now()
		o := newJournalOrder(t, j, "LAGGING01", now)
		o.Phase, o.State, o.FinishedAt, o.Queries, o.AuthCode = money.PhaseDone, money.Failed, now, DefaultPolicy().QueryAttempts, ""
		require.NoError(t, j.Update(func(tx *journal.Tx) error { return saveOrder(tx, o) }))
		_, err := p.Reopen("LAGGING01", "reconciliation: open at the gateway, final in the journal", now)
		require.NoError(t, err)
		time.Sleep(3 * time.Minute)
		synctest.Wait()

		var got money.Order
		require.NoError(t, j.View(func(tx *journal.Tx) error { got, _, err = tx.Order("LAGGING01"); return err }))
		assert.False(t, got.Final(), "the gateway showed it: a 301 is a lagging replica, not an end (%s)", got.State)
		assert.Equal(t, money.Unknown, got.State, "asked again until the gateway answers")
	})
}
