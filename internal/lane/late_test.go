package lane

import (
	"context"
	"testing"
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

// unknownAll: no answer is ever trusted.
type unknownAll struct{ declineAll }

func (unknownAll) Pay(context.Context, *payment.PayRequest) payment.Result {
	return payment.Result{Outcome: payment.Unknown, TradeState: payment.NoTradeState, Reason: "timeout"}
}

// (defect.StaleChargeShown) On a fixed-fee lane (parking gate, kiosk): the next customer has
// no charge until they scan. A charge that needed attention freed the lane,
// so its result, found later, is late: "Paid ¥5" — the very amount the next
// customer owes — must not reach the lane's display.
func TestLateResultOnFixedFeeLaneStaysOffTheDisplay(t *testing.T) {
	j := journaltest.Open(t)
	router, err := scanner.NewRouter(scanner.DefaultWallets())
	require.NoError(t, err)
	hub := display.NewHub()
	p := poller.New(poller.Options{Journal: j, Gateway: unknownAll{}})
	s := New(Options{Journal: j, Poller: p, Hub: hub, Router: router, StoreID: "S001", ClientIP: "127.0.0.1",
		Lanes: []Config{{ID: "G1", DeviceInfo: "GATE1", FixedFee: 500, Subject: "parking", Body: "parking", ChargeTTL: time.Minute}}})
	require.NoError(t, s.Start())

	require.NoError(t, s.Scan("G1", scanner.Scan{Code: "282941234567890123"})) // customer A
	time.Sleep(200 * time.Millisecond)                                         // the pay answered "unknown": query phase
	l := s.lanes["G1"]
	l.mu.Lock()
	var o money.Order
	for _, x := range l.orders {
		o = *x
	}
	l.mu.Unlock()
	require.NotEmpty(t, o.MchTradeID)

	// The flow ends without an answer: A needs attention, the gate is free.
	o.Phase, o.State = money.PhaseReconcile, money.Unknown
	journalStep(t, s, o)
	v, err := s.Get(o.ChargeID)
	require.NoError(t, err)
	require.Equal(t, money.NeedsAttention, v.Charge.State)

	// Customer B drives up; the reconciler then finds A paid.
	sub := hub.Subscribe("G1", 16)
	o.Phase, o.State, o.FinishedAt = money.PhaseDone, money.Paid, time.Now()
	journalStep(t, s, o)
	late := false
	for len(sub.C()) > 0 {
		e := <-sub.C()
		assert.True(t, e.Kind != display.Paid || !e.ForCustomer(), "customer B's display shows A's result: %+v", e)
		late = late || e.Kind == display.LateResult
	}
	assert.True(t, late, "the till hears of the late result")
}

// journalStep journals an order's step with its charge, as the poller
// does, and tells the service.
func journalStep(t *testing.T, s *Service, o money.Order) {
	t.Helper()
	var st money.Settled
	require.NoError(t, s.opt.Journal.Update(func(tx *journal.Tx) error {
		var err error
		st, err = tx.SaveStep(&o, time.Now())
		return err
	}))
	s.OrderUpdated(o, st)
}
