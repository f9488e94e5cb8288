package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/natstest"
	"example.com/posd/test/harness"
)

// The head office's page in a real headless Chromium, fed by a real box
// through a real broker: a paid order in the day's totals, an order the
// gateway keeps open among the unresolved, a scanner that is not there
// among the devices down. The view asks for its token: a browser without
// it gets 401, a name that is not the listener's gets 421.
func TestHQPageInABrowser(t *testing.T) {
	t.Parallel()
	chromium := harness.NeedTool(t, "chromium", "chromium fonts-noto-cjk")
	hqBin, natsBin := buildFleet(t)
	g := startSandbox(t)
	natsAddr := harness.FreePort(t)
	_, natsPort, _ := net.SplitHostPort(natsAddr)
	natsURL := "nats://" + natsAddr
	startProc(t, natsBin, nil, "-a", "127.0.0.1", "-p", natsPort, "-js", "-sd", t.TempDir())
	st := natstest.FleetStream(t, "store-stream.json") // the boxes publish straight to it here
	_, err := jetStream(t, natsURL).CreateStream(context.Background(), st)
	require.NoError(t, err)

	token := strings.Repeat("t0ken", 8)
	tokenFile := filepath.Join(t.TempDir(), "view.token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(token+"\n"), 0o600))
	viewAddr := harness.FreePort(t)
	startProc(t, hqBin, nil, "-nats", natsURL, "-db", filepath.Join(t.TempDir(), "hq.db"), "-listen", viewAddr, "-token-file", tokenFile)

	d := newDaemon(t, g, opts{store: "S201", confirm: queryEvery("1m"), extra: "fleet: {url: \"" + natsURL + "\"}\n", lanes: `
  - id: L1
    device_info: POS01
    scanners: [{type: stdin}, {type: serial, port: /dev/posd-test-absent, baud: 9600}]
    displays: [{type: terminal}]
`})
	d.start()
	c := d.openCharge("L1", 1234)
	d.scan(harness.AlipayCode(7))
	require.Equal(t, "paid", d.settle(c.ID, 15*time.Second).State)
	d.openCharge("L1", 500)
	d.scan(harness.AlipayCode(81)) // the gateway says "paying" for as long as it is asked

	get := func(path, host, auth string) (int, string) {
		r, err := http.NewRequest("GET", "http://"+viewAddr+path, nil)
		require.NoError(t, err)
		if host != "" {
			r.Host = host
		}
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	harness.WaitFor(t, 30*time.Second, func() bool {
		_, body := get("/v1/unresolved", "", "Bearer "+token)
		return strings.Contains(body, "S201")
	}, "the open order at head office")
	code, _ := get("/v1/unresolved", "", "")
	assert.Equal(t, 401, code, "no token")
	code, _ = get("/v1/unresolved", "", "Bearer "+strings.Repeat("x", 30))
	assert.Equal(t, 401, code, "a wrong token")
	code, _ = get("/v1/unresolved", "evil.example", "Bearer "+token)
	assert.Equal(t, 421, code, "DNS rebinding")

	ctx := newBrowser(t, chromium)
	// Without the token: the basic-auth challenge, which headless Chromium
	// has no one to answer.
	_, err = chromedp.RunResponse(ctx, chromedp.Navigate("http://"+viewAddr+"/"))
	require.ErrorContains(t, err, "ERR_INVALID_AUTH_CREDENTIALS", "a browser without the token")

	require.NoError(t, chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
			Headers: network.Headers{"Authorization": "Bearer " + token}})
		return err
	})))
	text := func(sel string) string {
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		require.NoError(t, err)
		return s
	}
	harness.WaitFor(t, 30*time.Second, func() bool {
		resp, err := chromedp.RunResponse(ctx, chromedp.Navigate("http://"+viewAddr+"/"))
		require.NoError(t, err)
		require.Equal(t, int64(200), resp.Status)
		return strings.Contains(text("#down"), "S201") && strings.Contains(text("#totals"), "12.34")
	}, "the box's device and takings on the page")
	unresolved := text("#unresolved")
	assert.Contains(t, unresolved, "S201")
	assert.Contains(t, unresolved, "5.00")
	assert.NotContains(t, unresolved, "12.34", "a paid order is not unresolved")
	assert.Contains(t, text("#down"), "posd-test-absent")
	totals := text("#totals")
	assert.Regexp(t, `S201\s+L1\s+alipay\s+1\s+12\.34\s+0\.00\s+12\.34`, totals)
	if os.Getenv("UPDATE_SCREENSHOTS") == "1" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join("..", "..", "docs", "hq-page.png"), png, 0o644))
	}
}
