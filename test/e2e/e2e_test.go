package e2e

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/payment/sandbox"
	"example.com/posd/test/harness"
)

// Every row of the sandbox scenario table, through the real binary and the
// standalone sandbox over HTTP, checking both sides.
func TestSandboxScenarios(t *testing.T) {
	rows := []struct {
		name     string
		code     string
		attempt  string
		charge   string
		ledger   func(t *testing.T, o *sandbox.Order)
		minCalls int
	}{
		{name: "00-79 paid at once", code: harness.AlipayCode(23), attempt: "paid", charge: "paid",
			ledger: func(t *testing.T, o *sandbox.Order) { assert.Equal(t, 0, o.TradeState); assert.Zero(t, o.Queries) }},
		{name: "wechat paid at once", code: harness.WechatCode(5), attempt: "paid", charge: "paid",
			ledger: func(t *testing.T, o *sandbox.Order) { assert.Equal(t, "wechat.micro", o.PayType) }},
		{name: "80 paid on the 3rd query", code: harness.AlipayCode(80), attempt: "paid", charge: "paid",
			ledger: func(t *testing.T, o *sandbox.Order) { assert.Equal(t, 3, o.Queries) }},
		{name: "81 paying forever, reversed", code: harness.AlipayCode(81), attempt: "reversed", charge: "awaiting_scan",
			ledger: func(t *testing.T, o *sandbox.Order) {
				assert.Equal(t, 4, o.TradeState)
				assert.Equal(t, 6+1, o.Queries, "six queries and the confirming one")
				assert.Equal(t, 1, o.Reverses)
			}},
		{name: "82 declined", code: harness.AlipayCode(82), attempt: "declined", charge: "awaiting_scan",
			ledger: func(t *testing.T, o *sandbox.Order) { assert.Equal(t, 7, o.TradeState); assert.Zero(t, o.Queries) }},
		{name: "83 slow pay times out, query finds it paid", code: harness.AlipayCode(83), attempt: "paid", charge: "paid",
			ledger: func(t *testing.T, o *sandbox.Order) { assert.GreaterOrEqual(t, o.Queries, 1) }},
		{name: "84 pay answers 601, query finds it paid", code: harness.AlipayCode(84), attempt: "paid", charge: "paid",
			ledger: func(t *testing.T, o *sandbox.Order) { assert.GreaterOrEqual(t, o.Queries, 1) }},
		{name: "85 forged pay answer, query finds it paid", code: harness.AlipayCode(85), attempt: "paid", charge: "paid",
			ledger: func(t *testing.T, o *sandbox.Order) { assert.GreaterOrEqual(t, o.Queries, 1) }},
		{name: "86 HTTP 500, nothing created", code: harness.AlipayCode(86), attempt: "failed", charge: "awaiting_scan"},
		{name: "87 reverse recalls twice", code: harness.AlipayCode(87), attempt: "reversed", charge: "awaiting_scan",
			ledger: func(t *testing.T, o *sandbox.Order) { assert.Equal(t, 3, o.Reverses); assert.Equal(t, 4, o.TradeState) }},
		{name: "88 paid just before the reverse, refunded by it", code: harness.AlipayCode(88), attempt: "reversed", charge: "awaiting_scan",
			ledger: func(t *testing.T, o *sandbox.Order) {
				assert.True(t, o.WasPaid, "the customer paid")
				assert.Zero(t, o.Charged, "and has the money back")
				assert.Equal(t, o.TotalFee, o.RefundedFee)
			}},
		{name: "89 no reverse: fallback closes", code: harness.AlipayCode(89), attempt: "closed", charge: "awaiting_scan",
			ledger: func(t *testing.T, o *sandbox.Order) { assert.Equal(t, 3, o.TradeState); assert.Equal(t, 1, o.Closes) }},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			t.Parallel()
			g := startSandbox(t, "-slow", "1500ms")
			d := newDaemon(t, g, opts{})
			d.start()
			c := d.openCharge("L1", 1234)
			assert.Equal(t, "awaiting_scan", c.State)
			d.scan(row.code)
			c = d.settle(c.ID, 20*time.Second)
			require.Len(t, c.Attempts, 1)
			a := c.Attempts[0]
			assert.Equal(t, row.attempt, a.State, "attempt: %+v", a)
			assert.Equal(t, row.charge, c.State)
			assert.Equal(t, "bar_code", a.Scene)
			assert.Regexp(t, regexp.MustCompile(`^\*+\d{4}$`), a.AuthCode, "the API shows the code masked")
			assert.Regexp(t, regexp.MustCompile(`^S001_POS01_[0-9A-Z]{6}[0-9A-Z]+$`), a.MchTradeID)

			l := g.ledger(t)
			checkLedger(t, l, c)
			var o *sandbox.Order
			for i := range l.Orders {
				if l.Orders[i].MchTradeID == a.MchTradeID {
					o = &l.Orders[i]
				}
			}
			if row.ledger != nil {
				require.NotNil(t, o, "the gateway has the order")
				assert.Equal(t, int64(1234), o.TotalFee)
				assert.Equal(t, "POS01", o.DeviceInfo)
				row.ledger(t, o)
			} else {
				assert.Nil(t, o, "the gateway created nothing")
				require.Len(t, l.PayRequests, 1, "but the pay did arrive")
			}
			if a.State == "paid" {
				assert.NotEmpty(t, a.TradeID)
				assert.NotEmpty(t, a.OutTradeID)
			}
			if a.State == "declined" {
				assert.Equal(t, "余额不足", a.ErrMsg)
			}
		})
	}
}

