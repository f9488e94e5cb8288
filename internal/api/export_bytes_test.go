package api

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"example.com/posd/internal/money"
)

type fakeHistory struct {
	orders []money.Order
	failAt int // -1: never; else fn's call index at which the store fails
}

func (h *fakeHistory) Orders(bool, int) ([]money.Order, error)            { return nil, nil }
func (h *fakeHistory) Report(time.Time, time.Time) ([]money.Total, error) { return nil, nil }
func (h *fakeHistory) Totals(time.Time, time.Time, money.TotalsFilter) ([]money.WalletTotals, error) {
	return nil, nil
}
func (h *fakeHistory) ExportEach(_, _ time.Time, fn func(*money.Order) error) error {
	for i := range h.orders {
		if i == h.failAt {
			return errors.New("journal: damaged page")
		}
		if err := fn(&h.orders[i]); err != nil {
			return err
		}
	}
	if h.failAt == len(h.orders) {
		return errors.New("journal: damaged page")
	}
	return nil
}

func someOrders(n int) []money.Order {
	t0 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.Local)
	out := make([]money.Order, n)
	for i := range out {
		out[i] = money.Order{MchTradeID: fmt.Sprintf("S1_L1_%06d", i), ChargeID: "CH" + strconv.Itoa(i), Lane: "L1", Wallet: "alipay",
			TotalFee: int64(100 + i), State: money.Paid, CreatedAt: t0.Add(time.Duration(i) * time.Second),
			ErrMsg: "<b>&\u2028\"x\"</b>", TradeState: -99}
		out[i].FinishedAt = out[i].CreatedAt.Add(time.Second)
	}
	return out
}

// the streamed JSON and CSV are byte for byte what the whole
// answer was.
func TestExportSameBytesAsAWholeAnswer(t *testing.T) {
	for _, n := range []int{0, 1, 3, 700} {
		h := &fakeHistory{orders: someOrders(n), failAt: -1}
		s := New(nil, h, zap.NewNop(), nil, nil)
		as := make([]Attempt, 0, n)
		for i := range h.orders {
			as = append(as, exportOf(&h.orders[i]))
		}
		old := httptest.NewRecorder()
		writeJSON(old, 200, map[string]any{"orders": as})
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest("GET", "/v1/export?from=2026-11-25&to=2026-11-25", nil))
		assert.Equal(t, 200, w.Code)
		assert.Equal(t, old.Body.String(), w.Body.String(), "json n=%d", n)

		out := [][]string{exportColumns}
		for _, a := range as {
			out = append(out, []string{a.CreatedAt.Format(time.RFC3339), a.FinishedAt.Format(time.RFC3339), a.Lane, a.ChargeID, a.MchTradeID, a.Wallet, a.PayType,
				string(a.State), strconv.FormatInt(a.TotalFee, 10), a.TradeID, a.OutTradeID, a.AuthCode, a.ErrMsg, a.Resolution,
				strconv.FormatInt(a.CouponFee, 10), strconv.FormatInt(a.BuyerPayAmount, 10), a.OpUserID, a.Shift})
		}
		oldCSV := httptest.NewRecorder()
		writeCSV(oldCSV, out)
		w = httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest("GET", "/v1/export?from=2026-11-25&to=2026-11-25&format=csv", nil))
		assert.Equal(t, oldCSV.Body.String(), w.Body.String(), "csv n=%d", n)
	}
}

// a failure after orders were written reaches a real HTTP client
// as an error; before any, as a 500.
func TestExportCutShortIsSeen(t *testing.T) {
	for _, c := range []struct {
		n, failAt int
		format    string
	}{{700, 0, ""}, {700, 0, "csv"}, {700, 3, ""}, {700, 3, "csv"}, {700, 600, ""}, {700, 600, "csv"}, {700, 700, ""}, {700, 700, "csv"}} {
		h := &fakeHistory{orders: someOrders(c.n), failAt: c.failAt}
		srv := httptest.NewServer(New(nil, h, zap.NewNop(), nil, nil))
		srv.Config.ErrorLog = nil
		resp, err := http.Get(srv.URL + "/v1/export?from=2026-11-25&to=2026-11-25&format=" + c.format)
		var body []byte
		if err == nil {
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		srv.Close()
		if c.failAt == 0 {
			require.NoError(t, err)
			assert.Equal(t, 500, resp.StatusCode, "%+v", c)
			continue
		}
		assert.Error(t, err, "%+v: a cut-short export read as complete (%d bytes)", c, len(body))
		if err == nil && c.format == "" {
			assert.Error(t, json.Unmarshal(body, new(any)))
		}
		if err == nil && c.format == "csv" {
			rows, _ := csv.NewReader(bytes.NewReader(body)).ReadAll()
			t.Logf("csv rows read: %d", len(rows))
		}
	}
}
