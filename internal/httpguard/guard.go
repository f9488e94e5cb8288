package httpguard

import (
	"container/list"
	"context"
	"mime"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Guard keeps browsers out: the POS box runs one (the web customer
// display), and any page it opens could otherwise drive the API with
// "simple" cross-origin requests, or read it through DNS rebinding.
//   - Host must name the listener (or localhost): anything else is 421.
//   - A request with an Origin that is not the listener's own is 403.
//   - A request that changes state must say Content-Type: application/json
//     (a browser cannot send that cross-origin without a preflight, and
//     posd answers no preflight): otherwise 415.
//
// No CORS header is ever sent.
type Guard struct {
	hosts  map[string]bool // allowed Host values; nil: any (a unix socket)
	anyIP  bool            // a wildcard listener: any IP literal is a name of it
	scheme string
	port   string
	// origins are the pages of other origins allowed to call (CORS): a
	// till that runs in a browser.
	origins map[string]bool
}

// AllowOrigins lets pages of these exact origins ("https://till.example",
// "http://localhost:5173") call the API from a browser: CORS for them
// alone, their preflights answered (Private Network Access too). The token
// is still required, and the Host check stays.
func (g *Guard) AllowOrigins(origins ...string) {
	if len(origins) == 0 {
		return
	}
	if g.origins == nil {
		g.origins = map[string]bool{}
	}
	for _, o := range origins {
		g.origins[o] = true
	}
}

// The headers a till sends and reads across origins.
const (
	corsMethods = "GET, POST, DELETE"
	corsHeaders = "Authorization, Content-Type, Idempotency-Key, Last-Event-ID"
	corsExpose  = "Idempotent-Replayed, Retry-After, X-Events-Missed, Allow"
)

// NewGuard guards a listener at addr ("host:port" or "unix:/path").
func NewGuard(addr string, tls bool) *Guard {
	g := &Guard{scheme: "http"}
	if tls {
		g.scheme = "https"
	}
	if strings.HasPrefix(addr, "unix:") {
		return g // no browser reaches a unix socket; a local proxy must not forward Origin
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return g
	}
	g.hosts, g.port = map[string]bool{}, port
	for _, h := range []string{host, "localhost", "127.0.0.1", "::1"} {
		g.hosts[net.JoinHostPort(h, port)] = true
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		g.anyIP = true
		if name, err := os.Hostname(); err == nil {
			g.hosts[net.JoinHostPort(name, port)] = true
		}
	}
	if port == "80" && !tls || port == "443" && tls {
		for h := range g.hosts {
			name, _, _ := net.SplitHostPort(h)
			g.hosts[name] = true
		}
	}
	return g
}

// Allow adds names the listener is reached by (its DNS names), with the
// listener's port unless a name has its own.
func (g *Guard) Allow(names ...string) {
	if g.hosts == nil {
		return // any name already
	}
	for _, n := range names {
		n = strings.ToLower(strings.TrimSpace(n))
		if n == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(n); err != nil {
			n = net.JoinHostPort(n, g.port)
		}
		g.hosts[n] = true
	}
}

func (g *Guard) hostOK(host string) bool {
	if g.hosts == nil || g.hosts[strings.ToLower(host)] {
		return true
	}
	if g.anyIP {
		name, _, err := net.SplitHostPort(host)
		if err != nil {
			name = host
		}
		return net.ParseIP(strings.Trim(name, "[]")) != nil
	}
	return false
}

// Check answers for a request the guard refuses and reports whether it
// did. A refused client is closed: it keeps no connection slot.
func (g *Guard) Check(w http.ResponseWriter, r *http.Request) bool {
	if !g.hostOK(r.Host) {
		w.Header().Set("Connection", "close")
		Refuse(w, http.StatusMisdirectedRequest, "Host "+r.Host+" is not this listener", KindMisdirected)
		return true
	}
	if o := r.Header.Get("Origin"); o != "" && (g.hosts == nil || o != g.scheme+"://"+r.Host) {
		if g.hosts == nil || !g.origins[o] {
			w.Header().Set("Connection", "close")
			Refuse(w, http.StatusForbidden, "cross-origin requests are refused (api.allowed_origins lists the tills' origins)", KindForbidden)
			return true
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", o)
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Expose-Headers", corsExpose)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", corsMethods)
			h.Set("Access-Control-Allow-Headers", corsHeaders)
			h.Set("Access-Control-Max-Age", "600")
			if r.Header.Get("Access-Control-Request-Private-Network") == "true" {
				h.Set("Access-Control-Allow-Private-Network", "true")
			}
			w.WriteHeader(http.StatusNoContent)
			return true
		}
	}
	if ChangesState(r) {
		ct := r.Header.Get("Content-Type")
		mt, _, err := mime.ParseMediaType(ct)
		if (ct != "" || r.Method != http.MethodDelete) && (err != nil || mt != "application/json") {
			w.Header().Set("Connection", "close")
			Refuse(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json", KindUnsupportedMediaType)
			return true
		}
	}
	return false
}

// Wrap guards h.
func (g *Guard) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.Check(w, r) {
			h.ServeHTTP(w, r)
		}
	})
}

