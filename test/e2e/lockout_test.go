package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/test/harness"
)

// tcpTill is posd on a loopback TCP port with a token, and the till's
// client (keep-alive, as every HTTP client does).
type tcpTill struct {
	d     *posdProc
	base  string
	token string
	http  *http.Client
}

func newTCPTill(t *testing.T, lanes, api string) *tcpTill {
	t.Helper()
	g := startSandbox(t)
	d := newDaemon(t, g, opts{lanes: lanes})
	addr := harness.FreePort(t)
	token := strings.Repeat("k", 40)
	tokenFile := filepath.Join(d.dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(token), 0o600))
	cfg := strings.Replace(harness.ReadFile(t, d.cfg), "listen: unix:"+d.sock, "listen: "+addr+"\n  token_file: "+tokenFile+api, 1)
	require.NoError(t, os.WriteFile(d.cfg, []byte(cfg), 0o600))
	d.http = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "tcp", addr)
		}}}
	d.start()
	return &tcpTill{d: d, base: "http://" + addr, token: token, http: &http.Client{Timeout: 30 * time.Second}}
}

func (c *tcpTill) do(method, path string, body any) (int, []byte) {
	return c.doWith(c.http, method, path, body)
}

func (c *tcpTill) doWith(cl *http.Client, method, path string, body any) (int, []byte) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	r, _ := http.NewRequest(method, c.base+path, rd)
	r.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	resp, err := cl.Do(r)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// Two hundred clients looping wrong tokens (a new connection each, or
// keep-alive) do not keep the till from its charges, whether it keeps its
// connection or opens one a request (as curl does): each of its requests
// has its usual answer in about its usual time.
func TestTillServedWhileWrongTokensLoop(t *testing.T) {
	c := newTCPTill(t, "", "\n  max_connections: 32")
	fresh := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	// A sale: open, read, cancel; fifteen of them.
	sales := func(t *testing.T, cl *http.Client) (worst time.Duration) {
		t.Helper()
		for range 15 {
			for _, step := range []struct {
				method, path string
				body         any
				want         int
			}{
				{"POST", "/v1/charges", map[string]any{"lane": "L1", "total_fee": 100, "subject": "s", "body": "b"}, 201},
				{"GET", "/v1/lanes/L1", nil, 200},
				{"DELETE", "/v1/charges/", nil, 200},
			} {
				path := step.path
				if step.method == "DELETE" {
					_, b := c.doWith(cl, "GET", "/v1/lanes/L1", nil)
					var l struct{ Charge struct{ ID string } }
					require.NoError(t, json.Unmarshal(b, &l))
					path += l.Charge.ID
				}
				start := time.Now()
				code, b := c.doWith(cl, step.method, path, step.body)
				took := time.Since(start)
				require.Equal(t, step.want, code, "%s %s: %s", step.method, path, b)
				worst = max(worst, took)
			}
		}
		return worst
	}
	baseline := max(sales(t, c.http), sales(t, fresh))

	for _, tc := range []struct {
		name    string
		other   bool // the attackers run as another user
		clients []*http.Client
	}{
		{"attackers of the till's own user, the till keeping its connection", false, []*http.Client{c.http}},
		{"attackers of another user, the till keeping its connection or opening one a request", true, []*http.Client{c.http, fresh}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.other {
				harness.NeedRoot(t, "to run the attackers as another user")
			}
			a := startWrongTokens(t, c.base, tc.other)
			harness.WaitFor(t, 10*time.Second, func() bool { return a.counts().refused > 200 }, "the attack under way")
			var attacked time.Duration
			for _, cl := range tc.clients {
				attacked = max(attacked, sales(t, cl))
			}
			got, lasted := a.stop()
			bound := max(10*baseline, time.Second)
			t.Logf("the till's slowest request: %s alone, %s under attack; wrong tokens answered 401: %d, refused: %d", baseline, attacked, got.answered, got.refused)
			assert.LessOrEqual(t, attacked, bound, "the till in about its usual time")
			assert.LessOrEqual(t, got.answered, int64(4+4*lasted.Seconds()+4), "wrong tokens compared: four a second for the attackers' client (a burst of four)")
		})
	}
}

