package poller

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/journal"
	"example.com/posd/internal/money"
	"example.com/posd/payment"
)

// payingThenReversed: pending for every query, then the reverse works.
func payingThenReversed(c payment.Call, _ string, n int) payment.Result {
	if c == payment.CallReverse {
		return res(payment.NotPaid, 4)
	}
	return res(payment.Pending, 6)
}

func newJournalOrder(t *testing.T, j *journal.Journal, id string, now time.Time) money.Order {
	o := money.NewOrder(money.Order{MchTradeID: id, TotalFee: 100, DeviceInfo: "L1", AuthCode: "281234567890123456",
		PayType: "alipay.micro", Subject: "s", Body: "b", ClientIP: "127.0.0.1"}, now)
	require.NoError(t, j.Update(func(tx *journal.Tx) error { return saveOrder(tx, o) }))
	return o
}

func TestPollerScheduleOnTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw := &fakeGateway{answer: payingThenReversed}
		var mu sync.Mutex
		final := map[string]money.State{}
		p, j := newTestPoller(t, gw, func(o money.Order, _ money.Settled) {
			if o.Final() {
				mu.Lock()
				final[o.MchTradeID] = o.State
				mu.Unlock()
			}
		})
		ctx, cancel := context.WithCancel(t.Context())
		go p.Run(ctx)
		start := time.Now()
		for i := range 20 {
			p.Launch(newJournalOrder(t, j, fmt.Sprintf("ORDER%03d", i), start))
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		cancel()
		require.True(t, p.Wait(time.Second))

		require.Len(t, final, 20)
		for id, st := range final {
			assert.Equal(t, money.Reversed, st, id)
			calls := gw.callsOf(id)
			require.Len(t, calls, 1+6+1+1, id)
			for k := 1; k <= 6; k++ {
				assert.Equal(t, payment.CallQuery, calls[k].call)
				assert.Equal(t, start.Add(time.Duration(k)*5*time.Second), calls[k].at, "query %d on schedule", k)
			}
			assert.Equal(t, payment.CallReverse, calls[7].call)
		}
		assert.Equal(t, 0, p.Pending())
	})
}

func TestPollerResumesFromJournal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw := &fakeGateway{answer: func(c payment.Call, id string, n int) payment.Result {
			if c == payment.CallPay {
				return res(payment.Paid, 0)
			}
			return payingThenReversed(c, id, n)
		}}
		p, j := newTestPoller(t, gw, nil)
		now := time.Now()

		// An order mid-way through its queries, and two whose pay outcome
		// was never recorded: they are queried, never paid again.
		mid := newJournalOrder(t, j, "MIDQUERY1", now)
		mid.AuthCode, mid.Phase, mid.Queries, mid.NextAt = "", money.PhaseQuery, 3, now.Add(5*time.Second)
		require.NoError(t, j.Update(func(tx *journal.Tx) error { return saveOrder(tx, mid) }))
		newJournalOrder(t, j, "FRESHPAY1", now.Add(-10*time.Second))
		newJournalOrder(t, j, "STALEPAY1", now.Add(-10*time.Minute))
		done := newJournalOrder(t, j, "DONEORDER", now)
		done.Phase, done.State, done.AuthCode = money.PhaseDone, money.Paid, ""
		require.NoError(t, j.Update(func(tx *journal.Tx) error { return saveOrder(tx, done) }))

		n, err := p.Resume(now)
		require.NoError(t, err)
		assert.Equal(t, 3, n, "the final order is not resumed")
		ctx, cancel := context.WithCancel(t.Context())
		go p.Run(ctx)
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		cancel()
		p.Wait(time.Second)

		fresh := gw.callsOf("FRESHPAY1")
		require.NotEmpty(t, fresh)
		assert.Equal(t, payment.CallQuery, fresh[0].call, "a pay cut short is queried, not sent again")
		stale := gw.callsOf("STALEPAY1")
		require.NotEmpty(t, stale)
		assert.Equal(t, payment.CallQuery, stale[0].call)
		midCalls := gw.callsOf("MIDQUERY1")
		require.Len(t, midCalls, 3+1+1, "queries 4-6, reverse, confirm")
		assert.Empty(t, gw.callsOf("DONEORDER"))

		var got money.Order
		require.NoError(t, j.View(func(tx *journal.Tx) error {
			var err error
			got, _, err = tx.Order("STALEPAY1")
			return err
		}))
		assert.Equal(t, money.Reversed, got.State)
		assert.Empty(t, got.AuthCode, "the journal keeps no full code once the pay has an outcome")
		require.NoError(t, j.Close())
	})
}

