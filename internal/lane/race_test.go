package lane

// The poller commits a step with its charge
// (SaveStep), and tells the lane (OrderUpdated) only after the commit, once
// it gets the lane's lock. A lane change that comes in between reads the
// committed charge; these tests put each such change in that window.

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/display"
	"example.com/posd/internal/journal"
	"example.com/posd/internal/journal/journaltest"
	"example.com/posd/internal/money"
	"example.com/posd/payment"
	"example.com/posd/poller"
	"example.com/posd/scanner"
)

// holdPay never answers a call until the poller cuts its calls short.
type holdPay struct{}

func (holdPay) hold(ctx context.Context) payment.Result {
	<-ctx.Done()
	return payment.Result{Outcome: payment.Unknown, TradeState: payment.NoTradeState, Reason: "cut short"}
}
func (g holdPay) Pay(ctx context.Context, _ *payment.PayRequest) payment.Result { return g.hold(ctx) }
func (g holdPay) Query(ctx context.Context, _ payment.OrderRef, _ int64) payment.Result {
	return g.hold(ctx)
}
func (g holdPay) Reverse(ctx context.Context, _ payment.OrderRef) payment.Result { return g.hold(ctx) }
func (g holdPay) Close(ctx context.Context, _ payment.OrderRef) payment.Result   { return g.hold(ctx) }
func (g holdPay) Refund(ctx context.Context, _ *payment.RefundRequest) payment.Result {
	return g.hold(ctx)
}
func (g holdPay) RefundQuery(ctx context.Context, _ *payment.RefundQueryRequest) payment.Result {
	return g.hold(ctx)
}

// zzPaying starts a service whose lane L1 holds a charge being paid by
// attempt A (querying), expiring at exp; it returns A.
func zzPaying(t *testing.T, exp time.Time) (*Service, *journal.Journal, *poller.Poller, money.Order) {
	t.Helper()
	j := journaltest.Open(t)
	now := time.Now()
	o := money.NewOrder(money.Order{MchTradeID: "S001_POS01_A1", ChargeID: "CH1", Lane: "L1", TotalFee: 100, AuthCode: "134567890123456789"}, now)
	o.Phase = money.PhaseQuery
	c := money.Charge{ID: "CH1", Lane: "L1", TotalFee: 100, Subject: "s", Body: "b", State: money.Paying, AttemptIDs: []string{o.MchTradeID},
		CreatedAt: now, UpdatedAt: now, ExpiresAt: exp}
	require.NoError(t, j.Update(func(tx *journal.Tx) error { return tx.RecordAttempt(&o, &c) }))
	router, err := scanner.NewRouter(scanner.DefaultWallets())
	require.NoError(t, err)
	p := poller.New(poller.Options{Journal: j, Gateway: holdPay{}})
	t.Cleanup(func() { p.Wait(10 * time.Millisecond) })
	s := New(Options{Journal: j, Poller: p, Hub: display.NewHub(), Router: router, StoreID: "S001", ClientIP: "127.0.0.1",
		Lanes: []Config{{ID: "L1", DeviceInfo: "POS01", ChargeTTL: time.Minute}}})
	require.NoError(t, s.Start())
	return s, j, p, o
}

// zzDecline commits A's final "declined" with its charge, as the poller's
// save does, without telling the lane yet.
func zzDecline(t *testing.T, j *journal.Journal, o money.Order) (money.Order, money.Settled) {
	t.Helper()
	o.Phase, o.State, o.FinishedAt = money.PhaseDone, money.Declined, time.Now()
	var st money.Settled
	require.NoError(t, j.Update(func(tx *journal.Tx) error {
		var err error
		st, err = tx.SaveStep(&o, time.Now())
		return err
	}))
	require.Equal(t, money.AwaitingScan, st.Charge.State)
	return o, st
}

func zzStored(t *testing.T, j *journal.Journal, id string) money.Charge {
	t.Helper()
	var c money.Charge
	require.NoError(t, j.View(func(tx *journal.Tx) error { c, _, _ = tx.Charge(id); return nil }))
	return c
}

// The till cancels while the attempt's decline is committed but not yet
// told to the lane: the cancel decides on the committed charge (awaiting a
// scan) and cancels it; it must not stay open and payable.
func TestCancelRacingADecline(t *testing.T) {
	s, j, _, a := zzPaying(t, time.Now().Add(time.Minute))
	a, st := zzDecline(t, j, a)
	v, err := s.Cancel("CH1")
	require.NoError(t, err)
	s.OrderUpdated(a, st) // the poller gets s.mu now
	assert.Equal(t, money.Canceled, v.Charge.State, "what Cancel answered the till")
	assert.Equal(t, money.Canceled, zzStored(t, j, "CH1").State, "the charge the till canceled, in the journal")
}

// Same window, then the lane changes the charge again (here: the customer
// scans a new code): attempt B is paying when A's stale step arrives. Its
// event must not be shown, nor the lane freed while B's payment is in
// flight (B's result would be "late").
func TestStaleStepLeavesTheLaneAlone(t *testing.T) {
	s, j, _, a := zzPaying(t, time.Now().Add(time.Minute))
	a, st := zzDecline(t, j, a)
	// The lane learns of the decline from the journal (as a scan in the
	// window would meet it), then B is scanned.
	l := s.lanes["L1"]
	l.mu.Lock()
	*l.charges["CH1"] = zzStored(t, j, "CH1")
	l.mu.Unlock()
	require.NoError(t, s.Scan("L1", scanner.Scan{Code: "282941234567890123"}), "attempt B")
	sub := s.opt.Hub.Subscribe("L1", 16)
	for len(sub.C()) > 0 {
		<-sub.C()
	}
	s.OrderUpdated(a, st)
	for len(sub.C()) > 0 {
		e := <-sub.C()
		assert.NotEqual(t, display.Declined, e.Kind, "A's stale decline shown while B pays: %+v", e)
	}
	info, err := s.Lane("L1")
	require.NoError(t, err)
	require.NotNil(t, info.Charge, "lane L1 was freed while its charge is paying (attempt B in flight)")
	assert.Equal(t, money.Paying, info.Charge.Charge.State)
}

// The attempt is declined just before the charge's expiry; the expiry timer
// fires while the commit is being fsync'd (the lane's copy still says
// paying); the lane then adopts "awaiting_scan" from a Settle that ran
// before the expiry. The expiry must still cancel the charge: it decides on
// the charge as stored.
func TestExpiryDuringStepCommitCancels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		exp := time.Now().Add(300 * time.Millisecond)
		s, j, _, a := zzPaying(t, exp)
		a, st := zzDecline(t, j, a)
		time.Sleep(time.Until(exp) + 150*time.Millisecond) // the timer fired
		synctest.Wait()
		s.OrderUpdated(a, st)
		c := zzStored(t, j, "CH1")
		assert.Equal(t, money.Canceled, c.State, "charge %s after its expiry", c.ID)
		_, err := s.Lane("L1")
		require.NoError(t, err)
		assert.Empty(t, s.lanes["L1"].open, "the lane is free")
	})
}