type wrongTokenCounts struct{ answered, refused int64 }

// wrongTokens is a process of 200 clients looping wrong tokens at posd
// (half with a new connection each, half keep-alive): this test binary,
// run again (loopWrongTokens).
type wrongTokens struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.Closer
	began  time.Time
	mu     sync.Mutex
	last   wrongTokenCounts
	closed chan struct{}
}

func startWrongTokens(t *testing.T, base string, asNobody bool) *wrongTokens {
	self, err := os.Executable()
	require.NoError(t, err)
	if asNobody { // a copy another user may run
		dir, err := os.MkdirTemp("", "posd-attack")
		require.NoError(t, err)
		t.Cleanup(func() { os.RemoveAll(dir) })
		require.NoError(t, os.Chmod(dir, 0o755))
		b, err := os.ReadFile(self)
		require.NoError(t, err)
		self = filepath.Join(dir, "attack")
		require.NoError(t, os.WriteFile(self, b, 0o755))
	}
	a := &wrongTokens{t: t, began: time.Now(), closed: make(chan struct{})}
	a.cmd = harness.DiesWithTest(exec.Command(self))
	a.cmd.Env = append(os.Environ(), "POSD_TEST_WRONG_TOKENS="+base)
	if asNobody {
		a.cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 65534, Gid: 65534}
	}
	in, err := a.cmd.StdinPipe()
	require.NoError(t, err)
	a.stdin = in
	out, err := a.cmd.StdoutPipe()
	require.NoError(t, err)
	a.cmd.Stderr = os.Stderr
	require.NoError(t, a.cmd.Start())
	go func() {
		defer close(a.closed)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var n wrongTokenCounts
			if _, err := fmt.Sscanf(sc.Text(), "%d %d", &n.answered, &n.refused); err == nil {
				a.mu.Lock()
				a.last = n
				a.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { _ = a.cmd.Process.Kill(); _ = a.cmd.Wait() })
	return a
}

func (a *wrongTokens) counts() wrongTokenCounts {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

// stop ends the attack: its final counts, and how long it lasted.
func (a *wrongTokens) stop() (wrongTokenCounts, time.Duration) {
	a.stdin.Close()
	<-a.closed
	require.NoError(a.t, a.cmd.Wait())
	return a.counts(), time.Since(a.began)
}

// loopWrongTokens is the attackers' process: it loops wrong tokens at
// base until its standard input closes, printing "answered refused" (401s;
// 429s, 503s and connections closed for room) as it goes and at the end.
func loopWrongTokens(base string) int {
	ctx, stop := context.WithCancel(context.Background())
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); stop() }()
	var wg sync.WaitGroup
	var answered, refused atomic.Int64
	for i := range 200 {
		wg.Go(func() {
			tr := &http.Transport{DisableKeepAlives: i%2 == 0}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for ctx.Err() == nil {
				r, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/lanes/L1", nil)
				r.Header.Set("Authorization", "Bearer "+strings.Repeat("g", 40))
				resp, err := cl.Do(r)
				if err != nil {
					if ctx.Err() == nil {
						refused.Add(1) // closed to make room
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case 401:
					answered.Add(1)
				case 429, 503:
					refused.Add(1)
				default:
					fmt.Fprintln(os.Stderr, "a wrong token answered", resp.StatusCode)
					os.Exit(2)
				}
			}
		})
	}
	report := func() { fmt.Printf("%d %d\n", answered.Load(), refused.Load()) }
	go func() {
		for ctx.Err() == nil {
			report()
			time.Sleep(100 * time.Millisecond)
		}
	}()
	wg.Wait()
	report()
	return 0
}

