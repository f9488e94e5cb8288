package lane

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/display"
	"example.com/posd/internal/clock"
	"example.com/posd/internal/journal/journaltest"
	"example.com/posd/internal/money"
	"example.com/posd/payment"
	"example.com/posd/poller"
	"example.com/posd/scanner"
)

// payAll pays every pay at once.
type payAll struct{ declineAll }

func (payAll) Pay(context.Context, *payment.PayRequest) payment.Result { return paid }

func (payAll) Query(context.Context, payment.OrderRef, int64) payment.Result { return paid }

var paid = payment.Result{Outcome: payment.Paid, TradeState: payment.StatePaid, TotalFee: 1000, TradeID: "T1"}

// A sale paid while the box's clock ran twelve years ahead: once the clock
// is set right, its charge is dated in the future. Its reference and its
// Idempotency-Key bind nothing (a new sale with them is a new charge, never
// answered "paid"), and no refund is judged by it.
func TestAChargeFromTheFutureBindsNothing(t *testing.T) {
	off := 12 * 365 * 24 * time.Hour
	wall := func() time.Time { return time.Now().Add(off) }
	j := journaltest.Open(t)
	router, err := scanner.NewRouter(scanner.DefaultWallets())
	require.NoError(t, err)
	var futures []string
	var s *Service
	p := poller.New(poller.Options{Journal: j, Gateway: payAll{}, OnUpdate: func(o money.Order, st money.Settled) { s.OrderUpdated(o, st) }})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go p.Run(ctx)
	s = New(Options{Journal: j, Poller: p, Hub: display.NewHub(), Router: router,
		Lanes: []Config{{ID: "L1", DeviceInfo: "POS01"}}, StoreID: "S001", ClientIP: "127.0.0.1",
		Clock:    clock.New(time.Time{}, wall),
		OnFuture: func(kind, id string, _ time.Time) { futures = append(futures, kind+" "+id) }})
	require.NoError(t, s.Start())

	sale := OpenRequest{Lane: "L1", TotalFee: 1000, Subject: "s", Body: "b", Reference: "S-1", IdempotencyKey: "K-1"}
	old, created, err := s.Open(sale)
	require.NoError(t, err)
	require.True(t, created)
	require.NoError(t, s.Scan("L1", scanner.Scan{Code: "282941234567890123"}))
	require.Eventually(t, func() bool {
		v, err := s.Get(old.Charge.ID)
		return err == nil && v.Charge.State == money.Paid
	}, 5*time.Second, 5*time.Millisecond)
	same, created, err := s.Open(sale)
	require.NoError(t, err)
	assert.False(t, created, "while the clock stays as it was, the reference is the sale's")
	assert.Equal(t, old.Charge.ID, same.Charge.ID)

	off = 0 // NTP sets the clock right
	again := sale
	again.IdempotencyKey = "K-2"
	fresh, created, err := s.Open(again)
	require.NoError(t, err)
	assert.True(t, created, "a reference dated in the future binds nothing")
	assert.NotEqual(t, old.Charge.ID, fresh.Charge.ID)
	assert.Equal(t, money.AwaitingScan, fresh.Charge.State)
	_, err = s.Cancel(fresh.Charge.ID)
	require.NoError(t, err)

	other := sale
	other.Reference, other.TotalFee = "S-2", 500
	keyed, created, err := s.Open(other)
	require.NoError(t, err, "an Idempotency-Key dated in the future is not 'used with other parameters'")
	assert.True(t, created)
	assert.NotEqual(t, old.Charge.ID, keyed.Charge.ID)
	_, err = s.Cancel(keyed.Charge.ID)
	require.NoError(t, err)

	_, _, err = s.RefundCharge(old.Charge.ID, RefundRequest{RefundID: "r1", RefundFee: 100})
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrInvalid), "a till must not retry it: %v", err)
	assert.Contains(t, err.Error(), "clock")
	assert.NotEmpty(t, futures, "each record stepped over is reported")
}
