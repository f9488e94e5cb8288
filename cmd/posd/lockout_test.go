package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net"
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
	addr := freePort(t)
	token := strings.Repeat("k", 40)
	tokenFile := filepath.Join(d.dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(token), 0o600))
	cfg := strings.Replace(readFile(t, d.cfg), "listen: unix:"+d.sock, "listen: "+addr+"\n  token_file: "+tokenFile+api, 1)
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
	resp, err := c.http.Do(r)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// Two hundred clients looping wrong tokens (a new connection each, or
// keep-alive) do not keep the till from its charges: each of its requests
// has its usual answer in about its usual time.
func TestTillServedWhileWrongTokensLoop(t *testing.T) {
	c := newTCPTill(t, "", "\n  max_connections: 32")
	// A sale: open, read, cancel; fifteen of them.
	sales := func() (worst time.Duration) {
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
					_, b := c.do("GET", "/v1/lanes/L1", nil)
					var l struct{ Charge struct{ ID string } }
					require.NoError(t, json.Unmarshal(b, &l))
					path += l.Charge.ID
				}
				start := time.Now()
				code, b := c.do(step.method, path, step.body)
				took := time.Since(start)
				require.Equal(t, step.want, code, "%s %s: %s", step.method, path, b)
				worst = max(worst, took)
			}
		}
		return worst
	}
	baseline := sales()

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var answered, refused atomic.Int64
	for i := range 200 {
		wg.Go(func() {
			tr := &http.Transport{DisableKeepAlives: i%2 == 0}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for ctx.Err() == nil {
				r, _ := http.NewRequestWithContext(ctx, "GET", c.base+"/v1/lanes/L1", nil)
				r.Header.Set("Authorization", "Bearer "+strings.Repeat("g", 40))
				resp, err := cl.Do(r)
				if err != nil {
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
					t.Errorf("a wrong token: %d", resp.StatusCode)
				}
			}
		})
	}
	began := time.Now()
	waitFor(t, 10*time.Second, func() bool { return refused.Load() > 200 }, "the attack under way")
	attacked := sales()
	stop()
	wg.Wait()
	lasted := time.Since(began)
	bound := max(10*baseline, time.Second)
	t.Logf("the till's slowest request: %s alone, %s under attack; wrong tokens answered 401: %d, refused: %d", baseline, attacked, answered.Load(), refused.Load())
	assert.LessOrEqual(t, attacked, bound, "the till in about its usual time")
	assert.LessOrEqual(t, answered.Load(), int64(4+4*lasted.Seconds()+4), "wrong tokens compared: four a second for this client (a burst of four)")
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
	var c chargeJSON
	require.NoError(t, json.Unmarshal(b, &c))
	d.scan(alipayCode(3))
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
