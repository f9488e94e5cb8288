package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"example.com/posd/payment/sandbox"
	"example.com/posd/test/harness"
)

// The end-to-end tests run the real posd binary, built once with the race
// detector; plainPosd is built as shipped, for what is timed or measured.
var (
	posdBin, posctlBin string
	plainOnce          sync.Once
	plainDir           string
	plainBin           string
	plainErr           error
)

func TestMain(m *testing.M) {
	if url := os.Getenv("POSD_TEST_WRONG_TOKENS"); url != "" {
		os.Exit(loopWrongTokens(url)) // this binary, run as another user's process
	}
	os.Exit(harness.Run(m, func(dir string) (err error) {
		plainDir = filepath.Join(dir, "plain")
		if err = os.Mkdir(plainDir, 0o755); err != nil {
			return err
		}
		if posdBin, err = harness.Build(dir, "cmd/posd", true); err != nil {
			return err
		}
		posctlBin, err = harness.Build(dir, "cmd/posctl", false)
		return err
	}))
}

// plainPosd is posd without the race detector, built once for the suite.
func plainPosd(t *testing.T) string {
	t.Helper()
	plainOnce.Do(func() { plainBin, plainErr = harness.Build(plainDir, "cmd/posd", false) })
	require.NoError(t, plainErr)
	return plainBin
}

// gw is a standalone sandbox process.
type gw struct {
	url string
	cmd *exec.Cmd
	out *harness.SyncBuf
}

func startSandbox(t *testing.T, args ...string) *gw {
	t.Helper()
	// Port 0: the sandbox picks a free port and says which; choosing one
	// here and passing it on races with parallel tests.
	out := harness.NewOutput()
	cmd := harness.DiesWithTest(exec.Command(posdBin, append([]string{"sandbox", "-listen", "127.0.0.1:0"}, args...)...))
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := regexp.MustCompile(`on http://([0-9.:]+)/`)
	var url string
	harness.WaitFor(t, 10*time.Second, func() bool {
		m := addr.FindStringSubmatch(out.String())
		if m == nil {
			return false
		}
		url = "http://" + m[1] + "/"
		resp, err := http.Get(url + "_sandbox/orders")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	}, "sandbox up")
	return &gw{url: url, cmd: cmd, out: out}
}

func (g *gw) ledger(t *testing.T) sandbox.Ledger {
	t.Helper()
	resp, err := http.Get(g.url + "_sandbox/orders")
	require.NoError(t, err)
	defer resp.Body.Close()
	var l sandbox.Ledger
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&l))
	return l
}

// daemon is one posd process with its config, API socket and stdin.
type posdProc struct {
	t      *testing.T
	dir    string
	cfg    string
	sock   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *harness.SyncBuf
	http   *http.Client
	exited chan error
	bin    string // the posd binary, when not the suite's race build
}

type opts struct {
	lanes   string // YAML for lanes; default one lane L1 on stdin
	extra   string // more YAML
	gateway string // the gateway URL posd uses, when not the sandbox's own (a fault proxy)
	confirm string // the confirm block, when not the fast default
	probe   string // gateway.probe_interval (default 200ms)
	store   string // merchant.store_id (default S001)
}

const keyFileName = "merchant.key"

// queryEvery is the test's confirm block with queries every interval (the
// rest of the flow fast): long enough to act while an order is queried.
func queryEvery(interval string) string {
	return `
  query_interval: ` + interval + `
  query_attempts: 6
  reverse_interval: 20ms
  reverse_attempts: 5
  reconcile_interval: 200ms
  reconcile_max: 1s`
}