// After an attempt ends unpaid the same charge takes a new code, under a
// new mch_trade_id; the old code is never sent again.
func TestChargeRetriesWithNewCode(t *testing.T) {
	t.Parallel()
	g := startSandbox(t)
	d := newDaemon(t, g, opts{})
	d.start()
	c := d.openCharge("L1", 500)
	declined := harness.AlipayCode(82)
	d.scan(declined)
	c = d.settle(c.ID, 10*time.Second)
	require.Equal(t, "awaiting_scan", c.State)

	d.scan(declined) // within the duplicate window: one scan
	time.Sleep(300 * time.Millisecond)
	assert.Len(t, d.charge(c.ID, "").Attempts, 1, "a repeated code inside the window is ignored")

	d.scan(harness.AlipayCode(42))
	c = d.settle(c.ID, 10*time.Second)
	for c.State != "paid" && len(c.Attempts) < 2 {
		c = d.settle(c.ID, 10*time.Second)
	}
	require.Len(t, c.Attempts, 2)
	assert.Equal(t, "paid", c.State)
	assert.NotEqual(t, c.Attempts[0].MchTradeID, c.Attempts[1].MchTradeID)
	checkLedger(t, g.ledger(t), c)

	// The declined code once more, long after the window: refused on the
	// box, never sent under a second id.
	c2 := d.openCharge("L1", 700)
	time.Sleep(2100 * time.Millisecond)
	code, body := d.do("POST", "/v1/lanes/L1/scans", map[string]string{"auth_code": declined})
	assert.Equal(t, 409, code, "%s", body)
	assert.Contains(t, string(body), "already used")
	assert.Empty(t, d.charge(c2.ID, "").Attempts)
	checkLedger(t, g.ledger(t), c, c2)
}

