package httpguard

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func guess(l *Lockout, client string) bool { // a wrong token, if let in
	done, ok := l.Try(client)
	if ok {
		done(true)
	}
	return ok
}

// Each client has its own budget of wrong tokens: one client out of
// guesses leaves another's untouched, and its budget comes back with time.
func TestLockoutIsPerClient(t *testing.T) {
	c := &fakeClock{t: time.Unix(1e9, 0)}
	l := NewLockout()
	l.Now = c.now
	for range 4 {
		assert.True(t, guess(l, "10.0.0.5"), "the burst")
	}
	assert.False(t, guess(l, "10.0.0.5"), "out of guesses")
	assert.True(t, guess(l, "10.0.0.6"), "another client")
	c.add(250 * time.Millisecond)
	assert.True(t, guess(l, "10.0.0.5"), "one more after the interval")
	assert.False(t, guess(l, "10.0.0.5"))
}

// A valid token gives its guess back: a till that sends hundreds never
// runs out, and its client stays quiet.
func TestLockoutValidTokenCostsNothing(t *testing.T) {
	c := &fakeClock{t: time.Unix(1e9, 0)}
	l := NewLockout()
	l.Now = c.now
	for range 1000 {
		done, ok := l.Try("uid:1000")
		assert.True(t, ok)
		done(false)
	}
	for range 4 {
		assert.True(t, guess(l, "uid:1000"))
	}
}

// Many clients together get no more than the global rate, except each
// one's first guesses after a quiet minute (a till that never guessed is
// never refused).
func TestLockoutBoundsAllClientsTogether(t *testing.T) {
	c := &fakeClock{t: time.Unix(1e9, 0)}
	l := NewLockout()
	l.Now = c.now
	clients := []string{}
	for i := range 50 {
		clients = append(clients, "10.0.1."+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	for _, cl := range clients {
		guess(l, cl) // first guesses: every client was quiet
	}
	// A second of guessing: at most 20 (the global budget is spent).
	let := 0
	for range 20 {
		c.add(50 * time.Millisecond)
		for _, cl := range clients {
			if guess(l, cl) {
				let++
			}
		}
	}
	assert.LessOrEqual(t, let, 20, "one a GlobalInterval in all")
	assert.Positive(t, let)
	done, ok := l.Try("10.0.9.9")
	assert.True(t, ok, "a client that never guessed is let in even now")
	done(false)
	c.add(2 * time.Minute)
	assert.True(t, guess(l, clients[0]), "quiet again")
}

// Quiet clients trying at once, the global budget spent, are let in one
// try each outside it, not a burst each: many addresses do not multiply
// the rate. A valid token gives the quiet back.
func TestLockoutQuietClientsGetOneTryEach(t *testing.T) {
	c := &fakeClock{t: time.Unix(1e9, 0)}
	l := NewLockout()
	l.Now = c.now
	for i := range l.GlobalBurst {
		done, ok := l.Try("10.0.0." + strconv.Itoa(i))
		require.True(t, ok)
		done(true)
	}
	let := 0
	for i := range 100 {
		for range l.Burst { // the whole burst at once, before any answer
			if _, ok := l.Try("10.0.2." + strconv.Itoa(i)); ok {
				let++
			}
		}
	}
	assert.Equal(t, 100, let, "one try a quiet client, the global budget spent")
	done, ok := l.Try("10.0.3.1")
	require.True(t, ok)
	done(false) // the till's token
	_, ok = l.Try("10.0.3.1")
	assert.True(t, ok, "the till is quiet still")
}

func TestClientOfGroupsIPv6ByPrefix(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "[2001:db8:1:2:aaaa::1]:5555"
	a := ClientOf(r)
	r.RemoteAddr = "[2001:db8:1:2:bbbb::9]:6666"
	assert.Equal(t, a, ClientOf(r), "one host, many addresses")
	r.RemoteAddr = "192.168.1.20:5555"
	assert.Equal(t, "192.168.1.20", ClientOf(r))
}

// A local client is its uid, on a unix socket and on loopback TCP alike.
func TestLocalClientIsItsUID(t *testing.T) {
	want := "uid:" + strconv.Itoa(os.Getuid())
	for _, network := range []string{"unix", "tcp4", "tcp6"} {
		addr := "127.0.0.1:0"
		switch network {
		case "unix":
			addr = filepath.Join(t.TempDir(), "s")
		case "tcp6":
			addr = "[::1]:0"
		}
		ln, err := net.Listen(network, addr)
		if err != nil {
			t.Logf("%s: %v", network, err)
			continue
		}
		got := make(chan string, 1)
		srv := &http.Server{ConnContext: ConnContext, Handler: http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got <- ClientOf(r) })}
		go func() { _ = srv.Serve(LimitListener(ln, 4)) }()
		cl := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, ln.Addr().Network(), ln.Addr().String())
		}}}
		resp, err := cl.Get("http://posd/")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, want, <-got, network)
		srv.Close()
	}
}
