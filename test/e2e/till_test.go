package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/payment"
	"example.com/posd/payment/sandbox"
	"example.com/posd/test/harness"
)

// What a till does in a day, through the real binary against
// the standalone sandbox: partial refunds until the paid amount is used
// up, a lost reply found again by the till's reference, totals per cashier
// and shift, the wallet's coupon on the receipt, and a reconciliation that
// finds a refund made behind posd's back.
func TestTillFeatures(t *testing.T) {
	t.Parallel()
	g := startSandbox(t)
	d := newDaemon(t, g, opts{})
	d.start()
	today := time.Now().Format(time.DateOnly)

	// A sale with the till's reference, cashier and shift; the till
	// "loses" the reply and opens again: the same charge.
	sale := map[string]any{"lane": "L1", "total_fee": 1000, "subject": "s", "body": "b", "reference": "SALE-9", "op_user_id": "c7", "shift": "A"}
	code, body := d.do("POST", "/v1/charges", sale)
	require.Equal(t, 201, code, "%s", body)
	var c harness.ChargeJSON
	require.NoError(t, json.Unmarshal(body, &c))
	code, body = d.do("POST", "/v1/charges", sale)
	require.Equal(t, 201, code, "%s", body)
	assert.Contains(t, string(body), c.ID, "the same reference: the first charge")
	d.scan(harness.AlipayCode(79)) // the sandbox's wallet coupon of ¥1
	c = d.settle(c.ID, 10*time.Second)
	require.Equal(t, "paid", c.Attempts[0].State)
	code, body = d.do("GET", "/v1/charges?reference=SALE-9", nil)
	require.Equal(t, 200, code)
	assert.Contains(t, string(body), c.ID)

	// The receipt carries the coupon and what the customer paid.
	code, body = d.do("GET", "/v1/charges/"+c.ID+"/receipt?format=text", nil)
	require.Equal(t, 200, code, "%s", body)
	assert.Contains(t, string(body), "Discount")
	assert.Contains(t, string(body), "RMB 9.00")

	// Two partial refunds, then a third past what is left: refused,
	// nothing sent.
	refund := func(fee int, id string) int {
		code, body := d.do("POST", "/v1/charges/"+c.ID+"/refunds", map[string]any{"refund_fee": fee, "refund_id": id})
		require.True(t, code == 202 || code == 422 || code == 409, "%d %s", code, body)
		return code
	}
	state := func(id string) string {
		_, body := d.do("GET", "/v1/charges/"+c.ID+"/refunds/"+id, nil)
		var r struct{ State string }
		_ = json.Unmarshal(body, &r)
		return r.State
	}
	require.Equal(t, 202, refund(300, "R1"))
	harness.WaitFor(t, 10*time.Second, func() bool { return state("R1") == "refunded" }, "R1 refunded")
	require.Equal(t, 202, refund(500, "R2"))
	harness.WaitFor(t, 10*time.Second, func() bool { return state("R2") == "refunded" }, "R2 refunded")
	assert.Equal(t, 422, refund(201, "R3"), "only 200 fen left")
	var ch struct {
		State       string
		RefundedFee int64 `json:"refunded_fee"`
	}
	_, body = d.do("GET", "/v1/charges/"+c.ID, nil)
	require.NoError(t, json.Unmarshal(body, &ch))
	assert.Equal(t, "partially_refunded", ch.State)
	assert.Equal(t, int64(800), ch.RefundedFee)
	l := g.ledger(t)
	require.Len(t, l.Refunds, 2, "the refused one never left the box")

	// Totals of cashier c7's shift A.
	code, body = d.do("GET", "/v1/totals?date="+today+"&op_user_id=c7&shift=A", nil)
	require.Equal(t, 200, code)
	var tot struct {
		Total struct {
			PaidFee     int64 `json:"paid_fee"`
			RefundedFee int64 `json:"refunded_fee"`
			NetFee      int64 `json:"net_fee"`
			CouponFee   int64 `json:"coupon_fee"`
		}
	}
	require.NoError(t, json.Unmarshal(body, &tot))
	assert.Equal(t, [4]int64{1000, 800, 200, 100}, [4]int64{tot.Total.PaidFee, tot.Total.RefundedFee, tot.Total.NetFee, tot.Total.CouponFee})

	// A second sale, refunded at the gateway behind posd's back: the
	// reconciliation lists it, and changes nothing.
	c2 := d.openCharge("L1", 500)
	d.scan(harness.AlipayCode(7))
	c2 = d.settle(c2.ID, 10*time.Second)
	require.Equal(t, "paid", c2.State)
	gwc, err := payment.NewClient(payment.ClientOptions{BaseURL: g.url, MerchantID: sandbox.MerchantID, Key: sandbox.Key, Timeout: 5 * time.Second})
	require.NoError(t, err)
	r := gwc.Refund(context.Background(), &payment.RefundRequest{OrderRef: payment.OrderRef{MchTradeID: c2.Attempts[0].MchTradeID},
		MchRefundID: "OUTSIDEPOSD1", RefundFee: 500})
	require.Equal(t, payment.Done, r.Outcome, "%+v", r)
	code, body = d.do("POST", "/v1/reconcile", map[string]string{"date": today})
	require.Equal(t, 202, code, "%s", body)
	var run struct {
		State         string
		Disagreements []struct {
			MchTradeID string `json:"mch_trade_id"`
			What       string
		}
	}
	harness.WaitFor(t, 20*time.Second, func() bool {
		_, body := d.do("GET", "/v1/reconcile?date="+today, nil)
		return json.Unmarshal(body, &run) == nil && run.State == "done"
	}, "reconciled")
	require.Len(t, run.Disagreements, 1, "%+v", run)
	assert.Equal(t, c2.Attempts[0].MchTradeID, run.Disagreements[0].MchTradeID)
	assert.Contains(t, run.Disagreements[0].What, "refunded at the gateway")
	assert.Equal(t, "paid", d.charge(c2.ID, "").State, "nothing changed silently")
	code, body = d.do("GET", "/metrics", nil)
	require.Equal(t, 200, code)
	assert.True(t, strings.Contains(string(body), "posd_reconcile_disagreements_total"), "counted in /metrics")
}
