package e2e

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/test/harness"
)

func (d *posdProc) posctl(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(posctlBin, append([]string{"-api", "unix:" + d.sock}, args...)...).CombinedOutput()
	return string(out), exitOK(err)
}

func exitOK(err error) int {
	if err == nil {
		return 0
	}
	return exitCode(err)
}

// Every posctl command against a running posd and the sandbox, and its
// error when posd is down.
func TestPosctl(t *testing.T) {
	t.Parallel()
	g := startSandbox(t)
	p := startFaultProxy(t, g.url, 0, nil)
	d := newDaemon(t, g, opts{gateway: p.url})
	d.start()
	var ch harness.ChargeJSON
	out, code := d.posctl(t, "charge", "12.34", "-lane", "L1")
	require.Equal(t, 0, code, out)
	require.NoError(t, json.Unmarshal([]byte(out), &ch))
	assert.EqualValues(t, 1234, ch.TotalFee, "12.34 yuan is 1234 fen, exactly")
	_, code = d.posctl(t, "charge", "12.345")
	assert.Equal(t, 1, code, "three decimals are refused")

	d.scan(harness.AlipayCode(23))
	out, code = d.posctl(t, "status", ch.ID, "--wait")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, `"state": "paid"`)
	start := time.Now()
	out, code = d.posctl(t, "status", ch.ID, "--wait")
	require.Equal(t, 0, code, out)
	assert.Less(t, time.Since(start), 5*time.Second, "a settled charge is shown at once, not after the long-poll")
	out, code = d.posctl(t, "receipt", ch.ID)
	assert.Equal(t, 0, code, out)
	out, code = d.posctl(t, "refund", ch.ID)
	require.Equal(t, 0, code, out)
	harness.WaitFor(t, 10*time.Second, func() bool { return d.charge(ch.ID, "1s").State == "refunded" }, "refunded")

	out, code = d.posctl(t, "charge", "0.50")
	require.Equal(t, 0, code, out)
	var ch2 harness.ChargeJSON
	require.NoError(t, json.Unmarshal([]byte(out), &ch2))
	out, code = d.posctl(t, "cancel", ch2.ID)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, `"canceled"`)

	// An order nobody can settle: the operator resolves it.
	out, _ = d.posctl(t, "charge", "1.00")
	var ch3 harness.ChargeJSON
	require.NoError(t, json.Unmarshal([]byte(out), &ch3))
	// Query and reverse are cut, so that the order stays unknown.
	p.setScript(func(call string, n int) Fault {
		if call == "query" || call == "reverse" {
			return Status500
		}
		return NoFault
	})
	d.scan(harness.AlipayCode(81))
	harness.WaitFor(t, 20*time.Second, func() bool { return d.charge(ch3.ID, "1s").State == "needs_attention" }, "needs attention")
	out, code = d.posctl(t, "orders", "--unresolved")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, `"unknown"`)
	id := d.charge(ch3.ID, "").Attempts[0].MchTradeID
	out, code = d.posctl(t, "resolve", id, "--not-paid", "--by", "alice")
	assert.Equal(t, 1, code, "a resolution says why: %s", out)
	out, code = d.posctl(t, "resolve", id, "--not-paid", "--by", "alice", "--why", "gateway portal shows it closed")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "by alice: gateway portal shows it closed")
	p.setScript(nil)
	harness.WaitFor(t, 5*time.Second, func() bool { return d.charge(ch3.ID, "1s").State == "canceled" }, "resolved charge")
	out, _ = d.posctl(t, "orders", "--unresolved")
	assert.JSONEq(t, `{"orders":[]}`, out)

	today := time.Now().Format("2006-01-02")
	out, code = d.posctl(t, "report", "--date", today)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, `"refunded"`)
	out, code = d.posctl(t, "report", "--date", today, "--csv")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "wallet,state,count,total_fee\nalipay,")
	out, code = d.posctl(t, "export", "--from", today, "--to", today)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, id)
	assert.Contains(t, out, "gateway portal shows it closed")
	out, code = d.posctl(t, "devices")
	assert.Equal(t, 0, code, out)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ev := exec.CommandContext(ctx, posctlBin, "-api", "unix:"+d.sock, "events")
	evOut := harness.NewOutput()
	ev.Stdout = evOut
	require.NoError(t, ev.Start())
	time.Sleep(300 * time.Millisecond)
	d.posctl(t, "charge", "2.00")
	harness.WaitFor(t, 5*time.Second, func() bool { return strings.Contains(evOut.String(), `"total_fee":200`) }, "an event followed")
	cancel()
	_ = ev.Wait()

	d.kill()
	out, code = d.posctl(t, "status", ch.ID)
	assert.Equal(t, 3, code)
	assert.Contains(t, out, "cannot reach posd", "a clear error when posd is not running")
}

