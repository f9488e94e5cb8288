package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/test/harness"
)

// Money-path defects posd once had (internal/defect names them for the
// simulation), each through the real binary.

// sse collects the data lines of a server-sent event stream.
type sse struct {
	mu     sync.Mutex
	events []map[string]any
}

func (s *sse) all() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.events...)
}

func follow(t *testing.T, c *http.Client, url string) *sse {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	require.NoError(t, err)
	hc := *c
	hc.Timeout = 0
	resp, err := hc.Do(req)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	s := &sse{}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			if strings.Contains(url, "/v1/events") {
				if err := harness.CheckEvent([]byte(line)); err != nil {
					t.Error(err)
				}
			}
			var e map[string]any
			if json.Unmarshal([]byte(line), &e) == nil {
				s.mu.Lock()
				s.events = append(s.events, e)
				s.mu.Unlock()
			}
		}
	}()
	return s
}

// (defect.StaleChargeShown) charge A needs attention (the gateway's answers are lost), the
// lane moves on to charge B, then the reconciler finds A paid. No customer
// display may show A's "paid" while B is the lane's charge; the till hears
// of it as a late result.
func TestLateResultStaysOffTheCustomerDisplays(t *testing.T) {
	t.Parallel()
	g := startSandbox(t)
	var healed atomic.Bool
	proxy := startFaultProxy(t, g.url, 0, func(call string, _ int) Fault {
		switch {
		case healed.Load():
			return NoFault
		case call == "pay":
			return DropAfter // the customer paid; posd never heard
		}
		return DropBefore // and nothing else gets through
	})
	webAddr := harness.FreePort(t)
	d := newDaemon(t, g, opts{gateway: proxy.url, lanes: `
  - id: L1
    device_info: POS01
    scanners: [{type: stdin}]
    displays: [{type: terminal}, {type: web, listen: "` + webAddr + `"}]
`})
	d.start()
	till := follow(t, d.http, "http://posd/v1/events?lane=L1")
	customer := follow(t, http.DefaultClient, "http://"+webAddr+"/display/L1/events")

	a := d.openCharge("L1", 1651)
	d.scan(harness.AlipayCode(23))
	harness.WaitFor(t, 20*time.Second, func() bool { return d.charge(a.ID, "").State == "needs_attention" }, "charge A needs attention")
	b := d.openCharge("L1", 999)
	mark := len(customer.all())
	healed.Store(true)
	harness.WaitFor(t, 20*time.Second, func() bool { return d.charge(a.ID, "").State == "paid" }, "the reconciler finds A paid")
	time.Sleep(300 * time.Millisecond) // let the displays' streams deliver whatever was published

	for _, e := range customer.all()[mark:] {
		assert.NotEqual(t, "paid", e["kind"], "the customer display showed a result of charge A while B is due: %v", e)
		assert.NotEqual(t, "late_result", e["kind"], "a late result reached the customer display")
	}
	var late map[string]any
	for _, e := range till.all() {
		if e["kind"] == "late_result" {
			late = e
		}
	}
	require.NotNil(t, late, "the till hears of the late result")
	assert.Equal(t, a.ID, late["charge_id"])
	assert.Equal(t, "paid", late["result"])
	assert.Contains(t, late["reason"], "late result of charge "+a.ID)
	assert.Equal(t, "awaiting_scan", d.charge(b.ID, "").State, "B is untouched")
	assert.NotContains(t, d.out.String(), "PAID ¥16.51", "the terminal display did not show A's result either")
	code, m := d.do("GET", "/metrics", nil)
	require.Equal(t, 200, code)
	assert.Contains(t, string(m), `posd_late_results_total{state="paid"} 1`)
	checkLedger(t, g.ledger(t), d.charge(a.ID, ""))
}

// (defect.ReverseTakenForPaid) the customer pays just before posd's reverse, the reverse
// refunds it and the gateway reports trade_state 1. Not paid.
func TestOwnReverseRefundIsNotPaid(t *testing.T) {
	t.Parallel()
	g := startSandbox(t, "-refunding-after-reverse")
	d := newDaemon(t, g, opts{})
	d.start()
	c := d.openCharge("L1", 1200)
	d.scan(harness.AlipayCode(88))
	c = d.settle(c.ID, 20*time.Second)
	require.Len(t, c.Attempts, 1)
	assert.Equal(t, "reversed", c.Attempts[0].State)
	require.NotNil(t, c.Attempts[0].TradeState)
	assert.Equal(t, 1, *c.Attempts[0].TradeState, "the gateway said 1: refund in progress")
	assert.Equal(t, "awaiting_scan", c.State, "the charge is not paid")
	checkLedger(t, g.ledger(t), c)
}

