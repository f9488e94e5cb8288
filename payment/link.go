package payment

import (
	"context"
	"crypto/tls"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"time"
)

// link is what posd knows of the path to the gateway: up, or down since a
// connection could not be made. A store's internet link is its most common
// fault; knowing it before a scan lets the lane say "not charged" at once.
type link struct {
	cb       sync.Mutex // changes are told in the order they happen
	mu       sync.Mutex
	failed   int    // probes failed in a row
	down     string // why it is down; "" when up
	onChange func(up bool, reason string)
	lost     chan struct{} // wakes Watch when a call finds the link down
}

func (l *link) set(up bool, reason string) {
	l.cb.Lock()
	defer l.cb.Unlock()
	l.mu.Lock()
	was := l.down == ""
	if up {
		l.down = ""
	} else {
		l.down = reason
	}
	fn := l.onChange
	if !up && was {
		select {
		case l.lostCh() <- struct{}{}:
		default:
		}
	}
	l.mu.Unlock()
	if was != up && fn != nil {
		fn(up, reason)
	}
}

// lostCh is the channel that wakes Watch; l.mu is held.
func (l *link) lostCh() chan struct{} {
	if l.lost == nil {
		l.lost = make(chan struct{}, 1)
	}
	return l.lost
}

// OnLink sets the function told when the gateway becomes unreachable or
// reachable again. Set it before the client is used.
func (c *Client) OnLink(fn func(up bool, reason string)) {
	c.link.mu.Lock()
	c.link.onChange = fn
	c.link.mu.Unlock()
}

// LinkUp reports whether the gateway could be reached at the last try,
// and why not.
func (c *Client) LinkUp() (bool, string) {
	c.link.mu.Lock()
	defer c.link.mu.Unlock()
	return c.link.down == "", c.link.down
}

// Probe makes a connection to the gateway (TCP, and the TLS handshake for
// https) and closes it: never a payment call, never a signed request.
func (c *Client) Probe(ctx context.Context) error {
	// TCP and TLS each get the connect timeout, as a real call does.
	ctx, cancel := context.WithTimeout(ctx, 2*c.connectTimeout)
	defer cancel()
	var err error
	if c.probe != nil {
		err = c.probe(ctx)
	} else {
		err = c.handshake(ctx)
	}
	c.link.mu.Lock()
	if err != nil {
		c.link.failed++
	} else {
		c.link.failed = 0
	}
	// One lost probe on a slow link is not an outage; a failed call is.
	down := c.link.failed >= 2
	c.link.mu.Unlock()
	switch {
	case err == nil:
		c.link.set(true, "")
	case down:
		c.link.set(false, "gateway unreachable: "+err.Error())
	}
	return err
}

func (c *Client) handshake(ctx context.Context) error {
	conn, err := c.dialer.DialContext(ctx, "tcp", c.addr)
	if err == nil && c.tls != nil {
		tc := tls.Client(conn, c.tls)
		err = tc.HandshakeContext(ctx)
		conn = tc
	}
	if conn != nil {
		conn.Close()
	}
	return err
}

// Watch probes the gateway every interval while it is up, and every
// second (or interval, if shorter) while it is down, until ctx ends.
func (c *Client) Watch(ctx context.Context, interval time.Duration) {
	c.link.mu.Lock()
	lost := c.link.lostCh()
	c.link.mu.Unlock()
	for {
		_ = c.Probe(ctx)
		wait := interval
		if up, _ := c.LinkUp(); !up {
			wait = min(interval, time.Second)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-lost: // a call found it down: watch for its return now
			t.Stop()
		case <-t.C:
		}
	}
}

// sendTrace tells whether any of a request may have reached the gateway.
type sendTrace struct{ wrote atomic.Bool }

func (s *sendTrace) with(ctx context.Context) context.Context {
	mark := func() { s.wrote.Store(true) }
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		// The first header field is encoded only on a connection that is
		// up: from then on the gateway may have the request.
		WroteHeaderField: func(string, []string) { mark() },
		WroteHeaders:     mark,
		WroteRequest:     func(httptrace.WroteRequestInfo) { mark() },
	})
}

// notSent reports whether err left the request unsent: no byte of it was
// written, because no connection could be made (DNS, refused, connect
// timeout, TLS handshake). A request cut short by posd itself (ctx) is
// not counted: the caller knows why.
func (s *sendTrace) notSent(ctx context.Context, err error) bool {
	return err != nil && !s.wrote.Load() && ctx.Err() == nil
}
