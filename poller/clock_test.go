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

// An order journaled while the wall clock ran a year ahead has its next
// query a year off once the clock is set right: resumed, it is asked
// within the machine's first reconciling wait and reaches its final
// state, not a year later.
func TestResumeAsksAnOrderScheduledByAClockRunAhead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw := &fakeGateway{answer: func(payment.Call, string, int) payment.Result { return res(payment.Paid, 0) }}
		p, j := newTestPoller(t, gw, nil)
		now := time.Now()
		o := newJournalOrder(t, j, "AHEAD1", now)
		o.AuthCode, o.Phase, o.Queries, o.NextAt = "", money.PhaseQuery, 1, now.AddDate(1, 0, 0)
		require.NoError(t, j.Update(func(tx *journal.Tx) error { return saveOrder(tx, o) }))
		// One put off as the machine does (a lagging replica's 301 must
		// outlast the wait): kept as it was.
		soon := newJournalOrder(t, j, "SOON1", now)
		soon.AuthCode, soon.Phase, soon.Queries, soon.NextAt = "", money.PhaseReconcile, 6, now.Add(50*time.Second)
		require.NoError(t, j.Update(func(tx *journal.Tx) error { return saveOrder(tx, soon) }))

		_, err := p.Resume(now)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		go p.Run(ctx)
		time.Sleep(40 * time.Second)
		synctest.Wait()
		assert.Empty(t, gw.callsOf("SOON1"), "an order put off by the machine waits its time")
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		cancel()
		p.Wait(time.Second)

		var got money.Order
		require.NoError(t, j.View(func(tx *journal.Tx) error { got, _, err = tx.Order("AHEAD1"); return err }))
		assert.Equal(t, money.Paid, got.State)
		assert.NotEmpty(t, gw.callsOf("AHEAD1"))
	})
}
