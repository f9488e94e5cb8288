package api

import (
	"context"
	"mime"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
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
}

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
		writeJSON(w, http.StatusMisdirectedRequest, apiError{Error: "Host " + r.Host + " is not this listener", Kind: "forbidden"})
		return true
	}
	if o := r.Header.Get("Origin"); o != "" && (g.hosts == nil || o != g.scheme+"://"+r.Host) {
		w.Header().Set("Connection", "close")
		writeJSON(w, http.StatusForbidden, apiError{Error: "cross-origin requests are refused", Kind: "forbidden"})
		return true
	}
	if changesState(r) {
		ct := r.Header.Get("Content-Type")
		mt, _, err := mime.ParseMediaType(ct)
		if (ct != "" || r.Method != http.MethodDelete) && (err != nil || mt != "application/json") {
			w.Header().Set("Connection", "close")
			writeJSON(w, http.StatusUnsupportedMediaType, apiError{Error: "Content-Type must be application/json", Kind: "invalid"})
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

func changesState(r *http.Request) bool {
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

// LimitListener accepts at most n connections at once; one more is
// answered 503 and closed, so memory stays bounded whatever connects.
func LimitListener(l net.Listener, n int) net.Listener {
	return &limitListener{Listener: l, sem: make(chan struct{}, n)}
}

type limitListener struct {
	net.Listener
	sem chan struct{}
}

var busy = func() []byte {
	body := `{"error":"too many connections: try again","kind":"busy"}` + "\n"
	return []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.sem <- struct{}{}:
			return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
		default:
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.Write(busy)
			c.Close()
		}
	}
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// NetConn is the connection under the cap (to ask the kernel about its
// peer).
func (c *limitConn) NetConn() net.Conn { return c.Conn }

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
