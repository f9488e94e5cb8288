package api_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// refundJSON is a refund as the till reads it.
type refundJSON struct {
	MchRefundID string `json:"mch_refund_id"`
	RefundID    string `json:"refund_id"`
	RefundFee   int64  `json:"refund_fee"`
	State       string `json:"state"`
}

type chargeJSON struct {
	ID          string   `json:"id"`
	State       string   `json:"state"`
	RefundedFee int64    `json:"refunded_fee"`
	Refunds     []string `json:"refunds"`
}

func decodeAs[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(b, &v), "%s", b)
	return v
}

// Returning one item: several refunds of one paid charge, each journaled
// and confirmed at the (sandbox) gateway, until the paid amount is used
// up; more is refused before anything is sent.
func TestPartialRefunds(t *testing.T) {
	s := newServer(t)
	const host = "127.0.0.1:8321"
	post := func(path, body string) *http.Response {
		w := send(s, "POST", host, path, body, "Content-Type", "application/json")
		return w.Result()
	}
	w := send(s, "POST", host, "/v1/charges", `{"lane":"L1","total_fee":1000,"subject":"s","body":"b"}`, "Content-Type", "application/json")
	require.Equal(t, http.StatusCreated, w.Code, "%s", w.Body)
	c := decodeAs[chargeJSON](t, w.Body.Bytes())
	w = send(s, "POST", host, "/v1/lanes/L1/scans", `{"auth_code":"282941234567890100"}`, "Content-Type", "application/json")
	require.Equal(t, http.StatusAccepted, w.Code, "%s", w.Body)
	charge := func() chargeJSON {
		return decodeAs[chargeJSON](t, send(s, "GET", host, "/v1/charges/"+c.ID+"?wait=2s", "").Body.Bytes())
	}
	settled := func(want string) chargeJSON {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if got := charge(); got.State == want {
				return got
			}
		}
		t.Fatalf("charge %s never %s: %+v", c.ID, want, charge())
		return chargeJSON{}
	}
	paid := settled("paid")

	// A long-poll answers at once when the charge is final, or has moved
	// on from the version the till saw; it holds while nothing changed.
	began := time.Now()
	charge()
	assert.Less(t, time.Since(began), time.Second, "a final charge: at once")
	v := decodeAs[struct{ Version uint64 }](t, send(s, "GET", host, "/v1/charges/"+c.ID, "").Body.Bytes())
	began = time.Now()
	send(s, "GET", host, "/v1/charges/"+c.ID+"?wait=300ms&version="+strconv.FormatUint(v.Version, 10), "")
	assert.GreaterOrEqual(t, time.Since(began), 250*time.Millisecond, "the version the till saw, unchanged: it waits")
	began = time.Now()
	send(s, "GET", host, "/v1/charges/"+c.ID+"?wait=5s&version="+strconv.FormatUint(v.Version-1, 10), "")
	assert.Less(t, time.Since(began), time.Second, "an older version: at once")
	assert.Equal(t, "paid", paid.State)

	refund := func(id string) refundJSON {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			r := decodeAs[refundJSON](t, send(s, "GET", host, "/v1/charges/"+c.ID+"/refunds/"+id, "").Body.Bytes())
			if r.State != "pending" {
				return r
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("refund %s still pending", id)
		return refundJSON{}
	}

	// Every refund carries the till's id for it: asked again, it is the
	// same refund.
	noID := send(s, "POST", host, "/v1/charges/"+c.ID+"/refunds", `{"refund_fee":300}`, "Content-Type", "application/json")
	assert.Equal(t, http.StatusUnprocessableEntity, noID.Code)
	assert.Contains(t, noID.Body.String(), "refund_id")
	differ := send(s, "POST", host, "/v1/charges/"+c.ID+"/refunds", `{"refund_fee":300,"refund_id":"A"}`, "Content-Type", "application/json", "Idempotency-Key", "B")
	assert.Equal(t, http.StatusUnprocessableEntity, differ.Code, "two different ids for one refund")

	resp := send(s, "POST", host, "/v1/charges/"+c.ID+"/refunds", `{"refund_fee":300,"reason":"apples"}`, "Content-Type", "application/json", "Idempotency-Key", "R-till-1").Result()
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "an Idempotency-Key is the till's id")
	first := decodeAs[refundJSON](t, readAll(t, resp))
	assert.Equal(t, "R-till-1", first.RefundID)
	assert.Equal(t, int64(300), first.RefundFee)
	assert.NotEmpty(t, first.MchRefundID)
	assert.Equal(t, "refunded", refund("R-till-1").State)
	got := settled("partially_refunded")
	assert.Equal(t, int64(300), got.RefundedFee)

	resp = post("/v1/charges/"+c.ID+"/refunds", `{"refund_fee":300,"refund_id":"R-till-1"}`)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "the same refund_id is the same refund")
	assert.Equal(t, "true", resp.Header.Get("Idempotent-Replayed"))
	assert.Equal(t, first.MchRefundID, decodeAs[refundJSON](t, readAll(t, resp)).MchRefundID)
	assert.Equal(t, http.StatusUnprocessableEntity, post("/v1/charges/"+c.ID+"/refunds", `{"refund_fee":200,"refund_id":"R-till-1"}`).StatusCode,
		"a refund_id used with another amount")
	assert.Equal(t, http.StatusUnprocessableEntity, post("/v1/charges/"+c.ID+"/refunds", `{"refund_fee":701,"refund_id":"R-till-2"}`).StatusCode,
		"more than the 700 fen left")

	require.Equal(t, http.StatusAccepted, post("/v1/charges/"+c.ID+"/refunds", `{"refund_fee":700,"refund_id":"R-till-2"}`).StatusCode)
	second := refund("R-till-2")
	assert.Equal(t, "refunded", second.State)
	assert.NotEqual(t, first.MchRefundID, second.MchRefundID, "each refund its own mch_refund_id")
	got = settled("refunded")
	assert.Equal(t, int64(1000), got.RefundedFee)
	assert.Len(t, got.Refunds, 2)
	assert.Equal(t, http.StatusConflict, post("/v1/charges/"+c.ID+"/refunds", `{"refund_fee":1,"refund_id":"R-till-3"}`).StatusCode,
		"nothing left: the charge is refunded")
	list := decodeAs[struct{ Refunds []refundJSON }](t, send(s, "GET", host, "/v1/charges/"+c.ID+"/refunds", "").Body.Bytes())
	assert.Len(t, list.Refunds, 2)

	// The day's totals: paid, refunded of it, net.
	type totals struct {
		Wallets []struct {
			Wallet      string
			PaidCount   int   `json:"paid_count"`
			PaidFee     int64 `json:"paid_fee"`
			RefundedFee int64 `json:"refunded_fee"`
			NetFee      int64 `json:"net_fee"`
		}
		Total struct {
			PaidFee int64 `json:"paid_fee"`
			NetFee  int64 `json:"net_fee"`
		}
	}
	today := time.Now().Format(time.DateOnly)
	tot := decodeAs[totals](t, send(s, "GET", host, "/v1/totals?date="+today, "").Body.Bytes())
	require.Len(t, tot.Wallets, 1)
	assert.Equal(t, "alipay", tot.Wallets[0].Wallet)
	assert.Equal(t, 1, tot.Wallets[0].PaidCount)
	assert.Equal(t, [3]int64{1000, 1000, 0}, [3]int64{tot.Wallets[0].PaidFee, tot.Wallets[0].RefundedFee, tot.Wallets[0].NetFee})
	assert.Equal(t, int64(1000), tot.Total.PaidFee)
	report := decodeAs[struct{ Totals []json.RawMessage }](t, send(s, "GET", host, "/v1/report?date="+today, "").Body.Bytes())
	assert.Len(t, report.Totals, 2, "the report carries the same figures (a wallet and the sum)")
}

func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	var b []byte
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil {
			return b
		}
	}
}