// The API's token, the key file's mode, and the systemd notify protocol.
func TestSecurityAndSystemd(t *testing.T) {
	t.Parallel()
	g := startSandbox(t)
	d := newDaemon(t, g, opts{})
	token := filepath.Join(d.dir, "token")
	require.NoError(t, os.WriteFile(token, []byte("s3cret-token-0123456789abcdefghijkl\n"), 0o600))
	cfg, err := os.ReadFile(d.cfg)
	require.NoError(t, err)
	cfg = []byte(strings.Replace(string(cfg), "api:\n", "api:\n  token_file: "+token+"\n", 1))
	require.NoError(t, os.WriteFile(d.cfg, cfg, 0o600))

	notify := filepath.Join(d.dir, "notify.sock")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	require.NoError(t, err)
	defer l.Close()
	d.start("NOTIFY_SOCKET="+notify, "WATCHDOG_USEC=200000")
	got := map[string]bool{}
	buf := make([]byte, 256)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !(got["READY=1"] && got["WATCHDOG=1"]); {
		_ = l.SetReadDeadline(time.Now().Add(time.Second))
		if n, err := l.Read(buf); err == nil {
			for _, line := range strings.Split(string(buf[:n]), "\n") {
				got[line] = true
			}
		}
	}
	assert.True(t, got["READY=1"], "READY=1 once the journal is open and the lanes are up")
	assert.True(t, got["WATCHDOG=1"], "the watchdog is fed")

	code, body := d.do("POST", "/v1/charges", map[string]any{"lane": "L1", "total_fee": 100, "subject": "s", "body": "b"})
	assert.Equal(t, 401, code, "no token: %s", body)
	code, _ = d.do("POST", "/v1/charges", map[string]any{"lane": "L1", "total_fee": 100, "subject": "s", "body": "b"}, "Authorization", "Bearer wrong")
	assert.Equal(t, 401, code, "a wrong token")
	code, _ = d.do("GET", "/v1/orders", nil)
	assert.Equal(t, 401, code, "order details need the token")
	code, _ = d.do("POST", "/v1/charges", map[string]any{"lane": "L1", "total_fee": 100, "subject": "s", "body": "b"}, "Authorization", "Bearer s3cret-token-0123456789abcdefghijkl")
	assert.Equal(t, 201, code)
	code, _ = d.do("GET", "/healthz", nil)
	assert.Equal(t, 200, code, "health needs no token")
	code, body = d.do("GET", "/metrics", nil)
	assert.Equal(t, 200, code)
	assert.Contains(t, string(body), "posd_unresolved_orders 0")
	// The Prometheus client library's process and runtime series come along.
	assert.Contains(t, string(body), "process_resident_memory_bytes ")
	assert.Contains(t, string(body), "go_goroutines ")
	assert.Regexp(t, `posd_device_up\{device="[^"]*",lane="L1",role="scanner",type="[a-z]+"\} [01]`, string(body))
	d.kill()

	// A key file others can read: posd refuses to start, as a config error.
	require.NoError(t, os.Chmod(filepath.Join(d.dir, keyFileName), 0o644))
	out, err := exec.Command(posdBin, "run", "-config", d.cfg).CombinedOutput()
	assert.Equal(t, 78, exitOK(err), "%s", out)
	assert.Contains(t, string(out), "readable by others")

	// The API on a non-loopback address needs allow_remote and a token.
	cfg = []byte(strings.Replace(string(cfg), "listen: unix:"+d.sock, "listen: 0.0.0.0:18321", 1))
	require.NoError(t, os.Chmod(filepath.Join(d.dir, keyFileName), 0o600))
	require.NoError(t, os.WriteFile(d.cfg, cfg, 0o600))
	out, err = exec.Command(posdBin, "check-config", "-config", d.cfg).CombinedOutput()
	assert.Error(t, err)
	assert.Contains(t, string(out), "allow_remote")
}

