package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type receiptJSON struct {
	Time     time.Time `json:"time"`
	TotalFee int64     `json:"total_fee"`
	Refund   bool      `json:"refund"`
	RefundID string    `json:"refund_id"`
	Refunds  []struct {
		RefundID  string `json:"refund_id"`
		RefundFee int64  `json:"refund_fee"`
	} `json:"refunds"`
}

type totalsJSON struct {
	Total struct {
		PaidFee       int64 `json:"paid_fee"`
		RefundedFee   int64 `json:"refunded_fee"`
		RefundedCount int   `json:"refunded_count"`
		NetFee        int64 `json:"net_fee"`
	} `json:"total"`
}

// A payment's receipt keeps the payment's time and lists every refund
// made of it; each refund has its own receipt; a refund counts under the
// cashier and shift that made it, the sale under its own.
func TestReceiptsAndTotalsAddUp(t *testing.T) {
	s := newServer(t)
	const host = "127.0.0.1:8321"
	json := []string{"Content-Type", "application/json"}
	w := send(s, "POST", host, "/v1/charges", `{"lane":"L1","total_fee":2500,"subject":"s","body":"b","op_user_id":"alice","shift":"morning"}`, json...)
	require.Equal(t, http.StatusCreated, w.Code, "%s", w.Body)
	c := decodeAs[chargeJSON](t, w.Body.Bytes())
	require.Equal(t, http.StatusAccepted, send(s, "POST", host, "/v1/lanes/L1/scans", `{"auth_code":"282941234567890100"}`, json...).Code)
	waitState := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if decodeAs[chargeJSON](t, send(s, "GET", host, "/v1/charges/"+c.ID+"?wait=1s", "").Body.Bytes()).State == want {
				return
			}
		}
		t.Fatalf("charge never %s", want)
	}
	waitState("paid")
	// A refund asked while the last step of the one before is still being
	// saved is 409: the till asks again.
	refund := func(body string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			w := send(s, "POST", host, "/v1/charges/"+c.ID+"/refunds", body, json...)
			if w.Code == http.StatusAccepted {
				return
			}
			require.Equal(t, http.StatusConflict, w.Code, "%s", w.Body)
			require.True(t, time.Now().Before(deadline), "still 409: %s", w.Body)
			time.Sleep(20 * time.Millisecond)
		}
	}
	receipt := func(path string) receiptJSON {
		t.Helper()
		w := send(s, "GET", host, path, "")
		require.Equal(t, 200, w.Code, "%s", w.Body)
		return decodeAs[receiptJSON](t, w.Body.Bytes())
	}
	paid := receipt("/v1/charges/" + c.ID + "/receipt")
	assert.Empty(t, paid.Refunds)

	refund(`{"refund_fee":1000,"refund_id":"R1","op_user_id":"bob","shift":"evening"}`)
	waitState("partially_refunded")
	after := receipt("/v1/charges/" + c.ID + "/receipt")
	assert.Equal(t, paid.Time, after.Time, "the payment's receipt keeps the payment's time")
	require.Len(t, after.Refunds, 1, "a partly refunded charge's receipt lists its refund")
	assert.Equal(t, "R1", after.Refunds[0].RefundID)
	assert.Equal(t, int64(1000), after.Refunds[0].RefundFee)
	text := send(s, "GET", host, "/v1/charges/"+c.ID+"/receipt?format=text", "").Body.String()
	assert.Contains(t, text, "-RMB 10.00")
	assert.Contains(t, text, "RMB 15.00", "the net")

	refund(`{"refund_fee":1500,"refund_id":"R2","op_user_id":"bob","shift":"evening"}`)
	waitState("refunded")
	whole := receipt("/v1/charges/" + c.ID + "/receipt")
	assert.False(t, whole.Refund, "the charge's receipt stays the payment's")
	assert.Len(t, whole.Refunds, 2, "two refunds, two lines")
	text = send(s, "GET", host, "/v1/charges/"+c.ID+"/receipt?format=text", "").Body.String()
	assert.Equal(t, 2, strings.Count(text, "-RMB "), "%s", text)

	r1 := receipt("/v1/charges/" + c.ID + "/refunds/R1/receipt")
	assert.True(t, r1.Refund)
	assert.Equal(t, "R1", r1.RefundID)
	assert.Equal(t, int64(1000), r1.TotalFee)
	assert.False(t, r1.Time.Before(paid.Time), "the refund's own time")
	assert.NotEqual(t, paid.Time, r1.Time)
	text = send(s, "GET", host, "/v1/charges/"+c.ID+"/refunds/R2/receipt?format=text", "").Body.String()
	assert.Contains(t, text, "REFUND")
	assert.Contains(t, text, "-RMB 15.00")
	assert.Equal(t, 404, send(s, "GET", host, "/v1/charges/"+c.ID+"/refunds/R9/receipt", "").Code)

	day := time.Now().Format(time.DateOnly)
	totals := func(q string) totalsJSON {
		w := send(s, "GET", host, "/v1/totals?date="+day+q, "")
		require.Equal(t, 200, w.Code, "%s", w.Body)
		return decodeAs[totalsJSON](t, w.Body.Bytes())
	}
	alice := totals("&op_user_id=alice")
	assert.Equal(t, int64(2500), alice.Total.PaidFee, "the sale under its cashier")
	assert.Zero(t, alice.Total.RefundedFee, "alice gave nothing back")
	bob := totals("&op_user_id=bob&shift=evening")
	assert.Zero(t, bob.Total.PaidFee)
	assert.Equal(t, int64(2500), bob.Total.RefundedFee, "the refunds under the cashier who made them")
	assert.Equal(t, 2, bob.Total.RefundedCount)
	assert.Equal(t, int64(-2500), bob.Total.NetFee)
	all := totals("")
	assert.Equal(t, int64(2500), all.Total.PaidFee)
	assert.Equal(t, int64(2500), all.Total.RefundedFee)
	assert.Zero(t, all.Total.NetFee)
}
