package lane

import (
	"context"
	"testing"
	"testing/synctest"
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

// payingGateway keeps every order paying (the customer still at the
// password) until paid is closed, then pays it.
type payingGateway struct {
	declineAll
	paid chan struct{}
}

func (g payingGateway) answer() payment.Result {
	select {
	case <-g.paid:
		return payment.Result{Outcome: payment.Paid, TradeState: payment.StatePaid, TradeID: "T1"}
	default:
		return payment.Result{Outcome: payment.Pending, TradeState: payment.StatePaying}
	}
}
func (g payingGateway) Pay(context.Context, *payment.PayRequest) payment.Result { return g.answer() }
func (g payingGateway) Query(context.Context, payment.OrderRef, int64) payment.Result {
	return g.answer()
}

// A long-poll with the version the till saw answers when the charge's
// version changes, and only then: the attempt's queries (its phase and
// version moving every few seconds) wake no till that gave a version.
func TestLongPollAnswersOnANewVersionOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := journaltest.Open(t)
		router, err := scanner.NewRouter(scanner.DefaultWallets())
		require.NoError(t, err)
		gw := payingGateway{paid: make(chan struct{})}
		var s *Service
		p := poller.New(poller.Options{Journal: j, Gateway: gw, Policy: poller.DefaultPolicy(),
			OnUpdate: func(o money.Order, st money.Settled) { s.OrderUpdated(o, st) }})
		ctx, stop := context.WithCancel(context.Background())
		go p.Run(ctx)
		defer func() { stop(); p.Wait(time.Second) }()
		// synctest's clock starts in 2000, which a box refuses to pay in.
		const era = 26 * 365 * 24 * time.Hour
		wall := func() time.Time { return time.Now().Add(era) }
		s = New(Options{Journal: j, Poller: p, Hub: display.NewHub(), Router: router,
			Lanes: []Config{{ID: "L1", DeviceInfo: "POS01"}}, StoreID: "S001", ClientIP: "127.0.0.1",
			Clock: clock.New(wall(), wall)})
		require.NoError(t, s.Start())

		v, _, err := s.Open(OpenRequest{Lane: "L1", TotalFee: 100, Subject: "s", Body: "b"})
		require.NoError(t, err)
		require.NoError(t, s.Scan("L1", scanner.Scan{Code: "282941234567890123"}))
		synctest.Wait()
		v, err = s.Get(v.Charge.ID)
		require.NoError(t, err)
		require.Equal(t, money.Paying, v.Charge.State)
		seen := v.Charge.Version
		attempt := v.Attempts[0].Version

		// Several queries go by, each a change of the attempt.
		start := time.Now()
		got, err := s.Wait(t.Context(), v.Charge.ID, 30*time.Second, Seen{Version: seen})
		require.NoError(t, err)
		assert.Equal(t, 30*time.Second, time.Since(start), "no answer before the wait ends")
		assert.Equal(t, seen, got.Charge.Version)
		assert.Greater(t, got.Attempts[0].Version, attempt, "the attempt moved meanwhile")

		// Without a version, the next change of any kind answers.
		start = time.Now()
		_, err = s.Wait(t.Context(), v.Charge.ID, 30*time.Second, Seen{})
		require.NoError(t, err)
		assert.Less(t, time.Since(start), 30*time.Second)

		// The payment lands: a new version, answered at once.
		close(gw.paid)
		got, err = s.Wait(t.Context(), v.Charge.ID, 30*time.Second, Seen{Version: seen})
		require.NoError(t, err)
		assert.Equal(t, money.Paid, got.Charge.State)
		assert.Greater(t, got.Charge.Version, seen)
	})
}