// (defect.ReusedIDsAdopted) a journal restored from a backup reuses mch_trade_ids; the
// next pay met 107 and adopted another customer's payment.
func TestRestoredJournalNeverReusesIDs(t *testing.T) {
	t.Parallel()
	g := startSandbox(t)
	d := newDaemon(t, g, opts{})
	d.start()
	d.kill()
	journal := filepath.Join(d.dir, "journal.db")
	backup := harness.ReadFile(t, journal)

	d.start()
	first := d.openCharge("L1", 500)
	d.scan(harness.AlipayCode(11))
	first = d.settle(first.ID, 10*time.Second)
	require.Equal(t, "paid", first.State)
	d.kill()

	require.NoError(t, os.WriteFile(journal, []byte(backup), 0o600))
	d.start()
	second := d.openCharge("L1", 500)
	d.scan(harness.AlipayCode(12))
	second = d.settle(second.ID, 10*time.Second)
	assert.NotEqual(t, first.Attempts[0].MchTradeID, second.Attempts[0].MchTradeID, "an id is never reused")
	assert.NotEqual(t, first.ID, second.ID, "nor a charge id")
	assert.Equal(t, "paid", second.State)
	checkLedger(t, g.ledger(t), first, second)
}

// (defect.ResolveWhileConfirming) resolve is for orders that need attention, not for one posd
// is still confirming.
func TestResolveRefusesAnOrderInFlight(t *testing.T) {
	t.Parallel()
	g := startSandbox(t)
	d := newDaemon(t, g, opts{confirm: queryEvery("2s")})
	d.start()
	c := d.openCharge("L1", 800)
	d.scan(harness.AlipayCode(81)) // paying until the reverse
	harness.WaitFor(t, 10*time.Second, func() bool {
		c = d.charge(c.ID, "")
		if len(c.Attempts) != 1 {
			return false
		}
		for _, o := range g.ledger(t).Orders {
			if o.MchTradeID == c.Attempts[0].MchTradeID && o.Queries >= 1 {
				return true
			}
		}
		return false
	}, "the query phase (the pay step done, a query answered)")
	code, body := d.do("POST", "/v1/orders/"+c.Attempts[0].MchTradeID+"/resolve",
		map[string]any{"decision": "paid", "by": "ops", "why": "customer showed the phone"})
	assert.Equal(t, 409, code, "%s", body)
	assert.Contains(t, string(body), "still being confirmed")
	c = d.settle(c.ID, 30*time.Second)
	assert.Equal(t, "reversed", c.Attempts[0].State, "posd went on and reversed it")
	checkLedger(t, g.ledger(t), c)
}

// (defect.LostRefundAnswerTakenAsRefused) the first refund times out (the gateway carried it out), the
// retry is refused. posd must not say "refused, stays paid".
func TestRefundTimeoutThenRefusedIsConfirmed(t *testing.T) {
	t.Parallel()
	g := startSandbox(t)
	proxy := startFaultProxy(t, g.url, 0, func(call string, n int) Fault {
		switch {
		case call == "refund" && n == 1:
			return DropAfter
		case call == "refund":
			return Refuse
		}
		return NoFault
	})
	d := newDaemon(t, g, opts{gateway: proxy.url})
	d.start()
	c := d.openCharge("L1", 700)
	d.scan(harness.AlipayCode(31))
	c = d.settle(c.ID, 10*time.Second)
	require.Equal(t, "paid", c.State)
	code, body := d.do("POST", "/v1/charges/"+c.ID+"/refund", nil)
	require.Equal(t, 202, code, "%s", body)
	harness.WaitFor(t, 20*time.Second, func() bool { return d.charge(c.ID, "").State == "refunded" }, "refunded, as the gateway did")
	c = d.charge(c.ID, "")
	assert.Equal(t, "refunded", c.Attempts[0].State)
	assert.NotContains(t, c.Attempts[0].ErrMsg, "refused")
	checkLedger(t, g.ledger(t), c)
}

