package display

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"example.com/posd/internal/httpguard"
)

//go:embed web/index.html
var page []byte

// CustomerView is what the web display's stream carries: what the customer
// may see, and nothing else (no order ids, no codes).
type CustomerView struct {
	Lane     string `json:"lane"`
	Kind     Kind   `json:"kind"`
	TotalFee int64  `json:"total_fee,omitempty"`
	Wallet   string `json:"wallet,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Sandbox  bool   `json:"sandbox,omitempty"`
	// Charge: the event is about a charge the till opened (not the idle
	// screen of a fixed-fee lane), so it replaces a result at once.
	Charge bool `json:"charge,omitempty"`
	// Lines: the till's lines between payments.
	Lines []string `json:"lines,omitempty"`
}

func customerView(e Event) any {
	v := CustomerView{Lane: e.Lane, Kind: e.Kind, TotalFee: e.TotalFee, Wallet: e.Wallet, Sandbox: e.Sandbox, Charge: e.ChargeID != ""}
	if e.Kind == Lines {
		v.Lines = e.Text
	}
	if e.Kind == Declined || e.Kind == Rejected || e.Kind == Offline || e.Kind == Canceled {
		v.Reason = shortReason(e.Reason, "")
	}
	return v
}

func fullView(e Event) any { return e }

// Web serves the customer display page and the event streams.
type Web struct {
	Hub   *Hub
	Lanes map[string]bool // lanes with a web display
	// KeepAlive is the interval of SSE comments that keep proxies and
	// browsers from timing the stream out.
	KeepAlive time.Duration
	// MaxStreams bounds the open streams of each route and lane (a lane's
	// customer page, the till's stream), and a client may hold half of
	// them. One more is refused (429) and no open stream is ever closed
	// for it: otherwise any process that reaches the port, without a
	// token, could close the real display's stream again and again. 0: 16.
	MaxStreams int
	// Client names a request's client (nil: its remote address).
	Client func(*http.Request) string
	// Admitted, when set, is told of each stream the caps admit (its
	// connection is then one a full listener keeps).
	Admitted func(*http.Request)

	mu      sync.Mutex
	streams map[string][]*slot // open streams by route and lane
}

type slot struct{ client string }

// enter admits a stream under key, unless the key or the client's share
// of it is full; leave ends it.
func (w *Web) enter(r *http.Request, key string) (leave func(), ok bool) {
	client := r.RemoteAddr
	if host, _, err := net.SplitHostPort(client); err == nil {
		client = host
	}
	if w.Client != nil {
		client = w.Client(r)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	limit := w.MaxStreams
	if limit <= 0 {
		limit = 16
	}
	if w.streams == nil {
		w.streams = map[string][]*slot{}
	}
	mine := 0
	for _, sl := range w.streams[key] {
		if sl.client == client {
			mine++
		}
	}
	if len(w.streams[key]) >= limit || mine >= max(1, limit/2) {
		return nil, false
	}
	sl := &slot{client: client}
	w.streams[key] = append(w.streams[key], sl)
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if i := slices.Index(w.streams[key], sl); i >= 0 {
			w.streams[key] = slices.Delete(w.streams[key], i, i+1)
		}
	}, true
}

// Page serves GET /display/{lane}.
func (w *Web) Page(rw http.ResponseWriter, r *http.Request) {
	if !w.Lanes[r.PathValue("lane")] {
		httpguard.Refuse(rw, http.StatusNotFound, "no lane "+strconv.Quote(r.PathValue("lane")), httpguard.KindNotFound)
		return
	}
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	rw.Header().Set("Cache-Control", "no-store")
	_, _ = rw.Write(page)
}

// CustomerEvents serves GET /display/{lane}/events: read-only, customer view.
func (w *Web) CustomerEvents(rw http.ResponseWriter, r *http.Request) {
	lane := r.PathValue("lane")
	if !w.Lanes[lane] {
		httpguard.Refuse(rw, http.StatusNotFound, "no lane "+strconv.Quote(r.PathValue("lane")), httpguard.KindNotFound)
		return
	}
	w.stream(rw, r, lane, customerView, true)
}

// Events serves GET /v1/events[?lane=L1]: every event, for the till.
// A till that reconnects sends the last event id it saw (Last-Event-ID,
// as browsers do, or ?last_event_id=): it gets every event since that the
// hub still holds.
func (w *Web) Events(rw http.ResponseWriter, r *http.Request) {
	w.stream(rw, r, r.URL.Query().Get("lane"), fullView, false)
}

func (w *Web) stream(rw http.ResponseWriter, r *http.Request, lane string, view func(Event) any, idleFirst bool) {
	fl, ok := rw.(http.Flusher)
	if !ok {
		httpguard.Refuse(rw, http.StatusInternalServerError, "this connection cannot stream events", httpguard.KindInternal)
		return
	}
	key := "till/" + lane
	if idleFirst {
		key = "customer/" + lane
	}
	leave, ok := w.enter(r, key)
	if !ok {
		rw.Header().Set("Connection", "close")
		rw.Header().Set("Retry-After", "3")
		httpguard.Refuse(rw, http.StatusTooManyRequests, "too many event streams: try again later", httpguard.KindTooManyRequests)
		return
	}
	defer leave()
	if w.Admitted != nil {
		w.Admitted(r)
	}
	ctx := r.Context()
	// A stream outlives the server's timeouts; each write gets its own
	// deadline instead, so a reader that stalls is dropped.
	rc := http.NewResponseController(rw)
	_ = rc.SetReadDeadline(time.Time{})
	deadline := func() { _ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second)) }
	deadline()
	var s *Sub
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("last_event_id")
	}
	if last != "" && !idleFirst {
		var whole bool
		if s, whole = w.Hub.SubscribeSince(lane, 16, last); !whole {
			rw.Header().Set("X-Events-Missed", "true") // a restart or a long absence: the lanes' state follows
		}
	} else {
		s = w.Hub.Subscribe(lane, 16)
	}
	defer w.Hub.Unsubscribe(s)
	h := rw.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	// retry: the page reconnects within a second when posd restarts.
	fmt.Fprint(rw, "retry: 1000\n\n")
	if _, seen := w.Hub.Last(lane); idleFirst && !seen {
		writeEvent(rw, view(Event{Lane: lane, Kind: Idle}))
	}
	fl.Flush()
	ka := w.KeepAlive
	if ka <= 0 {
		ka = 15 * time.Second
	}
	t := time.NewTicker(ka)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-s.C():
			if !e.ForCustomer() && idleFirst {
				continue // nothing for the customer
			}
			deadline()
			if !idleFirst {
				// The kind as the event's type: a till listens to the
				// kinds it handles (EventSource.addEventListener).
				fmt.Fprintf(rw, "id: %s\nevent: %s\n", w.Hub.ID(e), e.Kind)
			}
			writeEvent(rw, view(e))
			fl.Flush()
		case <-t.C:
			deadline()
			fmt.Fprint(rw, ": keep-alive\n\n")
			fl.Flush()
		}
	}
}

func writeEvent(rw http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(rw, "data: %s\n\n", b)
}