// A tokenless client opening stream after stream does not close the
// customer display's: it stays open and shows the next charge.
func TestDisplayStreamSurvivesTokenlessFlood(t *testing.T) {
	c := newTCPTill(t, `
  - id: L1
    device_info: POS01
    scanners: [{type: stdin}]
    displays: [{type: web}]
`, "\n  max_streams: 8")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func() *http.Response {
		r, _ := http.NewRequestWithContext(ctx, "GET", c.base+"/display/L1/events", nil)
		resp, err := (&http.Client{}).Do(r)
		require.NoError(t, err)
		return resp
	}
	display := open()
	defer display.Body.Close()
	require.Equal(t, 200, display.StatusCode)
	codes := map[int]int{}
	for range 40 {
		resp := open()
		codes[resp.StatusCode]++
		if resp.StatusCode != 200 {
			resp.Body.Close()
		}
	}
	assert.Equal(t, map[int]int{200: 3, 429: 37}, codes, "half of the lane's streams for one client; then refused")

	code, b := c.do("POST", "/v1/charges", map[string]any{"lane": "L1", "total_fee": 4321, "subject": "s", "body": "b"})
	require.Equal(t, 201, code, "%s", b)
	got := make(chan string, 1)
	go func() {
		r := bufio.NewReader(display.Body)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				got <- "closed: " + err.Error()
				return
			}
			if strings.Contains(line, `"total_fee":4321`) {
				got <- line
				return
			}
		}
	}()
	select {
	case line := <-got:
		assert.Contains(t, line, `"kind":"awaiting_scan"`, "the display's stream shows the charge")
	case <-time.After(10 * time.Second):
		t.Fatal("the display's stream shows nothing")
	}
}

// A till's text with a NUL or an ESC is refused, naming the field, and
// nothing is opened.
func TestTillTextWithControlCharactersRefused(t *testing.T) {
	t.Parallel()
	g := startSandbox(t)
	d := newDaemon(t, g, opts{})
	d.start()
	for field, v := range map[string]string{"subject": "a\x00b", "body": "\x1b[2J", "op_user_id": "07\x1b]0;x\x07"} {
		body := map[string]any{"lane": "L1", "total_fee": 100, "subject": "s", "body": "b"}
		body[field] = v
		code, b := d.do("POST", "/v1/charges", body)
		assert.Equal(t, 422, code, "%s: %s", field, b)
		assert.Contains(t, string(b), field+":")
	}
	code, b := d.do("GET", "/v1/lanes/L1", nil)
	require.Equal(t, 200, code)
	assert.Contains(t, string(b), `"charge":null`, "nothing opened")
}

// An export as CSV writes a till's formula as text: the cell begins with '.
func TestCSVExportWritesFormulasAsText(t *testing.T) {
	t.Parallel()
	g := startSandbox(t)
	d := newDaemon(t, g, opts{})
	d.start()
	const formula = `=cmd|' /C calc'!A0`
	code, b := d.do("POST", "/v1/charges", map[string]any{"lane": "L1", "total_fee": 100, "subject": "s", "body": "b",
		"op_user_id": formula, "shift": "+SUM(A1)"})
	require.Equal(t, 201, code, "%s", b)
	var c harness.ChargeJSON
	require.NoError(t, json.Unmarshal(b, &c))
	d.scan(harness.AlipayCode(3))
	require.Equal(t, "paid", d.settle(c.ID, 10*time.Second).Attempts[0].State)

	today := time.Now().Format(time.DateOnly)
	code, b = d.do("GET", "/v1/export?from="+today+"&to="+today+"&format=csv", nil)
	require.Equal(t, 200, code, "%s", b)
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 2, "%s", b)
	col := map[string]string{}
	for i, name := range rows[0] {
		col[name] = rows[1][i]
	}
	assert.Equal(t, "'"+formula, col["op_user_id"])
	assert.Equal(t, "'+SUM(A1)", col["shift"])
	assert.Equal(t, "100", col["total_fee"], "posd's own numbers are not negative: no prefix")
}