func TestAPIContract(t *testing.T) {
	t.Parallel()
	g := startSandbox(t)
	d := newDaemon(t, g, opts{lanes: `
  - id: L1
    device_info: POS01
    max_fee: 100000
  - id: K1
    device_info: KIOSK1
    fixed_fee: 300
    subject: Parking
    body: Parking - one exit
`})
	d.start()

	t.Run("open, conflict, idempotency", func(t *testing.T) {
		c := d.openCharge("L1", 1234, "Idempotency-Key", "till-42")
		again := d.openCharge("L1", 1234, "Idempotency-Key", "till-42")
		assert.Equal(t, c.ID, again.ID, "a retried POST returns the same charge")
		code, body := d.do("POST", "/v1/charges", map[string]any{"lane": "L1", "total_fee": 99, "subject": "s", "body": "b"})
		assert.Equal(t, 409, code, "one open charge per lane: %s", body)
		code, _ = d.do("POST", "/v1/charges", map[string]any{"lane": "L1", "total_fee": 1234, "subject": "s", "body": "b"}, "Idempotency-Key", "till-42")
		assert.Equal(t, 201, code)
		code, _ = d.do("POST", "/v1/charges", map[string]any{"lane": "L1", "total_fee": 5, "subject": "s", "body": "b"}, "Idempotency-Key", "till-42")
		assert.Equal(t, 422, code, "same key, other parameters")

		code, body = d.do("GET", "/v1/lanes/L1", nil)
		require.Equal(t, 200, code)
		var lane struct {
			ID     string              `json:"id"`
			Charge *harness.ChargeJSON `json:"charge"`
		}
		require.NoError(t, json.Unmarshal(body, &lane))
		require.NotNil(t, lane.Charge)
		assert.Equal(t, c.ID, lane.Charge.ID)

		code, _ = d.do("DELETE", "/v1/charges/"+c.ID, nil)
		assert.Equal(t, 200, code)
		assert.Equal(t, "canceled", d.charge(c.ID, "").State)
		code, _ = d.do("POST", "/v1/charges/"+c.ID+"/refund", nil)
		assert.Equal(t, 409, code, "a canceled charge is not refunded")
	})

	t.Run("bad requests", func(t *testing.T) {
		for _, b := range []any{
			map[string]any{"lane": "L1", "total_fee": 0, "subject": "s", "body": "b"},
			map[string]any{"lane": "L1", "total_fee": -3},
			map[string]any{"lane": "L1", "total_fee": 100001, "subject": "s", "body": "b"},
			map[string]any{"lane": "L1", "total_fee": 12.5},
			map[string]any{"lane": "L1", "total_fee": 100, "surprise": 1},
		} {
			code, body := d.do("POST", "/v1/charges", b)
			assert.Equal(t, 422, code, "%v: %s", b, body)
		}
		code, body := d.do("POST", "/v1/charges", "not an object")
		assert.Equal(t, 400, code, "a body that is no JSON object is malformed: %s", body)
		code, _ = d.do("POST", "/v1/charges", map[string]any{"lane": "NOPE", "total_fee": 1, "subject": "s", "body": "b"})
		assert.Equal(t, 404, code)
		code, _ = d.do("GET", "/v1/charges/CHNOPE", nil)
		assert.Equal(t, 404, code)
		code, _ = d.do("GET", "/v1/charges/CHNOPE?wait=forever", nil)
		assert.Equal(t, 422, code)
		code, body = d.do("POST", "/v1/lanes/L1/scans", map[string]string{"auth_code": "99123"})
		assert.Equal(t, 422, code, "%s", body)
		code, _ = d.do("POST", "/v1/lanes/L1/scans", map[string]string{"auth_code": harness.AlipayCode(1)})
		assert.Equal(t, 409, code, "no charge open on L1")
	})

	t.Run("long poll, fixed fee lane, refund", func(t *testing.T) {
		code, body := d.do("POST", "/v1/lanes/K1/scans", map[string]string{"auth_code": harness.AlipayCode(80), "scene": "wave_code"})
		require.Equal(t, 202, code, "%s", body)
		var lane struct {
			Charge *harness.ChargeJSON `json:"charge"`
		}
		require.NoError(t, json.Unmarshal(body, &lane))
		require.NotNil(t, lane.Charge)
		c := *lane.Charge
		assert.Equal(t, int64(300), c.TotalFee)
		start := time.Now()
		c = d.charge(c.ID, "10s")
		assert.Less(t, time.Since(start), 5*time.Second, "the long poll returns on change")
		c = d.settle(c.ID, 10*time.Second)
		require.Equal(t, "paid", c.State)
		assert.Equal(t, "wave_code", c.Attempts[0].Scene)

		code, body = d.do("POST", "/v1/charges/"+c.ID+"/refund", nil)
		require.Equal(t, 202, code, "%s", body)
		harness.WaitFor(t, 10*time.Second, func() bool { return d.charge(c.ID, "1s").State == "refunded" }, "refunded")
		l := g.ledger(t)
		checkLedger(t, l, d.charge(c.ID, ""))
		require.Len(t, l.Refunds, 1)
		assert.Equal(t, int64(300), l.Refunds[0].RefundFee)

		code, body = d.do("GET", "/v1/orders?state=unresolved", nil)
		require.Equal(t, 200, code)
		assert.JSONEq(t, `{"orders":[]}`, string(body))
		code, body = d.do("GET", "/healthz", nil)
		assert.Equal(t, 200, code, "%s", body)
	})
}

func TestUnscannedChargeExpires(t *testing.T) {
	t.Parallel()
	g := startSandbox(t)
	d := newDaemon(t, g, opts{lanes: `
  - id: L1
    device_info: POS01
    charge_ttl: 300ms
`})
	d.start()
	c := d.openCharge("L1", 100)
	harness.WaitFor(t, 5*time.Second, func() bool { return d.charge(c.ID, "1s").State == "canceled" }, "expiry")
	d.openCharge("L1", 100) // the lane is free again
}

// Configuration problems are all listed at once, with a non-zero exit.
func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	bad := dir + "/bad.yaml"
	require.NoError(t, os.WriteFile(bad, []byte(`
gateway:
  url: http://gateway.example.com/
confirm:
  query_attempts: 0
api:
  listen: 0.0.0.0:80
lanes:
  - id: L1
    device_info: POS-01
  - id: L2
    device_info: POS01
    scanners: [{type: laser}]
`), 0o600))
	out, err := runPosd("check-config", "-config", bad)
	require.Error(t, err)
	assert.Equal(t, 78, exitCode(err), "check-config exits EX_CONFIG like run: %s", out)
	for _, want := range []string{"https required", "merchant.id", "merchant.key_file", "query_attempts", "api.listen", "same device_info", "laser"} {
		assert.Contains(t, out, want)
	}
	out, err = runPosd("check-config", "-config", "../../config.yaml")
	require.NoError(t, err, out)
	assert.Contains(t, out, "SANDBOX")

	out, err = runPosd("run", "-config", bad)
	require.Error(t, err)
	assert.Equal(t, 78, exitCode(err), "a config error exits EX_CONFIG: %s", out)
	assert.True(t, strings.Contains(out, "https required"))
}