func newDaemon(t *testing.T, g *gw, o opts) *posdProc {
	t.Helper()
	dir := t.TempDir()
	d := &posdProc{t: t, dir: dir, sock: filepath.Join(dir, "api.sock")}
	require.NoError(t, os.WriteFile(filepath.Join(dir, keyFileName), []byte(sandbox.Key+"\n"), 0o600))
	if o.lanes == "" {
		o.lanes = `
  - id: L1
    device_info: POS01
    scanners: [{type: stdin}]
    displays: [{type: terminal}]
`
	}
	gwURL := g.url
	if o.gateway != "" {
		gwURL = o.gateway
	}
	if o.confirm == "" {
		o.confirm = queryEvery("40ms")
	}
	if o.probe == "" {
		o.probe = "200ms"
	}
	if o.store == "" {
		o.store = "S001"
	}
	cfg := fmt.Sprintf(`
merchant:
  id: %s
  key_file: %s
  store_id: %s
gateway:
  url: %s
  timeout: 400ms
  connect_timeout: 200ms
  probe_interval: %s
confirm:%s
journal:
  path: %s
api:
  listen: unix:%s
log:
  format: json
  level: debug
scan:
  duplicate_window: 2s
shutdown_timeout: 2s
%s
lanes:%s`, sandbox.MerchantID, filepath.Join(dir, keyFileName), o.store, gwURL, o.probe, o.confirm, filepath.Join(dir, "journal.db"), d.sock, o.extra, o.lanes)
	d.cfg = filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(d.cfg, []byte(cfg), 0o600))
	d.http = harness.UnixClient(d.sock, 30*time.Second)
	return d
}

