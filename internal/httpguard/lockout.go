package httpguard

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Lockout bounds how fast wrong tokens are tried, per client and in all,
// without ever making a valid token wait. A request is compared with the
// token only if its client has a guess left (Try); one without is
// answered 429 at once, its token not compared, so that refusing it
// tells a guesser nothing and nobody waits holding a connection slot. A
// valid token gives its guess back; a connection that showed one is the
// till's and is never refused (a till keeps its connection: HTTP
// keep-alive), whatever others sharing its client do.
//
// A client is the peer's uid on a unix socket and on loopback TCP, the
// address elsewhere (an IPv6 /64: one host has many).
type Lockout struct {
	// Interval: one wrong token per Interval per client, after Burst.
	Interval time.Duration
	Burst    int
	// GlobalInterval: one per GlobalInterval for all clients together
	// (after GlobalBurst), for every client but one that has tried no
	// wrong token for Quiet: many clients cannot multiply the rate, and
	// a till that never guessed is never refused.
	GlobalInterval time.Duration
	GlobalBurst    int
	Quiet          time.Duration
	Now            func() time.Time // nil: time.Now

	mu      sync.Mutex
	clients map[string]*guesses
	global  time.Time // GCRA: when the budget is whole again
}

type guesses struct {
	full      time.Time // GCRA: when the client's budget is whole again
	lastWrong time.Time
}

// maxClients bounds the clients remembered; past it, clients never seen
// share the global budget only.
const maxClients = 4096

// NewLockout is posd's: 4 a second per client (a burst of 4), 20 a second
// in all, a client forgotten after a quiet minute.
func NewLockout() *Lockout {
	return &Lockout{Interval: 250 * time.Millisecond, Burst: 4, GlobalInterval: 50 * time.Millisecond, GlobalBurst: 20, Quiet: time.Minute}
}

func (l *Lockout) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// take spends one of a GCRA budget whose whole is burst×every, if one is
// left.
func take(full *time.Time, now time.Time, every time.Duration, burst int) bool {
	t := *full
	if t.Before(now) {
		t = now
	}
	if t.Sub(now) > time.Duration(burst-1)*every {
		return false
	}
	*full = t.Add(every)
	return true
}

// Try reserves a guess for client: ok false means none is left (answer
// 429, without comparing the token). Otherwise the caller compares and
// calls done: with wrong false the guess is given back.
func (l *Lockout) Try(client string) (done func(wrong bool), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if l.clients == nil {
		l.clients = map[string]*guesses{}
	}
	g := l.clients[client]
	if g == nil {
		if len(l.clients) >= maxClients {
			l.prune(now)
		}
		if len(l.clients) < maxClients {
			g = &guesses{}
			l.clients[client] = g
		}
	}
	quiet := g != nil && (g.lastWrong.IsZero() || now.Sub(g.lastWrong) > l.Quiet)
	if g != nil && !take(&g.full, now, l.Interval, l.Burst) {
		return nil, false
	}
	spent := take(&l.global, now, l.GlobalInterval, l.GlobalBurst)
	if !spent && !quiet {
		if g != nil {
			g.full = g.full.Add(-l.Interval)
		}
		return nil, false
	}
	// A quiet client's try outside the global budget counts as a wrong
	// one until it proves valid: its other tries meanwhile are not quiet,
	// so many clients at once cannot each add a burst to the global rate.
	var before time.Time
	exempt := !spent
	if exempt {
		before, g.lastWrong = g.lastWrong, now
	}
	return func(wrong bool) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if wrong {
			if g != nil {
				g.lastWrong = l.now()
			}
			return
		}
		if exempt {
			g.lastWrong = before
		}
		if g != nil {
			g.full = g.full.Add(-l.Interval)
		}
		if spent {
			l.global = l.global.Add(-l.GlobalInterval)
		}
	}, true
}

// prune forgets the clients whose budget is whole and who have been quiet.
func (l *Lockout) prune(now time.Time) {
	for k, g := range l.clients {
		if !g.full.After(now) && now.Sub(g.lastWrong) > l.Quiet {
			delete(l.clients, k)
		}
	}
}

// RetryAfter is the Retry-After of a 429, in whole seconds.
func (l *Lockout) RetryAfter() string {
	return strconv.Itoa(max(1, int((l.Interval+time.Second-1)/time.Second)))
}

// connInfo is what the API knows of a connection: its client, found once,
// and whether it has shown the token.
type connInfo struct {
	conn   net.Conn
	once   sync.Once
	client string
	authed atomic.Bool
}

type connKey struct{}

// ConnContext is http.Server's ConnContext for posd's listeners: it lets
// a request name its client (ClientOf) and its connection's standing.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, &connInfo{conn: c})
}

// Authed reports whether r's connection has shown the token.
func Authed(r *http.Request) bool {
	ci := connOf(r)
	return ci != nil && ci.authed.Load()
}

// MarkAuthed records that r's connection showed the token: its next
// requests cost no guess, and a full listener keeps it (KeepConn).
func MarkAuthed(r *http.Request) {
	if ci := connOf(r); ci != nil {
		ci.authed.Store(true)
		KeepConn(r)
	}
}

func connOf(r *http.Request) *connInfo {
	ci, _ := r.Context().Value(connKey{}).(*connInfo)
	return ci
}

// ClientOf names the request's client: "uid:N" for a local peer whose
// uid posd can read, the address (an IPv6 /64) otherwise.
func ClientOf(r *http.Request) string {
	if lc := limitConnOf(r); lc != nil {
		return lc.client
	}
	ci := connOf(r)
	if ci == nil {
		return addrClient(r.RemoteAddr)
	}
	ci.once.Do(func() { ci.client = connClient(ci.conn) })
	return ci.client
}

// connClient names a connection's client (ClientOf).
func connClient(c net.Conn) string {
	if uid, ok := peerUID(c); ok {
		return "uid:" + strconv.Itoa(uid)
	}
	if a := c.RemoteAddr(); a != nil && a.Network() != "unix" {
		return addrClient(a.String())
	}
	return "local"
}

func addrClient(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return "local" // a unix socket's peer has no address
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip4 := ip.To4(); ip4 != nil {
		return ip4.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// netConn unwraps TLS and the connection cap down to the socket.
func netConn(c net.Conn) net.Conn {
	for {
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return c
		}
		c = u.NetConn()
	}
}
