package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"example.com/posd/internal/api"
	"example.com/posd/internal/config"
	"example.com/posd/internal/daemon"
	"example.com/posd/test/harness"
)

// newServer is posd's API over a whole daemon (daemon.Open, the embedded
// sandbox gateway, a journal of its own), as posd serves it, unguarded.
func newServer(t testing.TB) *api.Server {
	return newServerWith(t, `
  - {id: L1, device_info: POS01, max_fee: 1000000}
  - {id: K1, device_info: K1, fixed_fee: 5, subject: s, body: b}
`)
}

// newServerWith is newServer with lanes (YAML) of the test's own.
func newServerWith(t testing.TB, lanes string) *api.Server {
	dir := t.TempDir()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
gateway: {url: sandbox}
merchant: {store_id: S001}
journal: {path: %s}
api: {listen: "unix:%s"}
lanes:%s`, filepath.Join(dir, "journal.db"), filepath.Join(dir, "api.sock"), lanes)))
	require.NoError(t, err)
	d, err := daemon.Open(cfg, zap.NewNop(), daemon.IO{})
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	require.NoError(t, d.Start())
	srv, err := d.APIServer(api.Protection{})
	require.NoError(t, err)
	return srv
}

// FuzzAPIBodies: whatever a client sends, the API answers with JSON and a
// 2xx or 4xx status, never a 5xx or a crash.
func FuzzAPIBodies(f *testing.F) {
	for _, s := range []string{
		`{"lane":"L1","total_fee":1234,"subject":"s","body":"b"}`,
		`{"lane":"L1","total_fee":-1}`, `{"lane":"K1","total_fee":1e99}`, `{"lane":"L1","total_fee":"12"}`,
		`{"auth_code":"282941234567890123"}`, `{"auth_code":"282941234567890123","scene":"wave_code"}`,
		`{"auth_code":12}`, `[]`, `null`, ``, `{"lane":"L1","total_fee":1,"x":1}`,
	} {
		f.Add("/v1/charges", s)
		f.Add("/v1/lanes/L1/scans", s)
		f.Add("/v1/lanes/K1/scans", s)
	}
	h := newServer(f)
	f.Fuzz(func(t *testing.T, path, body string) {
		if path != "/v1/charges" && path != "/v1/lanes/L1/scans" && path != "/v1/lanes/K1/scans" {
			return
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", path, bytes.NewBufferString(body))
		h.ServeHTTP(rec, req)
		if err := harness.CheckExchange(harness.Exchange{Method: "POST", Path: path, Header: req.Header, Body: []byte(body),
			Status: rec.Code, RespHeader: rec.Header(), RespBody: rec.Body.Bytes()}); err != nil {
			t.Fatal(err) // whatever a client sends, the answer is one the document describes
		}
		if rec.Code >= 500 {
			t.Fatalf("%s %q: %d %s", path, body, rec.Code, rec.Body)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %q: not JSON: %s", path, body, rec.Body)
		}
		if path == "/v1/charges" && rec.Code == http.StatusCreated {
			var c struct{ ID string }
			_ = json.Unmarshal(rec.Body.Bytes(), &c)
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("DELETE", "/v1/charges/"+c.ID, nil))
		}
	})
}