// start runs posd, with env added, and waits for its API.
func (d *posdProc) start(env ...string) {
	t := d.t
	t.Helper()
	d.out = harness.NewOutput()
	bin := posdBin
	if d.bin != "" {
		bin = d.bin
	}
	cmd := harness.DiesWithTest(exec.Command(bin, "run", "-config", d.cfg))
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = d.out, d.out
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	d.cmd, d.stdin = cmd, stdin
	d.exited = make(chan error, 1)
	go func() { d.exited <- cmd.Wait() }()
	t.Cleanup(func() { d.kill() })
	harness.WaitFor(t, 20*time.Second, func() bool {
		select {
		case err := <-d.exited:
			d.exited <- err
			t.Fatalf("posd exited at start: %v\n%s", err, d.out.String())
		default:
		}
		resp, err := d.http.Get("http://posd/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	}, "posd API up")
}

// kill ends posd at once (SIGKILL) and waits for it, unless it has ended.
// What Wait returned stays in exited for whoever asks next.
func (d *posdProc) kill() {
	if d.cmd == nil {
		return
	}
	select {
	case err := <-d.exited:
		d.exited <- err // ended already
		return
	default:
	}
	_ = d.cmd.Process.Kill()
	select {
	case err := <-d.exited:
		d.exited <- err
	case <-time.After(5 * time.Second):
	}
}

// waitExit waits for posd to end by itself (a failpoint's SIGKILL).
func (d *posdProc) waitExit(timeout time.Duration) error {
	select {
	case err := <-d.exited:
		d.exited <- err
		return err
	case <-time.After(timeout):
		d.t.Fatalf("posd did not exit within %s\n%s", timeout, d.out.String())
		return nil
	}
}

func (d *posdProc) scan(code string) {
	_, err := io.WriteString(d.stdin, code+"\n")
	require.NoError(d.t, err)
}

// try is a non-fatal API call: posd may be down at any moment.
func (d *posdProc) try(method, path string, body any, hdr ...string) (int, []byte, error) {
	return harness.Call(d.http, method, path, body, hdr...)
}

func (d *posdProc) do(method, path string, body any, hdr ...string) (int, []byte) {
	d.t.Helper()
	code, b, err := d.try(method, path, body, hdr...)
	require.NoError(d.t, err)
	return code, b
}

func (d *posdProc) openCharge(lane string, fee int64, hdr ...string) harness.ChargeJSON {
	d.t.Helper()
	code, b := d.do("POST", "/v1/charges", map[string]any{"lane": lane, "total_fee": fee, "subject": "e2e", "body": "e2e test"}, hdr...)
	require.Equal(d.t, 201, code, "%s", b)
	var c harness.ChargeJSON
	require.NoError(d.t, json.Unmarshal(b, &c))
	return c
}

func (d *posdProc) charge(id string, wait string) harness.ChargeJSON {
	d.t.Helper()
	path := "/v1/charges/" + id
	if wait != "" {
		path += "?wait=" + wait
	}
	code, b := d.do("GET", path, nil)
	require.Equal(d.t, 200, code, "%s", b)
	var c harness.ChargeJSON
	require.NoError(d.t, json.Unmarshal(b, &c))
	return c
}

// settle waits until the charge's last attempt is final.
func (d *posdProc) settle(id string, timeout time.Duration) harness.ChargeJSON {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c := d.charge(id, "2s")
		if n := len(c.Attempts); n > 0 && harness.FinalAttempt[c.Attempts[n-1].State] && c.State != "paying" {
			return c
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("charge %s not settled in %s: %+v\n%s", id, timeout, c, d.out.String())
		}
	}
}

// checkLedger holds posd's view against the gateway's: each attempt's
// paid-or-not and amount agree, no code went out under two ids, and no id
// was used for two codes.
func checkLedger(t *testing.T, l sandbox.Ledger, charges ...harness.ChargeJSON) {
	t.Helper()
	orders := map[string]sandbox.Order{}
	for _, o := range l.Orders {
		orders[o.MchTradeID] = o
	}
	idOfCode := map[string]string{}
	codeOfID := map[string]string{}
	for _, r := range l.PayRequests {
		if prev, ok := idOfCode[r.AuthCodeSHA256]; ok && prev != r.MchTradeID {
			t.Errorf("code %s submitted under two ids: %s and %s", r.AuthCode, prev, r.MchTradeID)
		}
		idOfCode[r.AuthCodeSHA256] = r.MchTradeID
		if prev, ok := codeOfID[r.MchTradeID]; ok && prev != r.AuthCodeSHA256 {
			t.Errorf("mch_trade_id %s reused for another code", r.MchTradeID)
		}
		codeOfID[r.MchTradeID] = r.AuthCodeSHA256
		require.False(t, strings.ContainsAny(r.AuthCode[:len(r.AuthCode)-4], "0123456789"), "ledger codes are masked")
	}
	for _, c := range charges {
		paidAttempts := 0
		for _, a := range c.Attempts {
			o, exists := orders[a.MchTradeID]
			charged := exists && o.Charged > 0
			if a.State == "paid" {
				paidAttempts++
				require.True(t, charged, "posd says %s paid; the gateway does not: %+v", a.MchTradeID, o)
				require.Equal(t, c.TotalFee, o.TotalFee, "amount of %s", a.MchTradeID)
				require.Equal(t, o.TradeID, a.TradeID)
			} else if a.State == "refunded" {
				paidAttempts++
				require.True(t, o.WasPaid && o.Charged == 0, "posd says %s refunded: %+v", a.MchTradeID, o)
			} else {
				require.False(t, charged, "customer charged for %s which posd shows as %s", a.MchTradeID, a.State)
			}
			if a.State == "failed" {
				require.False(t, exists, "posd says nothing was created for %s", a.MchTradeID)
			}
		}
		require.LessOrEqual(t, paidAttempts, 1, "a charge is paid at most once")
		require.Equal(t, paidAttempts == 1, c.State == "paid" || c.State == "refunded", "charge state %s vs attempts", c.State)
	}
}

func runPosd(args ...string) (string, error) {
	out, err := exec.Command(posdBin, args...).CombinedOutput()
	return string(out), err
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// setJournal puts posd's journal at path, with more keys of the journal
// block (YAML such as "witness_path: /x"), for tests that copy the
// journal's folder and put it back.
func (d *posdProc) setJournal(path string, keys ...string) {
	d.t.Helper()
	block := "journal:\n  path: " + path + "\n"
	for _, k := range keys {
		block += "  " + k + "\n"
	}
	cfg := harness.ReadFile(d.t, d.cfg)
	journal := regexp.MustCompile(`(?m)^journal:\n(  .*\n)+`)
	require.True(d.t, journal.MatchString(cfg), "a journal block in %s", d.cfg)
	require.NoError(d.t, os.WriteFile(d.cfg, []byte(journal.ReplaceAllLiteralString(cfg, block)), 0o600))
}
