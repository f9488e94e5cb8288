package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/test/harness"
)

// tillPage is a till that runs in a browser: it follows the lane's events
// (with fetch: an EventSource cannot send the token), opens a charge,
// hands posd the scanned code and long-polls the result.
const tillPage = `<!doctype html><meta charset="utf-8"><title>till</title><script>
const api = %q, token = %q, code = %q, ref = %q;
window.out = {events: []};
async function follow() {
  const r = await fetch(api + "/v1/events?lane=L1", {headers: {"Authorization": "Bearer " + token}});
  const reader = r.body.getReader(), dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    buf += dec.decode(value, {stream: true});
    for (let i; (i = buf.indexOf("\n\n")) >= 0; buf = buf.slice(i + 2)) {
      const m = buf.slice(0, i).match(/^event: (.*)$/m);
      if (m) window.out.events.push(m[1]);
    }
  }
}
async function day() {
  const h = {"Authorization": "Bearer " + token, "Content-Type": "application/json"};
  try {
    follow().catch(e => { window.out.followError = String(e); });
    let r = await fetch(api + "/v1/charges", {method: "POST", headers: {...h, "Idempotency-Key": ref},
      body: JSON.stringify({lane: "L1", total_fee: 1234, subject: "s", body: "b", reference: ref})});
    let c = await r.json();
    window.out.opened = r.status;
    r = await fetch(api + "/v1/lanes/L1/scans", {method: "POST", headers: h, body: JSON.stringify({auth_code: code})});
    window.out.scanned = r.status;
    for (let i = 0; i < 20 && c.state !== "paid"; i++) {
      r = await fetch(api + "/v1/charges/" + c.id + "?wait=10s&version=" + c.version, {headers: h});
      c = await r.json();
    }
    window.out.state = c.state;
  } catch (e) {
    window.out.error = String(e);
  }
  return window.out;
}
</script>`

// A till page of an allowed origin (https, its own certificate) opens a
// charge, has it paid and hears it on /v1/events, in a real Chromium; the
// same page served from another origin cannot reach the API at all.
func TestTillInABrowser(t *testing.T) {
	t.Parallel()
	chromium := harness.NeedTool(t, "chromium", "chromium")
	tills := map[string]*httptest.Server{}
	for _, name := range []string{"allowed", "other"} {
		srv := httptest.NewUnstartedServer(nil)
		srv.StartTLS()
		t.Cleanup(srv.Close)
		tills[name] = srv
	}
	g := startSandbox(t)
	d := newDaemon(t, g, opts{})
	addr := harness.FreePort(t)
	token := strings.Repeat("b", 40)
	tokenFile := filepath.Join(d.dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(token), 0o600))
	cfg := strings.Replace(harness.ReadFile(t, d.cfg), "listen: unix:"+d.sock,
		"listen: "+addr+"\n  token_file: "+tokenFile+"\n  allowed_origins: ["+tills["allowed"].URL+"]", 1)
	require.NoError(t, os.WriteFile(d.cfg, []byte(cfg), 0o600))
	d.http = tcpClient(addr)
	d.start()

	api := "http://" + addr
	for name, srv := range tills {
		code, ref := harness.AlipayCode(17), "WEB-"+name
		srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, tillPage, api, token, code, ref)
		})
	}
	ctx := newBrowser(t, chromium, chromedp.IgnoreCertErrors)
	day := func(srv *httptest.Server) map[string]any {
		_, err := chromedp.RunResponse(ctx, chromedp.Navigate(srv.URL+"/till.html"))
		require.NoError(t, err)
		out, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]any](`day()`, chromedp.EvalAwaitPromise))
		require.NoError(t, err)
		return out
	}

	out := day(tills["allowed"])
	require.Empty(t, out["error"], "%v", out)
	assert.EqualValues(t, 201, out["opened"])
	assert.EqualValues(t, 202, out["scanned"])
	assert.Equal(t, "paid", out["state"])
	harness.WaitFor(t, 10*time.Second, func() bool {
		events, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.out.events`))
		return strings.Contains(strings.Join(events, " "), "paid")
	}, "the page hears paid on /v1/events")

	out = day(tills["other"])
	assert.Contains(t, out["error"], "Failed to fetch", "another origin is refused: %v", out)
	assert.Nil(t, out["opened"])
	req, err := http.NewRequest("GET", api+"/v1/charges?reference=WEB-other&lane=L1", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := d.http.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, 200, resp.StatusCode, "%s", body)
	assert.Contains(t, string(body), `"charges":[]`, "no charge opened from the other origin")
}

// tcpClient is a client of posd's API on a TCP address, whatever host a
// request's URL names.
func tcpClient(addr string) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "tcp", addr)
		}}}
}