func TestPollerRefund(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw := &fakeGateway{answer: func(c payment.Call, _ string, n int) payment.Result {
			switch c {
			case payment.CallRefund:
				return res(payment.Done, payment.NoTradeState)
			case payment.CallRefundQuery:
				return res(payment.NotFound, payment.NoTradeState) // asked before it is sent: not made yet
			case payment.CallQuery:
				return res(payment.Paid, 1)
			}
			return res(payment.Paid, 0)
		}}
		p, j := newTestPoller(t, gw, nil)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go p.Run(ctx)
		o := newJournalOrder(t, j, "REFUNDME1", time.Now())
		_, err := p.StartRefund(o.MchTradeID, &money.Refund{RefundID: "T1", MchRefundID: RefundIDFor(o.MchTradeID, "T1")}, time.Now())
		assert.Error(t, err, "an order that is not paid is not refunded")
		p.Launch(o)
		time.Sleep(time.Second)
		synctest.Wait()
		_, err = p.StartRefund(o.MchTradeID, &money.Refund{RefundID: "T1", MchRefundID: RefundIDFor(o.MchTradeID, "T1")}, time.Now())
		require.NoError(t, err)
		time.Sleep(time.Second)
		synctest.Wait()
		var got money.Order
		require.NoError(t, j.View(func(tx *journal.Tx) error { var err error; got, _, err = tx.Order(o.MchTradeID); return err }))
		assert.Equal(t, money.Refunded, got.State)
		assert.Equal(t, RefundIDFor("REFUNDME1", "T1"), got.RefundID)
	})
}

// An operator's decision takes an unresolved order off the schedule; when
// it cannot be recorded, the order goes on being driven as before.
func TestResolve(t *testing.T) {
	var updates []money.Order
	p, j := newTestPoller(t, &fakeGateway{answer: payingThenReversed}, func(o money.Order, _ money.Settled) { updates = append(updates, o) })
	now := time.Now()
	for _, id := range []string{"STUCK0001", "STUCK0002", "STUCK0003", "STUCK0004"} {
		o := newJournalOrder(t, j, id, now)
		o.Phase, o.State, o.NextAt = money.PhaseReconcile, money.Unknown, now.Add(time.Hour)
		require.NoError(t, j.Update(func(tx *journal.Tx) error { return saveOrder(tx, o) }))
	}
	_, err := p.Resume(now)
	require.NoError(t, err)
	require.Equal(t, 4, p.Pending())

	// Paid, and refunded in part since (what the gateway shows).
	_, err = p.Resolve("STUCK0003", Decision{Paid: true, RefundedFee: 101, By: "alice", Why: "portal"}, now)
	assert.Error(t, err, "more refunded than the order")
	_, err = p.Resolve("STUCK0003", Decision{Paid: false, RefundedFee: 30, By: "alice", Why: "portal"}, now)
	assert.Error(t, err, "refunds of an unpaid order")
	o, err := p.Resolve("STUCK0003", Decision{Paid: true, RefundedFee: 30, By: "alice", Why: "portal shows 0.30 refunded"}, now)
	require.NoError(t, err)
	assert.Equal(t, [2]any{money.Paid, int64(30)}, [2]any{o.State, o.RefundedFee})
	o, err = p.Resolve("STUCK0004", Decision{Paid: true, RefundedFee: 100, By: "alice", Why: "portal shows it refunded"}, now)
	require.NoError(t, err)
	assert.Equal(t, money.Refunded, o.State)
	require.Equal(t, 2, p.Pending())
	updates = nil

	_, err = p.Resolve("STUCK0001", Decision{Paid: true, By: "alice", Why: ""}, now)
	assert.Error(t, err, "who and why are required")
	o, err = p.Resolve("STUCK0001", Decision{Paid: false, By: "alice", Why: "portal shows it closed"}, now)
	require.NoError(t, err)
	assert.Equal(t, money.Declined, o.State)
	assert.Equal(t, money.PhaseDone, o.Phase)
	assert.Equal(t, 1, p.Pending(), "off the schedule")
	require.Len(t, updates, 1)
	_, err = p.Resolve("STUCK0001", Decision{Paid: true, By: "bob", Why: "again"}, now)
	assert.Error(t, err, "a final order is not resolved twice")

	require.NoError(t, j.Close())
	_, err = p.Resolve("STUCK0002", Decision{Paid: true, By: "alice", Why: "says the gateway"}, now)
	require.Error(t, err, "the journal cannot record it")
	assert.Equal(t, 1, p.Pending(), "still driven")
	p.mu.Lock()
	assert.Len(t, p.queue, 1, "back on the schedule")
	p.mu.Unlock()
}

// saveOrder journals an order as a step would.
func saveOrder(tx *journal.Tx, o money.Order) error {
	_, err := tx.SaveStep(&o, time.Now())
	return err
}
