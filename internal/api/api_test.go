package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"example.com/posd/display"
	"example.com/posd/internal/checkout"
	"example.com/posd/internal/journal"
	"example.com/posd/internal/money"
	"example.com/posd/payment"
	"example.com/posd/poller"
	"example.com/posd/scanner"
)

// declineAll is a gateway that declines every pay at once.
type declineAll struct{}

func (declineAll) Pay(context.Context, *payment.PayRequest) payment.Result {
	return payment.Result{Outcome: payment.NotPaid, TradeState: payment.StateFailed}
}
func (declineAll) Query(context.Context, payment.OrderRef, int64) payment.Result {
	return payment.Result{Outcome: payment.NotPaid, TradeState: payment.StateFailed}
}
func (declineAll) RefundQuery(context.Context, *payment.RefundQueryRequest) payment.Result {
	return payment.Result{Outcome: payment.Done}
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

func newServer(t testing.TB) http.Handler {
	j, err := journal.Open(filepath.Join(t.TempDir(), "j.db"))
	require.NoError(t, err)
	t.Cleanup(func() { j.Close() })
	router, _ := scanner.NewRouter(scanner.DefaultWallets())
	var svc *checkout.Service
	p := poller.New(poller.Options{Journal: j, Gateway: declineAll{}, OnUpdate: func(o money.Order, st money.Settled) { svc.OrderUpdated(o, st) }})
	svc = checkout.New(checkout.Options{Journal: j, Poller: p, Hub: display.NewHub(), Router: router,
		Lanes:   []checkout.LaneConfig{{ID: "L1", DeviceInfo: "POS01", MaxFee: 1_000_000}, {ID: "K1", DeviceInfo: "K1", FixedFee: 5, Subject: "s", Body: "b"}},
		StoreID: "S001", ClientIP: "127.0.0.1"})
	require.NoError(t, svc.Start())
	t.Cleanup(func() { p.Wait(0) })
	return New(svc, zap.NewNop(), func() error { return nil }, func() any { return nil })
}

// FuzzAPIBodies: whatever a client sends, the API answers with JSON and a
// 2xx or 4xx status, never a 5xx or a crash.
func FuzzAPIBodies(f *testing.F) {
	for _, s := range []string{
		`{"lane":"L1","total_fee":1234,"subject":"s","body":"b"}`,
		`{"lane":"L1","total_fee":-1}`, `{"lane":"K1","total_fee":1e99}`, `{"lane":"L1","total_fee":"12"}`,
		`{"auth_code":"282941234567890123"}`, `{"auth_code":"282941234567890123","scene":"wave_code"}`,
		`{"auth_code":12}`, `[]`, `null`, ``, `{"lane":"L1","total_fee":1,"x":1}`,
	} {
		f.Add("/v1/charges", s)
		f.Add("/v1/lanes/L1/scans", s)
		f.Add("/v1/lanes/K1/scans", s)
	}
	h := newServer(f)
	f.Fuzz(func(t *testing.T, path, body string) {
		if path != "/v1/charges" && path != "/v1/lanes/L1/scans" && path != "/v1/lanes/K1/scans" {
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", path, bytes.NewBufferString(body)))
		if rec.Code >= 500 {
			t.Fatalf("%s %q: %d %s", path, body, rec.Code, rec.Body)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %q: not JSON: %s", path, body, rec.Body)
		}
		if path == "/v1/charges" && rec.Code == http.StatusCreated {
			var c struct{ ID string }
			_ = json.Unmarshal(rec.Body.Bytes(), &c)
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("DELETE", "/v1/charges/"+c.ID, nil))
		}
	})
}
