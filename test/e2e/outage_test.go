package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/test/harness"
)

// The store's internet link goes down: the gateway's port is closed.

// Before any scan, posd knows: /healthz, /metrics and the cashier's display
// say so, and a scan is answered "offline — not charged" at once. The same
// code is paid once the gateway is back.
func TestGatewayDownIsKnownBeforeAScan(t *testing.T) {
	t.Parallel()
	addr := harness.FreePort(t)
	g := startSandbox(t, "-listen", addr)
	d := newDaemon(t, g, opts{})
	d.start()
	c := d.openCharge("L1", 1234)

	_ = g.cmd.Process.Kill()
	_ = g.cmd.Wait()
	harness.WaitFor(t, 5*time.Second, func() bool {
		code, body := d.do("GET", "/healthz", nil)
		return code == 503 && strings.Contains(string(body), `"degraded"`) && strings.Contains(string(body), "gateway unreachable")
	}, "/healthz degraded")
	_, m := d.do("GET", "/metrics", nil)
	assert.Contains(t, string(m), "posd_gateway_up 0")
	assert.Contains(t, d.out.String(), "OFFLINE", "the cashier's display says so")

	code := harness.AlipayCode(40)
	start := time.Now()
	status, body := d.do("POST", "/v1/lanes/L1/scans", map[string]any{"auth_code": code})
	took := time.Since(start)
	assert.Equal(t, 503, status, "%s", body)
	assert.Contains(t, string(body), "not charged")
	assert.Less(t, took, 200*time.Millisecond, "answered at once")
	t.Logf("scan to \"not charged\", gateway known down: %s", took)
	assert.Empty(t, d.charge(c.ID, "").Attempts, "nothing was sent")

	g2 := startSandbox(t, "-listen", addr)
	harness.WaitFor(t, 5*time.Second, func() bool { code, _ := d.do("GET", "/healthz", nil); return code == 200 }, "healthy again")
	status, body = d.do("POST", "/v1/lanes/L1/scans", map[string]any{"auth_code": code})
	require.Equal(t, 202, status, "%s", body)
	c = d.settle(c.ID, 10*time.Second)
	assert.Equal(t, "paid", c.State, "the same code is paid once the gateway is back")
	checkLedger(t, g2.ledger(t), c)
}

// posd has not noticed yet (a long probe interval): the pay cannot connect.
// It never left the box, so it ends at once as "not charged" and the code
// is not burned.
func TestPayThatNeverLeftIsNotCharged(t *testing.T) {
	t.Parallel()
	addr := harness.FreePort(t)
	g := startSandbox(t, "-listen", addr)
	d := newDaemon(t, g, opts{probe: "1h"})
	d.start()
	c := d.openCharge("L1", 1234)
	_ = g.cmd.Process.Kill()
	_ = g.cmd.Wait()

	code := harness.AlipayCode(41)
	start := time.Now()
	status, body := d.do("POST", "/v1/lanes/L1/scans", map[string]any{"auth_code": code})
	require.Equal(t, 202, status, "%s", body)
	harness.WaitFor(t, 5*time.Second, func() bool {
		c = d.charge(c.ID, "")
		return len(c.Attempts) == 1 && c.Attempts[0].State == "failed"
	}, "the attempt fails")
	took := time.Since(start)
	t.Logf("scan to \"not charged\", connection refused: %s", took)
	assert.Less(t, took, 200*time.Millisecond+500*time.Millisecond, "within the connect timeout (200ms here) and a poll")
	assert.Contains(t, c.Attempts[0].ErrMsg, "not charged")
	assert.Equal(t, "awaiting_scan", c.State, "the charge is open for another way to pay")
	harness.WaitFor(t, 5*time.Second, func() bool { return strings.Contains(d.out.String(), "OFFLINE — NOT CHARGED") }, "the displays say so")

	g2 := startSandbox(t, "-listen", addr)
	harness.WaitFor(t, 5*time.Second, func() bool { code, _ := d.do("GET", "/healthz", nil); return code == 200 }, "the probe sees the gateway back")
	status, body = d.do("POST", "/v1/lanes/L1/scans", map[string]any{"auth_code": code})
	require.Equal(t, 202, status, "the same code is not burned: %s", body)
	c = d.settle(c.ID, 10*time.Second)
	require.Len(t, c.Attempts, 2)
	assert.Equal(t, "paid", c.Attempts[1].State)
	assert.Equal(t, "paid", c.State)
	checkLedger(t, g2.ledger(t), c)
}
