package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/test/harness"
)

// The API on a loopback TCP port, as the default config has it, with a
// browser on the box: a web page must not move money or read the API.
func TestBrowserCannotDriveTheAPIOverTCP(t *testing.T) {
	t.Parallel()
	g := startSandbox(t)
	d := newDaemon(t, g, opts{})
	addr := harness.FreePort(t)
	token := strings.Repeat("k", 40)
	tokenFile := filepath.Join(d.dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(token), 0o600))
	cfg := strings.Replace(harness.ReadFile(t, d.cfg), "listen: unix:"+d.sock, "listen: "+addr+"\n  max_streams: 2\n  token_file: "+tokenFile, 1)
	require.NoError(t, os.WriteFile(d.cfg, []byte(cfg), 0o600))
	d.http = tcpClient(addr)
	base := "http://" + addr
	req := func(method, path, body string, hdr ...string) (int, string) {
		t.Helper()
		r, err := http.NewRequest(method, base+path, strings.NewReader(body))
		require.NoError(t, err)
		r.Header.Set("Authorization", "Bearer "+token) // the till; an attack page has none
		for i := 0; i+1 < len(hdr); i += 2 {
			if hdr[i] == "Authorization" && hdr[i+1] == "" {
				r.Header.Del("Authorization")
				continue
			}
			if hdr[i] == "Host" {
				r.Host = hdr[i+1]
				continue
			}
			r.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := d.http.Do(r)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	d.start()

	code, body := req("POST", "/v1/charges", `{"lane":"L1","total_fee":1651,"subject":"s","body":"b"}`, "Content-Type", "application/json")
	require.Equal(t, 201, code, body)
	var c harness.ChargeJSON
	require.NoError(t, json.Unmarshal([]byte(body), &c))
	assert.Regexp(t, regexp.MustCompile(`^CH[A-Z2-7]{20}$`), c.ID, "a charge id is random, not the epoch and a counter")
	d.scan(harness.AlipayCode(17))
	harness.WaitFor(t, 10*time.Second, func() bool {
		_, b := req("GET", "/v1/charges/"+c.ID, "")
		return strings.Contains(b, `"state":"paid"`)
	}, "paid")

	// The request: a page's "simple" cross-origin POST.
	code, body = req("POST", "/v1/charges/"+c.ID+"/refund", "", "Origin", "http://evil.example", "Content-Type", "text/plain", "Authorization", "")
	assert.Equal(t, 403, code, body)
	code, _ = req("POST", "/v1/charges/"+c.ID+"/refund", "", "Content-Type", "text/plain", "Authorization", "")
	assert.Equal(t, 415, code)
	code, _ = req("GET", "/v1/charges/"+c.ID, "", "Host", "evil.example", "Authorization", "")
	assert.Equal(t, 421, code, "DNS rebinding")
	code, body = req("POST", "/v1/charges/"+c.ID+"/refund", "", "Content-Type", "application/json", "Authorization", "")
	assert.Equal(t, 401, code, "no token: money does not move: %s", body)
	_, body = req("GET", "/v1/charges/"+c.ID, "")
	assert.Contains(t, body, `"state":"paid"`, "still paid")

	// Event streams are capped per route.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream := func() int {
		r, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		cl := *d.http
		cl.Timeout = 0
		resp, err := cl.Do(r)
		require.NoError(t, err)
		if resp.StatusCode != 200 {
			resp.Body.Close()
		}
		return resp.StatusCode
	}
	assert.Equal(t, 200, stream())
	assert.Equal(t, 429, stream(), "api.max_streams: 2: a client holds at most one; the open stream is not closed for the newest")
}

// A token shorter than 32 bytes is refused.
func TestShortTokenRefused(t *testing.T) {
	t.Parallel()
	g := startSandbox(t)
	d := newDaemon(t, g, opts{})
	token := filepath.Join(d.dir, "token")
	require.NoError(t, os.WriteFile(token, []byte("short-token\n"), 0o600))
	cfg := strings.Replace(harness.ReadFile(t, d.cfg), "api:\n", "api:\n  token_file: "+token+"\n", 1)
	require.NoError(t, os.WriteFile(d.cfg, []byte(cfg), 0o600))
	out, err := runPosd("check-config", "-config", d.cfg)
	require.Error(t, err)
	assert.Contains(t, out, "at least 32")
}
