package api_test

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/display"
	"example.com/posd/internal/api"
	"example.com/posd/test/harness"
)

func guarded(t *testing.T, p api.Protection, token string) *api.Server {
	t.Helper()
	s := newServer(t)
	api.SetSlowInterval(s, time.Millisecond)
	if token != "" {
		s.RequireToken(token)
	}
	s.Protect(p)
	return s
}

func send(s http.Handler, method, host, path, body string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "http://"+host+path, strings.NewReader(body))
	r.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	harness.Hold(harness.Exchange{Method: method, Path: path, Header: r.Header, Body: []byte(body),
		Status: w.Code, RespHeader: w.Header(), RespBody: w.Body.Bytes()})
	return w
}

// A page in the box's browser can send "simple" cross-origin POSTs and,
// through DNS rebinding, read answers: the guard refuses both.
func TestBrowsersCannotDriveTheAPI(t *testing.T) {
	s := guarded(t, api.Protection{Listen: "127.0.0.1:8321", MoneyNeedsToken: true}, "")
	const own = "127.0.0.1:8321"
	open := `{"lane":"L1","total_fee":100,"subject":"s","body":"b"}`

	w := send(s, "POST", own, "/v1/charges", open, "Content-Type", "text/plain", "Origin", "http://evil.example")
	assert.Equal(t, http.StatusForbidden, w.Code, "a foreign Origin")
	w = send(s, "POST", own, "/v1/charges", open, "Content-Type", "text/plain")
	assert.Equal(t, http.StatusUnsupportedMediaType, w.Code, "text/plain: a simple request a browser sends without a preflight")
	w = send(s, "POST", own, "/v1/charges", open)
	assert.Equal(t, http.StatusUnsupportedMediaType, w.Code, "no Content-Type")
	w = send(s, "GET", "evil.example", "/v1/lanes", "")
	assert.Equal(t, http.StatusMisdirectedRequest, w.Code, "DNS rebinding: another name for the box")
	w = send(s, "GET", "evil.example:8321", "/healthz", "")
	assert.Equal(t, http.StatusMisdirectedRequest, w.Code)

	w = send(s, "POST", own, "/v1/charges", open, "Content-Type", "application/json; charset=utf-8", "Origin", "http://"+own)
	assert.Equal(t, http.StatusForbidden, w.Code, "any local process could cancel a charge and open a dearer one: %s", w.Body)
	assert.Contains(t, w.Body.String(), "api.token_file")
	withToken := guarded(t, api.Protection{Listen: own, MoneyNeedsToken: true}, strings.Repeat("t", 32))
	w = send(withToken, "POST", own, "/v1/charges", open, "Content-Type", "application/json; charset=utf-8", "Origin", "http://"+own,
		"Authorization", "Bearer "+strings.Repeat("t", 32))
	assert.Equal(t, http.StatusCreated, w.Code, "same origin, JSON, the token: %s", w.Body)
	w = send(s, "GET", "localhost:8321", "/v1/lanes", "")
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Empty(t, w.Header().Get("Access-Control-Allow-Origin"), "no CORS headers")

	w = send(s, "POST", own, "/v1/charges/CHX/refund", "", "Content-Type", "application/json")
	assert.Equal(t, http.StatusForbidden, w.Code, "money moves only with a token on TCP: %s", w.Body)
	assert.Contains(t, w.Body.String(), "api.token_file")
	w = send(s, "POST", own, "/v1/orders/X/resolve", "{}", "Content-Type", "application/json")
	assert.Equal(t, http.StatusForbidden, w.Code)

	allowed := guarded(t, api.Protection{Listen: own}, "")
	w = send(allowed, "POST", own, "/v1/charges/CHX/refund", "", "Content-Type", "application/json")
	assert.Equal(t, http.StatusNotFound, w.Code, "api.allow_money_without_token: the route runs")
}

func TestTokenOnARemoteListener(t *testing.T) {
	tok := strings.Repeat("t", 32)
	s := guarded(t, api.Protection{Listen: "0.0.0.0:8321", TLS: true, Remote: true}, tok)
	w := send(s, "GET", "192.168.1.20:8321", "/metrics", "")
	assert.Equal(t, http.StatusUnauthorized, w.Code, "/metrics needs the token on a LAN listener")
	w = send(s, "GET", "192.168.1.20:8321", "/healthz", "")
	assert.Equal(t, http.StatusOK, w.Code)
	w = send(s, "GET", "pos-box.evil.example:8321", "/healthz", "")
	assert.Equal(t, http.StatusMisdirectedRequest, w.Code, "a name that is not the box's")
	w = send(s, "GET", "192.168.1.20:8321", "/v1/lanes", "", "Authorization", "Bearer "+tok)
	assert.Equal(t, http.StatusOK, w.Code)
}

// A stream past the cap is refused; no open stream is closed for it, so a
// client without a token cannot close the real display's.
func TestEventStreamCapRefusesTheNewest(t *testing.T) {
	w := &display.Web{Hub: display.NewHub(), Lanes: map[string]bool{"L1": true}, MaxStreams: 4}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/events", w.Events)
	mux.HandleFunc("GET /display/{lane}/events", w.CustomerEvents)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	open := func(path string) *http.Response {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		return resp
	}
	first := open("/display/L1/events")
	defer first.Body.Close()
	require.Equal(t, http.StatusOK, first.StatusCode)
	second := open("/display/L1/events")
	defer second.Body.Close()
	require.Equal(t, http.StatusOK, second.StatusCode)
	third := open("/display/L1/events")
	third.Body.Close()
	assert.Equal(t, http.StatusTooManyRequests, third.StatusCode, "one client holds at most half of a lane's streams")
	till := open("/v1/events") // another route: its own cap
	defer till.Body.Close()
	assert.Equal(t, http.StatusOK, till.StatusCode)

	w.Hub.Publish(display.Event{Lane: "L1", Kind: display.Paying, TotalFee: 100, ChargeID: "C1"})
	r := bufio.NewReader(first.Body)
	for {
		line, err := r.ReadString('\n')
		require.NoError(t, err, "the first stream is still open")
		if strings.Contains(line, `"kind":"paying"`) {
			break
		}
	}
}
