package httpguard

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
)

func check(g *Guard, method, host, origin string, hdr ...string) (*httptest.ResponseRecorder, bool) {
	r := httptest.NewRequest(method, "http://"+host+"/v1/lanes", nil)
	r.Host = host
	if origin != "" {
		r.Header.Set("Origin", origin)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	return w, g.Check(w, r)
}

// A till page of an allowed origin may call: its preflight is answered
// (Private Network Access too) and its answers carry CORS for it alone.
// Every other origin is refused as before, and the Host check stays.
func TestAllowedOriginsOnly(t *testing.T) {
	g := NewGuard("127.0.0.1:8321", false)
	g.AllowOrigins("https://till.example")
	const host = "127.0.0.1:8321"

	w, done := check(g, "OPTIONS", host, "https://till.example", "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization,content-type", "Access-Control-Request-Private-Network", "true")
	assert.True(t, done, "a preflight is answered by the guard, without a token")
	assert.Equal(t, http.StatusNoContent, w.Code)
	h := w.Header()
	assert.Equal(t, "https://till.example", h.Get("Access-Control-Allow-Origin"))
	assert.Contains(t, h.Values("Vary"), "Origin")
	assert.Contains(t, h.Get("Access-Control-Allow-Methods"), "POST")
	for _, name := range []string{"Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"} {
		assert.Contains(t, h.Get("Access-Control-Allow-Headers"), name)
	}
	assert.Equal(t, "true", h.Get("Access-Control-Allow-Private-Network"))

	w, done = check(g, "GET", host, "https://till.example")
	assert.False(t, done, "the request goes on to the token check and its route")
	assert.Equal(t, "https://till.example", w.Header().Get("Access-Control-Allow-Origin"))
	assert.Contains(t, w.Header().Get("Access-Control-Expose-Headers"), "Idempotent-Replayed")

	for _, o := range []string{"https://evil.example", "https://till.example:444", "http://till.example", "null"} {
		w, done = check(g, "OPTIONS", host, o, "Access-Control-Request-Method", "POST")
		assert.True(t, done, o)
		assert.Equal(t, http.StatusForbidden, w.Code, o)
		assert.Empty(t, w.Header().Get("Access-Control-Allow-Origin"), o)
	}
	w, _ = check(g, "GET", "evil.example:8321", "https://till.example")
	assert.Equal(t, http.StatusMisdirectedRequest, w.Code, "DNS rebinding is refused whatever the origin")

	plain := NewGuard("127.0.0.1:8321", false)
	w, _ = check(plain, "GET", host, "https://till.example")
	assert.Equal(t, http.StatusForbidden, w.Code, "without api.allowed_origins every other origin is refused")
}
