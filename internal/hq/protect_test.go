package hq

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var takings = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("takings")) })

// Every path and method needs the token, as a bearer token or basic
// auth's password (any user); a name not the listener's is 421, another
// site's Origin 403.
func TestProtect(t *testing.T) {
	tok := strings.Repeat("s3cr3t", 4)
	h := Protect(takings, Access{Listen: "0.0.0.0:8322", Token: tok})
	do := func(method, path, host string, set func(*http.Request)) int {
		r := httptest.NewRequest(method, path, nil)
		r.Host = host
		if set != nil {
			set(r)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	ip := "10.1.2.3:8322"
	bearer := func(v string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", v) }
	}
	basic := func(u, p string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth(u, p) } }
	for _, c := range []struct {
		method, path string
		set          func(*http.Request)
	}{
		{"GET", "/", nil}, {"HEAD", "/", nil}, {"GET", "/metrics", nil}, {"GET", "/v1/totals/", nil},
		{"GET", "//v1/totals", nil}, {"OPTIONS", "/", nil},
		{"GET", "/", basic("admin", "")}, {"GET", "/", basic(tok, "")}, {"GET", "/", bearer("Bearer ")},
		{"GET", "/", bearer("Bearer " + tok[:len(tok)-1])},
	} {
		assert.Equal(t, 401, do(c.method, c.path, ip, c.set), "%s %s", c.method, c.path)
	}
	assert.Equal(t, 200, do("GET", "/", ip, bearer("Bearer "+tok)))
	assert.Equal(t, 200, do("GET", "/", ip, basic("", tok)))
	assert.Equal(t, 200, do("GET", "/", ip, basic("anyone", tok)))
	assert.Equal(t, 421, do("GET", "/", "evil.example", bearer("Bearer "+tok)), "DNS rebinding")
	assert.Equal(t, 421, do("GET", "/", "evil.example:8322", bearer("Bearer "+tok)), "DNS rebinding")
	assert.Equal(t, 403, do("GET", "/", ip, func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+tok)
		r.Header.Set("Origin", "http://evil.example")
	}), "cross-site")
}

// The names the view answers to: those of the listener as bound (its real
// port, when -listen asked for port 0) and those given (-hosts), with the
// listener's port unless they carry their own.
func TestProtectHostNames(t *testing.T) {
	tok := strings.Repeat("s3cr3t", 4)
	do := func(h http.Handler, host string) int {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = host
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	named := Protect(takings, Access{Listen: "0.0.0.0:8322", Hosts: []string{"posd-hq.corp.example", "HQ.example:443", ""}, Token: tok})
	assert.Equal(t, 200, do(named, "posd-hq.corp.example:8322"), "the head office's own DNS name, with the token")
	assert.Equal(t, 200, do(named, "hq.example:443"), "a name with its own port (a proxy's)")
	assert.Equal(t, 421, do(named, "posd-hq.corp.example:9999"))
	assert.Equal(t, 421, do(named, "other.example:8322"))
	assert.Equal(t, 200, do(named, "10.0.0.5:8322"), "an IP literal of a wildcard listener")
	bound := Protect(takings, Access{Listen: "127.0.0.1:41234"})
	assert.Equal(t, 200, do(bound, "127.0.0.1:41234"), "the port the listener got")
	assert.Equal(t, 200, do(bound, "localhost:41234"))
	assert.Equal(t, 421, do(bound, "evil.example:41234"), "DNS rebinding")
}

// Wrong tokens are answered one at a time, but a flood does not hold the
// server: requests whose clients gave up stop waiting, at most 16 wait at
// all, and a browser's first visit (no credentials yet) is not kept behind
// them.
func TestProtectThrottleLetsGo(t *testing.T) {
	tok := strings.Repeat("s3cr3t", 4)
	srv := httptest.NewUnstartedServer(nil)
	var active atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateActive:
			active.Add(1)
		case http.StateIdle, http.StateClosed, http.StateHijacked:
			// StateClosed after active; idle after active
		}
		if s == http.StateClosed || s == http.StateIdle {
			active.Add(-1)
		}
	}
	srv.Config.Handler = Protect(takings, Access{Listen: srv.Listener.Addr().String(), Token: tok})
	srv.Start()
	defer srv.Close() // waits for the queue to drain

	const n = 16
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 50 * time.Millisecond} // the attacker does not wait
			if resp, err := c.Get(srv.URL + "/"); err == nil {
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	time.Sleep(50 * time.Millisecond)
	t.Logf("after every attacker gave up: %d connections still held by the server", active.Load())
	assert.LessOrEqual(t, active.Load(), int64(1), "abandoned requests should not hold connections")

	get := func(auth string) (int, time.Duration) {
		r, _ := http.NewRequest("GET", srv.URL+"/", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		began := time.Now()
		resp, err := http.DefaultClient.Do(r)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode, time.Since(began)
	}
	code, took := get("Bearer " + tok)
	t.Logf("a right token (or a right guess) during the queue: %d in %v", code, took)
	code, took = get("")
	t.Logf("a browser's first visit (no credentials yet) behind %d abandoned requests: %d after %v", n, code, took)
	assert.Less(t, took, time.Second, "a legitimate first visit should not wait for an attacker's abandoned requests")
}

// Wrong tokens are answered one per 250 ms for all callers together,
// however many requests a guesser keeps in flight.
func TestProtectThrottlesParallelGuessers(t *testing.T) {
	tok := strings.Repeat("s3cr3t", 4)
	srv := httptest.NewUnstartedServer(nil)
	srv.Config.Handler = Protect(takings, Access{Listen: srv.Listener.Addr().String(), Token: tok})
	srv.Start()
	defer srv.Close()

	var answered atomic.Int64
	stop := time.Now().Add(time.Second)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			for time.Now().Before(stop) {
				r, _ := http.NewRequest("GET", srv.URL+"/", nil)
				r.Header.Set("Authorization", "Bearer guess-"+strings.Repeat("x", i))
				resp, err := c.Do(r)
				if err != nil {
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusUnauthorized {
					answered.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("wrong-token answers in 1 s with 40 parallel guessers: %d (the throttle's rate: 4/s)", answered.Load())
	assert.LessOrEqual(t, answered.Load(), int64(4+40), "wrong guesses are answered far faster than one per 250 ms")
}