// The unit file passes systemd-analyze verify, and the packaged config is
// refused until it is filled in.
func TestSystemdUnitAndTemplate(t *testing.T) {
	t.Parallel()
	analyze := harness.NeedTool(t, "systemd-analyze", "systemd")
	unit, err := os.ReadFile("../../systemd/posd.service")
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "posd.service")
	require.NoError(t, os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/bin/posd", posdBin)), 0o644))
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.NotContains(t, string(out), "posd.service:", "no warning about the unit: %s", out)

	// Hardened: systemd's own score, and no group that reaches devices
	// posd was not given (the cashier's keyboard is group input).
	out, err = exec.Command(analyze, "security", "--offline=yes", "--no-pager", path).CombinedOutput()
	require.NoError(t, err, "%s", out)
	m := regexp.MustCompile(`Overall exposure level for posd.service: ([0-9.]+)`).FindStringSubmatch(string(out))
	require.NotNil(t, m, "%s", out)
	score, _ := strconv.ParseFloat(m[1], 64)
	assert.LessOrEqual(t, score, 1.5, "systemd-analyze security")
	t.Logf("systemd-analyze security: %s", m[1])
	groups := regexp.MustCompile(`(?m)^SupplementaryGroups=(.*)$`).FindStringSubmatch(string(unit))
	require.NotNil(t, groups)
	assert.Equal(t, "posd-dev", strings.TrimSpace(groups[1]), "only the devices the udev rules tag for posd")
	rules, err := os.ReadFile("../../systemd/99-posd.rules")
	require.NoError(t, err)
	assert.NotContains(t, string(rules), `GROUP="posd"`, "the API socket's group is not the devices'")

	// The head office's unit, likewise.
	hqUnit, err := os.ReadFile("../../systemd/posd-hq.service")
	require.NoError(t, err)
	hqPath := filepath.Join(t.TempDir(), "posd-hq.service")
	require.NoError(t, os.WriteFile(hqPath, []byte(strings.ReplaceAll(string(hqUnit), "/usr/bin/posd-hq", posdBin)), 0o644))
	out, err = exec.Command(analyze, "verify", hqPath).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.NotContains(t, string(out), "posd-hq.service:", "no warning about the unit: %s", out)

	out, err = exec.Command(posdBin, "check-config", "-config", "../../packaging/config.yaml").CombinedOutput()
	assert.Error(t, err, "the packaged template is refused until filled in")
	assert.Contains(t, string(out), "not filled in")
}

// SIGHUP reloads the merchant key (a key rotation) without a restart, and
// says what else changed and needs one.
func TestSIGHUPRotatesTheKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	newKey := filepath.Join(dir, "gateway.key")
	require.NoError(t, os.WriteFile(newKey, []byte("rotated-key-0001\n"), 0o600))
	g := startSandbox(t, "-key-file", newKey)
	d := newDaemon(t, g, opts{}) // posd starts with the old (built-in) key
	d.start()
	require.NoError(t, os.WriteFile(filepath.Join(d.dir, keyFileName), []byte("rotated-key-0001\n"), 0o600))
	cfg, err := os.ReadFile(d.cfg)
	require.NoError(t, err)
	// A lane not in use gets a fixed fee; the gateway timeout needs a restart.
	changed := strings.Replace(string(cfg), "device_info: POS01", "device_info: POS01\n    fixed_fee: 300\n    subject: s\n    body: b", 1)
	changed = strings.Replace(changed, "timeout: 400ms", "timeout: 500ms", 1)
	require.NoError(t, os.WriteFile(d.cfg, []byte(changed), 0o600))
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGHUP))
	harness.WaitFor(t, 5*time.Second, func() bool { return strings.Contains(d.out.String(), "merchant key reloaded") }, "reload")
	harness.WaitFor(t, 5*time.Second, func() bool { return strings.Contains(d.out.String(), "need a restart") }, "restart notice")
	assert.Contains(t, d.out.String(), `"gateway"`)
	_, body := d.do("GET", "/v1/lanes/L1", nil)
	assert.Contains(t, string(body), `"fixed_fee":300`, "the lane took its new settings")

	c := d.openCharge("L1", 100)
	d.scan(harness.AlipayCode(5))
	got := d.settle(c.ID, 10*time.Second)
	assert.Equal(t, "paid", got.State, "signed with the rotated key")
}
