package lane

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/display"
	"example.com/posd/internal/journal"
	"example.com/posd/internal/journal/journaltest"
	"example.com/posd/internal/money"
	"example.com/posd/poller"
	"example.com/posd/scanner"
)

// paidCharge is a service whose lane L1 no longer holds charge CHP, paid
// 100 fen by attempt S001_POS01_A1, as a restart leaves it.
func paidCharge(t *testing.T) (*Service, *journal.Journal, *display.Hub, func(money.Order, money.Settled)) {
	j := journaltest.OpenWith(t, journal.Options{NoSync: true})
	router, err := scanner.NewRouter(scanner.DefaultWallets())
	require.NoError(t, err)
	var s *Service
	up := func(o money.Order, st money.Settled) { s.OrderUpdated(o, st) }
	p := poller.New(poller.Options{Journal: j, Gateway: declineAll{}, OnUpdate: up}) // never run: nothing is sent
	t.Cleanup(func() { p.Wait(10 * time.Millisecond) })
	hub := display.NewHub()
	s = New(Options{Journal: j, Poller: p, Hub: hub, Router: router, StoreID: "S001", ClientIP: "127.0.0.1",
		Lanes: []Config{{ID: "L1", DeviceInfo: "POS01"}}})
	require.NoError(t, s.Start())
	now := time.Now()
	o := money.NewOrder(money.Order{MchTradeID: "S001_POS01_A1", ChargeID: "CHP", Lane: "L1", TotalFee: 100, AuthCode: "134567890123456789"}, now)
	o.Phase, o.State, o.FinishedAt, o.TradeID = money.PhaseDone, money.Paid, now, "T1"
	c := money.Charge{ID: "CHP", Lane: "L1", TotalFee: 100, Subject: "s", Body: "b", State: money.Paid, AttemptIDs: []string{o.MchTradeID},
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now}
	require.NoError(t, j.Update(func(tx *journal.Tx) error { return tx.RecordAttempt(&o, &c) }))
	return s, j, hub, up
}

// A refund's end is told and printed even when the till asked the next
// refund before the lane heard of the first's end (the next one's record
// makes the first's step look behind the charge).
func TestRefundEndToldAfterTheNextRefundStarted(t *testing.T) {
	s, j, hub, up := paidCharge(t)
	r1, _, err := s.RefundCharge("CHP", RefundRequest{RefundFee: 30, RefundID: "R1"})
	require.NoError(t, err)
	var end money.Order
	var st money.Settled
	require.NoError(t, j.Update(func(tx *journal.Tx) error { // R1's end, committed by its step, not yet told
		o, _, _ := tx.Order("S001_POS01_A1")
		o.Phase, o.State, o.RefundResult, o.RefundedFee, o.FinishedAt = money.PhaseDone, money.Paid, money.Refunded, 30, time.Now()
		var err error
		st, err = tx.SaveStep(&o, time.Now())
		end = o
		return err
	}))
	require.True(t, st.RefundDone)
	require.Equal(t, r1.MchRefundID, st.Refund.MchRefundID)
	sub := hub.Subscribe("L1", 64)
	defer hub.Unsubscribe(sub)
	for len(sub.C()) > 0 {
		<-sub.C()
	}
	p2 := poller.New(poller.Options{Journal: j, Gateway: declineAll{}})
	t.Cleanup(func() { p2.Wait(10 * time.Millisecond) })
	r2 := money.Refund{MchRefundID: poller.RefundIDFor("S001_POS01_A1", "R2"), RefundID: "R2", RefundFee: 20}
	_, err = p2.StartRefund("S001_POS01_A1", &r2, time.Now())
	require.NoError(t, err)

	up(end, st) // now the lane hears of R1's end
	var told *display.Event
	for len(sub.C()) > 0 {
		if e := <-sub.C(); e.Kind == display.Refunded && e.TillRefundID == "R1" {
			told = &e
		}
	}
	require.NotNil(t, told, "R1's end is told (till event, refund receipt, customer display)")
	assert.Equal(t, int64(30), told.RefundFee)
	assert.Equal(t, money.PartiallyRefunded, told.ChargeState)
}

// A long-poll of a charge the lane no longer holds hears every change
// committed and told after it began: none sits out its wait.
func TestLongPollHearsAReleasedCharge(t *testing.T) {
	s, j, _, _ := paidCharge(t)
	l := s.lanes["L1"]
	const wait = 2 * time.Second
	for range 300 {
		var cur money.Charge
		require.NoError(t, j.View(func(tx *journal.Tx) error { cur, _, _ = tx.Charge("CHP"); return nil }))
		done := make(chan time.Duration, 1)
		go func() {
			start := time.Now()
			v, err := s.Wait(t.Context(), "CHP", wait, Seen{Version: cur.Version})
			if err != nil || v.Charge.Version == cur.Version {
				done <- wait
				return
			}
			done <- time.Since(start)
		}()
		require.NoError(t, j.Update(func(tx *journal.Tx) error { // a change committed, then told, as a step does
			_, _, err := tx.UpdateCharge("CHP", func(c *money.Charge) bool { c.RefundedFee++; return true })
			return err
		}))
		l.mu.Lock()
		changedLocked(l, "CHP")
		l.mu.Unlock()
		require.Less(t, <-done, wait, "a long-poll slept through a change")
	}
}

// A till that long-polls with the state it saw hears of a charge that left
// that state and came back before the long-poll woke (a quick decline).
func TestStateLongPollHearsALeaveAndReturn(t *testing.T) {
	s, _, _ := newService(t, Config{ID: "L1", DeviceInfo: "POS01"})
	v, _, err := s.Open(OpenRequest{Lane: "L1", TotalFee: 100, Subject: "s", Body: "b"})
	require.NoError(t, err)
	id := v.Charge.ID
	l := s.lanes["L1"]
	done := make(chan View, 1)
	go func() {
		v, _ := s.Wait(t.Context(), id, 10*time.Second, Seen{State: money.AwaitingScan})
		done <- v
	}()
	require.Eventually(t, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.watch[id]) > 0
	}, 5*time.Second, time.Millisecond)
	l.mu.Lock()
	c := l.charges[id]
	c.State, c.Version = money.Paying, c.Version+1
	changedLocked(l, id)
	c.State, c.Version, c.Reason = money.AwaitingScan, c.Version+1, "last attempt declined"
	changedLocked(l, id)
	l.mu.Unlock()
	select {
	case got := <-done:
		assert.Equal(t, money.AwaitingScan, got.Charge.State)
		assert.Equal(t, v.Charge.Version+2, got.Charge.Version)
	case <-time.After(5 * time.Second):
		t.Fatal("the long-poll slept through a payment that came and went")
	}
}
