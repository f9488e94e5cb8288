package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A till that lost the reply finds its charge again: by its own sale
// reference (opening again with it returns the first), or as the lane's
// last; the cashier and shift go with the charge onto its attempts.
func TestReferenceLastAndShift(t *testing.T) {
	s := newServer(t)
	const host = "127.0.0.1:8321"
	open := func(body string) *http.Response {
		return send(s, "POST", host, "/v1/charges", body, "Content-Type", "application/json").Result()
	}
	resp := open(`{"lane":"L1","total_fee":500,"subject":"s","body":"b","reference":"SALE-1","op_user_id":"c7","shift":"A"}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	first := decodeAs[struct {
		ID, Reference, Shift string
		OpUserID             string `json:"op_user_id"`
	}](t, readAll(t, resp))
	assert.Equal(t, "SALE-1", first.Reference)
	assert.Equal(t, "A", first.Shift)

	resp = open(`{"lane":"L1","total_fee":500,"subject":"s","body":"b","reference":"SALE-1"}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Equal(t, "true", resp.Header.Get("Idempotent-Replayed"))
	assert.Equal(t, first.ID, decodeAs[chargeJSON](t, readAll(t, resp)).ID, "the same reference: the first charge")
	assert.Equal(t, http.StatusUnprocessableEntity, open(`{"lane":"L1","total_fee":600,"subject":"s","body":"b","reference":"SALE-1"}`).StatusCode)

	found := decodeAs[struct{ Charges []chargeJSON }](t, send(s, "GET", host, "/v1/charges?reference=SALE-1", "").Body.Bytes())
	require.Len(t, found.Charges, 1)
	assert.Equal(t, first.ID, found.Charges[0].ID)
	assert.Equal(t, first.ID, decodeAs[chargeJSON](t, send(s, "GET", host, "/v1/lanes/L1/last", "").Body.Bytes()).ID)
	assert.Equal(t, http.StatusNotFound, send(s, "GET", host, "/v1/lanes/K1/last", "").Code, "no charge yet")

	w := send(s, "POST", host, "/v1/lanes/L1/scans", `{"auth_code":"282941234567890200"}`, "Content-Type", "application/json")
	require.Equal(t, http.StatusAccepted, w.Code, "%s", w.Body)
	v := decodeAs[struct {
		Attempts []struct {
			OpUserID string `json:"op_user_id"`
			Shift    string
		}
	}](t, send(s, "GET", host, "/v1/charges/"+first.ID, "").Body.Bytes())
	require.Len(t, v.Attempts, 1)
	assert.Equal(t, "c7", v.Attempts[0].OpUserID)
	assert.Equal(t, "A", v.Attempts[0].Shift)

	// Totals per cashier and shift.
	waitPaid(t, s, first.ID)
	resp = open(`{"lane":"L1","total_fee":500,"subject":"s","body":"b","reference":"SALE-1"}`)
	assert.Equal(t, first.ID, decodeAs[chargeJSON](t, readAll(t, resp)).ID, "a paid charge keeps its reference")

	// A sale canceled before any payment is still to be paid: its
	// reference opens a new charge.
	resp = open(`{"lane":"L1","total_fee":300,"subject":"s","body":"b","reference":"SALE-2"}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	canceled := decodeAs[chargeJSON](t, readAll(t, resp))
	require.Equal(t, http.StatusOK, send(s, "DELETE", host, "/v1/charges/"+canceled.ID, "").Code)
	resp = open(`{"lane":"L1","total_fee":300,"subject":"s","body":"b","reference":"SALE-2"}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Empty(t, resp.Header.Get("Idempotent-Replayed"))
	again := decodeAs[chargeJSON](t, readAll(t, resp))
	assert.NotEqual(t, canceled.ID, again.ID, "a new charge")
	assert.Equal(t, "awaiting_scan", again.State)
	today := time.Now().Format(time.DateOnly)
	paidOf := func(q string) int64 {
		return decodeAs[struct {
			Total struct {
				PaidFee int64 `json:"paid_fee"`
			}
		}](t, send(s, "GET", host, "/v1/totals?date="+today+q, "").Body.Bytes()).Total.PaidFee
	}
	assert.Equal(t, int64(500), paidOf("&shift=A&op_user_id=c7&lane=L1"))
	assert.Equal(t, int64(0), paidOf("&shift=B"))

	// The receipt, for the till's own printer.
	text := send(s, "GET", host, "/v1/charges/"+first.ID+"/receipt?format=text", "").Body.String()
	assert.Contains(t, text, "PAYMENT RECEIPT")
	assert.Contains(t, text, "RMB 5.00")
	pos := send(s, "GET", host, "/v1/charges/"+first.ID+"/receipt?format=escpos&width=42", "").Body.Bytes()
	require.Greater(t, len(pos), 2)
	assert.Equal(t, []byte{0x1b, 0x40}, pos[:2], "ESC @ first")
	rc := decodeAs[struct {
		TotalFee int64 `json:"total_fee"`
		Store    string
	}](t, send(s, "GET", host, "/v1/charges/"+first.ID+"/receipt", "").Body.Bytes())
	assert.Equal(t, int64(500), rc.TotalFee)
	assert.Equal(t, "S001", rc.Store)
	assert.Equal(t, http.StatusUnprocessableEntity, send(s, "GET", host, "/v1/charges/"+first.ID+"/receipt?format=pdf", "").Code)
}

// The paid answer's detail reaches the till and the receipt: what the
// customer paid, the wallet's discount, the buyer's account masked.
func TestPayDetail(t *testing.T) {
	s := newServer(t)
	const host = "127.0.0.1:8321"
	w := send(s, "POST", host, "/v1/charges", `{"lane":"L1","total_fee":1000,"subject":"s","body":"b"}`, "Content-Type", "application/json")
	require.Equal(t, http.StatusCreated, w.Code, "%s", w.Body)
	id := decodeAs[chargeJSON](t, w.Body.Bytes()).ID
	w = send(s, "POST", host, "/v1/lanes/L1/scans", `{"auth_code":"282941234567890179"}`, "Content-Type", "application/json")
	require.Equal(t, http.StatusAccepted, w.Code, "%s", w.Body)
	type attempt struct {
		State          string
		CouponFee      int64  `json:"coupon_fee"`
		BuyerPayAmount int64  `json:"buyer_pay_amount"`
		BuyerLogonID   string `json:"buyer_logon_id"`
	}
	var a attempt
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && a.State != "paid"; {
		v := decodeAs[struct{ Attempts []attempt }](t, send(s, "GET", host, "/v1/charges/"+id+"?wait=1s", "").Body.Bytes())
		if len(v.Attempts) > 0 {
			a = v.Attempts[0]
		}
	}
	require.Equal(t, "paid", a.State)
	assert.Equal(t, int64(100), a.CouponFee)
	assert.Equal(t, int64(900), a.BuyerPayAmount, `"9.00" yuan, as the seed's example sends it`)
	assert.Equal(t, "138****1234", a.BuyerLogonID)
	text := send(s, "GET", host, "/v1/charges/"+id+"/receipt?format=text", "").Body.String()
	assert.Contains(t, text, "Discount")
	assert.Contains(t, text, "RMB 9.00")
}

// A day's reconciliation against the (sandbox) gateway: the paid order
// agrees, nothing is listed.
func TestReconcileOfAnAgreeingDayListsNothing(t *testing.T) {
	s := newServer(t)
	const host = "127.0.0.1:8321"
	w := send(s, "POST", host, "/v1/charges", `{"lane":"L1","total_fee":300,"subject":"s","body":"b"}`, "Content-Type", "application/json")
	require.Equal(t, http.StatusCreated, w.Code, "%s", w.Body)
	id := decodeAs[chargeJSON](t, w.Body.Bytes()).ID
	require.Equal(t, http.StatusAccepted, send(s, "POST", host, "/v1/lanes/L1/scans", `{"auth_code":"282941234567890300"}`, "Content-Type", "application/json").Code)
	waitPaid(t, s, id)
	today := time.Now().Format(time.DateOnly)
	assert.Equal(t, http.StatusNotFound, send(s, "GET", host, "/v1/reconcile?date="+today, "").Code)
	require.Equal(t, http.StatusAccepted, send(s, "POST", host, "/v1/reconcile", `{"date":"`+today+`"}`, "Content-Type", "application/json").Code)
	type run struct {
		State         string
		Total, Agreed int
		Disagreements []json.RawMessage
	}
	var r run
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && r.State != "done"; time.Sleep(50 * time.Millisecond) {
		r = decodeAs[run](t, send(s, "GET", host, "/v1/reconcile?date="+today, "").Body.Bytes())
	}
	require.Equal(t, "done", r.State)
	assert.Equal(t, 1, r.Total)
	assert.Equal(t, 1, r.Agreed)
	assert.Empty(t, r.Disagreements)
	csv := send(s, "GET", host, "/v1/reconcile?format=csv&date="+today, "").Body.String()
	assert.True(t, strings.HasPrefix(csv, "mch_trade_id,"), csv)
}

// waitPaid long-polls a charge until the sandbox has paid it.
func waitPaid(t *testing.T, s http.Handler, id string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if decodeAs[chargeJSON](t, send(s, "GET", "127.0.0.1:8321", "/v1/charges/"+id+"?wait=1s", "").Body.Bytes()).State == "paid" {
			return
		}
	}
	t.Fatalf("charge %s never paid", id)
}
