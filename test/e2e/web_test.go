package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/test/harness"
)

// newBrowser starts a headless Chromium for the test: a tab's context,
// whose first action has started the browser.
func newBrowser(t *testing.T, chromium string, more ...chromedp.ExecAllocatorOption) context.Context {
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.WindowSize(1024, 600),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir())}, more...)...)
	t.Cleanup(cancelA)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	// The first action starts the browser; it gets no deadline of its own.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("about:blank")))
	return ctx
}

// The web customer display in a real headless Chromium: the amount of an
// open charge, then "paid", then (after posd restarts) the next charge, all
// without a reload.
func TestWebCustomerDisplay(t *testing.T) {
	t.Parallel()
	chromium := harness.NeedTool(t, "chromium", "chromium fonts-noto-cjk")
	g := startSandbox(t)
	webAddr := harness.FreePort(t)
	d := newDaemon(t, g, opts{lanes: `
  - id: L1
    device_info: POS01
    scanners: [{type: stdin}]
    displays: [{type: web, listen: "` + webAddr + `"}]
`})
	d.start()

	ctx := newBrowser(t, chromium)
	wait := func(a ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		tctx, c := context.WithTimeout(ctx, 20*time.Second)
		defer c()
		require.NoError(t, chromedp.Do(tctx, a...))
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		require.NoError(t, err)
		return s
	}
	shot := func(name string) {
		if os.Getenv("UPDATE_SCREENSHOTS") != "1" {
			return
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join("..", "..", "docs", name), png, 0o644))
	}
	state := func(want string) chromedp.Action[chromedp.Void] {
		return chromedp.WaitVisible(`body[data-state="` + want + `"]`)
	}

	wait(chromedp.Navigate("http://"+webAddr+"/display/L1"), state("idle"))
	_, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.__loaded = "once"`))
	require.NoError(t, err)

	// The till's basket between payments; the charge then takes over.
	code, body := d.do("POST", "/v1/lanes/L1/display", map[string]any{"lines": []string{"Apples 2 × 3.50", "Total ¥7.00"}, "ttl": "1m"})
	require.Equal(t, 202, code, "%s", body)
	wait(state("lines"))
	assert.Contains(t, text("#detail"), "Apples 2 × 3.50")
	assert.Contains(t, text("#detail"), "Total ¥7.00")

	c := d.openCharge("L1", 1234)
	wait(state("awaiting_scan"))
	assert.Equal(t, "¥12.34", text("#amount"))
	assert.Equal(t, "请出示付款码", text("#zh"))
	assert.Contains(t, text("#en"), "payment code")
	shot("web-display-awaiting.png")

	d.scan(harness.AlipayCode(7))
	wait(state("paid"))
	assert.Equal(t, "支付成功，谢谢", text("#zh"))
	assert.Equal(t, "¥12.34", text("#amount"))
	assert.Equal(t, "paid", d.charge(c.ID, "").State)
	shot("web-display-paid.png")

	// posd restarts: the page reconnects by itself and shows the next charge.
	d.kill()
	d.start()
	d.openCharge("L1", 500)
	wait(state("awaiting_scan"))
	assert.Equal(t, "¥5.00", text("#amount"))
	loaded, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.__loaded`))
	require.NoError(t, err)
	assert.Equal(t, "once", loaded, "no reload: the same page lived through it all")
}