// IsLoopback reports whether host (a name or an IP literal) is this
// machine only: a listener there is reached by no other machine.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// Refuse answers a request refused before any handler, in the API's
// error shape ({"error": …, "kind": …}).
func Refuse(w http.ResponseWriter, code int, msg, kind string) {
	WriteError(w, code, Error{Error: msg, Kind: kind})
}

// ChangesState reports whether r is a method that changes state.
func ChangesState(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// Throttle slows down wrong tokens: one answer per Interval, for all
// callers together, however many connections they use (each waits its
// turn: how many can wait is the listener's connection limit), so that
// guessing is slow and a flood of them logs a few lines a second. One
// whose client has gone stops waiting.
type Throttle struct {
	Interval time.Duration
	once     sync.Once
	turn     chan struct{}
}

// Wait takes the caller's turn.
func (t *Throttle) Wait(ctx context.Context) {
	t.once.Do(func() { t.turn = make(chan struct{}, 1) })
	select {
	case t.turn <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-t.turn }()
	timer := time.NewTimer(t.Interval)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}

// LimitListener holds at most n connections at once, so memory stays
// bounded whatever connects. One more makes room by closing a connection
// of the client that holds the most (its refused one first, then its
// oldest) among those not kept (Keep: it showed the token, or carries an
// admitted event stream): clients flooding the port, under however many
// connections, cannot keep a till's new connection out (a till that opens
// one per request, as curl does). A client is a local uid or a remote
// address (ClientOf); a process running as the till's own user is the
// till's, and can read its token anyway. Only when every connection is
// kept is the new one answered 503 and closed.
func LimitListener(l net.Listener, n int) net.Listener {
	return &limitListener{Listener: l, max: n}
}

type limitListener struct {
	net.Listener
	max   int
	mu    sync.Mutex
	conns list.List // *limitConn, oldest first
}

var busy = func() []byte {
	body := `{"error":"too many connections: try again","kind":"too_many_requests"}` + "\n"
	return []byte("HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json; charset=utf-8\r\nRetry-After: 1\r\nConnection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		lc := &limitConn{Conn: c, l: l, client: connClient(c)}
		victim, ok := l.admit(lc)
		if victim != nil {
			_ = victim.Conn.Close() // its server sees the end and closes it
		}
		if ok {
			return lc, nil
		}
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.Write(busy)
		c.Close()
	}
}

// admit makes room for c, choosing the connection to close.
func (l *limitListener) admit(c *limitConn) (victim *limitConn, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conns.Len() >= l.max {
		e := l.victim()
		if e == nil {
			return nil, false
		}
		victim = l.conns.Remove(e).(*limitConn)
		victim.elem = nil
	}
	c.elem = l.conns.PushBack(c)
	return victim, true
}

// victim is the connection to close for room: of the client holding the
// most that are not kept, its refused one, or else its oldest.
func (l *limitListener) victim() *list.Element {
	held := map[string]int{}
	top := ""
	for e := l.conns.Front(); e != nil; e = e.Next() {
		if v := e.Value.(*limitConn); !v.kept.Load() {
			held[v.client]++
			if held[v.client] > held[top] {
				top = v.client
			}
		}
	}
	var oldest *list.Element
	for e := l.conns.Front(); e != nil; e = e.Next() {
		v := e.Value.(*limitConn)
		if v.client != top || v.kept.Load() {
			continue
		}
		if v.refused.Load() {
			return e
		}
		if oldest == nil {
			oldest = e
		}
	}
	return oldest
}

type limitConn struct {
	net.Conn
	client string // ClientOf, found once
	l      *limitListener
	elem   *list.Element // nil once out of the listener's list
	kept   atomic.Bool
	// refused: its request was refused and it is closing; the first to
	// go for room.
	refused atomic.Bool
}

// Keep marks the connection as one not closed to make room.
func (c *limitConn) Keep() { c.kept.Store(true) }

// Refuse marks the connection as the first to close to make room.
func (c *limitConn) Refuse() { c.refused.Store(true) }

// NetConn is the connection under the cap (to ask the kernel about its
// peer).
func (c *limitConn) NetConn() net.Conn { return c.Conn }

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.l.mu.Lock()
	if c.elem != nil {
		c.l.conns.Remove(c.elem)
		c.elem = nil
	}
	c.l.mu.Unlock()
	return err
}

// KeepConn marks the connection of r as one a full listener does not close
// to make room (LimitListener): its client showed the token, or it
// carries an event stream the stream caps admitted.
func KeepConn(r *http.Request) {
	if c := limitConnOf(r); c != nil {
		c.Keep()
	}
}

// RefuseConn marks the connection of r, whose request was refused and
// which closes, as the first a full listener closes to make room.
func RefuseConn(r *http.Request) {
	if c := limitConnOf(r); c != nil {
		c.Refuse()
	}
}

func limitConnOf(r *http.Request) *limitConn {
	ci := connOf(r)
	if ci == nil {
		return nil
	}
	c := ci.conn
	for c != nil {
		if lc, ok := c.(*limitConn); ok {
			return lc
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
	return nil
}
