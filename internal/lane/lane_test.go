package lane

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/display"
	"example.com/posd/internal/journal"
	"example.com/posd/internal/journal/journaltest"
	"example.com/posd/internal/tradeid"
	"example.com/posd/payment"
	"example.com/posd/poller"
	"example.com/posd/scanner"
)

func newService(t *testing.T, lanes ...Config) (*Service, *journal.Journal, *display.Hub) {
	j := journaltest.Open(t)
	router, err := scanner.NewRouter(scanner.DefaultWallets())
	require.NoError(t, err)
	hub := display.NewHub()
	p := poller.New(poller.Options{Journal: j, Gateway: declineAll{}})
	// A pay a scan launched is saved before the journal closes under it:
	// otherwise its step retries the write until the process ends.
	t.Cleanup(func() { p.Wait(time.Second) })
	s := New(Options{Journal: j, Poller: p, Hub: hub, Router: router, Lanes: lanes, StoreID: "S001", ClientIP: "127.0.0.1"})
	require.NoError(t, s.Start())
	return s, j, hub
}

// If the journal cannot be written the lanes go out of service: no pay is
// sent without a record, and every display says so.
func TestJournalUnwritableTakesLanesOutOfService(t *testing.T) {
	s, j, hub := newService(t, Config{ID: "L1", DeviceInfo: "POS01"})
	sub := hub.Subscribe("L1", 16)
	c, _, err := s.Open(OpenRequest{Lane: "L1", TotalFee: 100, Subject: "s", Body: "b"})
	require.NoError(t, err)

	require.NoError(t, j.Close()) // every write now fails
	err = s.Scan("L1", scanner.Scan{Code: "282941234567890123"})
	require.Error(t, err)
	ok, why := s.InService()
	assert.False(t, ok)
	assert.Contains(t, why, "journal")

	sawOOS := false
	for len(sub.C()) > 0 {
		if e := <-sub.C(); e.Kind == display.OutOfService {
			sawOOS = true
		}
	}
	assert.True(t, sawOOS, "the displays show the lane out of service")
	_, _, err = s.Open(OpenRequest{Lane: "L1", TotalFee: 1, Subject: "s", Body: "b"})
	assert.True(t, errors.Is(err, ErrOutOfService) || errors.Is(err, ErrConflict), "%v", err)
	v, err := s.Get(c.Charge.ID)
	if err == nil {
		assert.Empty(t, v.Attempts, "no attempt exists without its record")
	}
	s.JournalError(nil)
	ok, _ = s.InService()
	assert.True(t, ok, "back in service once writes work")
}

func TestTradeIDs(t *testing.T) {
	_, j, _ := newService(t, Config{ID: "L1", DeviceInfo: "POS-01"})
	id := tradeid.New("S001", "POS-01", j.Epoch(), 36*36*36*36*36*36-1)
	assert.Equal(t, "S001_POS01_"+j.Epoch()+"ZZZZZZ", id)
	assert.LessOrEqual(t, len(id), 30)
	assert.Equal(t, "Ab12", tradeid.Part("A-b_1 2"), "only what a mch_trade_id may hold")
}

// declineAll declines every pay at once.
type declineAll struct{}

func (declineAll) Pay(context.Context, *payment.PayRequest) payment.Result {
	return payment.Result{Outcome: payment.NotPaid, TradeState: payment.StateFailed}
}
func (declineAll) Query(context.Context, payment.OrderRef, int64) payment.Result {
	return payment.Result{Outcome: payment.NotPaid, TradeState: payment.StateFailed}
}
func (declineAll) Reverse(context.Context, payment.OrderRef) payment.Result {
	return payment.Result{Outcome: payment.NotPaid, TradeState: payment.StateReversed}
}
func (declineAll) Close(context.Context, payment.OrderRef) payment.Result {
	return payment.Result{Outcome: payment.Done}
}
func (declineAll) Refund(context.Context, *payment.RefundRequest) payment.Result {
	return payment.Result{Outcome: payment.Done}
}
func (declineAll) RefundQuery(context.Context, *payment.RefundQueryRequest) payment.Result {
	return payment.Result{Outcome: payment.Done}
}

// A scan refused because no charge was open does not count as taken: the
// same code scanned again once the till opened the charge pays it. A code
// that started a payment is one scan within the window.
func TestRefusedScanIsNotADuplicate(t *testing.T) {
	s, _, _ := newService(t, Config{ID: "L1", DeviceInfo: "POS01"})
	code := "282941234567890123"
	err := s.Scan("L1", scanner.Scan{Code: code})
	require.ErrorIs(t, err, ErrConflict)
	assert.Contains(t, err.Error(), "no charge open")
	c, _, err := s.Open(OpenRequest{Lane: "L1", TotalFee: 100, Subject: "s", Body: "b"})
	require.NoError(t, err)
	require.NoError(t, s.Scan("L1", scanner.Scan{Code: code}), "the same code, now with a charge open")
	err = s.Scan("L1", scanner.Scan{Code: code})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "scanned twice")
	v, err := s.Get(c.Charge.ID)
	require.NoError(t, err)
	assert.Len(t, v.Charge.AttemptIDs, 1)
}