// (defect.NotFoundAfterSignedAnswer) a signed answer showed the order paying; a lagging replica
// then answers 301 to everything. Not "failed: nothing was created".
func TestLaggingReplicaIsNotNothingCreated(t *testing.T) {
	t.Parallel()
	g := startSandbox(t)
	var healed atomic.Bool
	proxy := startFaultProxy(t, g.url, 0, func(call string, _ int) Fault {
		if call != "pay" && !healed.Load() {
			return Lagging
		}
		return NoFault
	})
	d := newDaemon(t, g, opts{gateway: proxy.url})
	d.start()
	c := d.openCharge("L1", 900)
	d.scan(harness.AlipayCode(81))
	harness.WaitFor(t, 20*time.Second, func() bool { return d.charge(c.ID, "").State == "needs_attention" }, "needs attention")
	c = d.charge(c.ID, "")
	assert.Equal(t, "unknown", c.Attempts[0].State, "never 'failed' for an order a signed answer showed")
	healed.Store(true)
	harness.WaitFor(t, 20*time.Second, func() bool {
		c = d.charge(c.ID, "")
		return harness.FinalAttempt[c.Attempts[0].State]
	}, "resolved once the replica catches up")
	assert.Equal(t, "reversed", c.Attempts[0].State)
	checkLedger(t, g.ledger(t), c)
}

// (defect.CodeBurnedAtPay) a charge without subject or body is refused when opened, never
// after the customer's code was taken. Bounds hold too.
func TestChargeIsValidatedWhenOpened(t *testing.T) {
	t.Parallel()
	g := startSandbox(t)
	d := newDaemon(t, g, opts{})
	d.start()
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"lane": "L1", "total_fee": 100, "body": "b"}, "subject"},
		{map[string]any{"lane": "L1", "total_fee": 100, "subject": "s"}, "body"},
		{map[string]any{"lane": "L1", "total_fee": 100, "subject": strings.Repeat("商", 300), "body": "b"}, "subject"},
		{map[string]any{"lane": "L1", "total_fee": 100, "subject": "s", "body": "b", "attach": strings.Repeat("x", 200)}, "attach"},
		{map[string]any{"lane": "L1", "total_fee": int64(1) << 62, "subject": "s", "body": "b"}, "total_fee"},
	} {
		code, body := d.do("POST", "/v1/charges", tc.body)
		assert.Equal(t, 422, code, "%s", body)
		assert.Contains(t, string(body), tc.field)
	}
	code, body := d.do("GET", "/v1/lanes/L1", nil)
	require.Equal(t, 200, code)
	assert.Contains(t, string(body), `"charge":null`, "nothing was opened")
}

// A resumed payment is shown as it was before the restart: wallet and id.
func TestResumedPaymentShownAsBefore(t *testing.T) {
	t.Parallel()
	g := startSandbox(t)
	d := newDaemon(t, g, opts{confirm: queryEvery("5s")})
	d.start()
	c := d.openCharge("L1", 1651)
	d.scan(harness.AlipayCode(81))
	harness.WaitFor(t, 10*time.Second, func() bool { return strings.Contains(d.out.String(), "paying ¥16.51 with alipay (S001_") }, "paying shown")
	id := d.charge(c.ID, "").Attempts[0].MchTradeID
	d.kill()
	d.start()
	harness.WaitFor(t, 10*time.Second, func() bool { return strings.Contains(d.out.String(), "paying ¥16.51 with alipay ("+id+")") },
		"the resumed payment shown with its wallet and id")
}

// Abort in flight: the till stops a payment the customer abandoned. posd
// reverses at once instead of waiting out the queries; the charge ends
// canceled (202 first, then the long-poll says which).
func TestAbortInFlight(t *testing.T) {
	t.Parallel()
	g := startSandbox(t)
	d := newDaemon(t, g, opts{confirm: queryEvery("5s")})
	d.start()
	c := d.openCharge("L1", 1300)
	d.scan(harness.AlipayCode(81)) // the customer never confirms
	harness.WaitFor(t, 10*time.Second, func() bool {
		c = d.charge(c.ID, "")
		return len(c.Attempts) == 1 && c.Attempts[0].State == "paying"
	}, "paying")
	start := time.Now()
	code, body := d.do("DELETE", "/v1/charges/"+c.ID, nil)
	require.Equal(t, 202, code, "%s", body)
	assert.Contains(t, string(body), `"aborting":true`)
	harness.WaitFor(t, 10*time.Second, func() bool { return d.charge(c.ID, "1s").State == "canceled" }, "canceled")
	assert.Less(t, time.Since(start), 4*time.Second, "reversed at once, not after 30 s of queries")
	c = d.charge(c.ID, "")
	assert.Equal(t, "reversed", c.Attempts[0].State)
	checkLedger(t, g.ledger(t), c)
	code, _ = d.do("POST", "/v1/charges", map[string]any{"lane": "L1", "total_fee": 100, "subject": "s", "body": "b"})
	assert.Equal(t, 201, code, "the lane is free again")
}
