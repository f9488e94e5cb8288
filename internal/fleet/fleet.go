package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"example.com/posd/internal/config"
	"example.com/posd/internal/ctxtime"
	"example.com/posd/internal/failpoint"
	"example.com/posd/internal/fleet/wire"
	"example.com/posd/internal/journal"
)

// Options configure a Publisher.
type Options struct {
	URL      string      // nats:// or tls://, comma-separated
	Auth     nats.Option // the credentials (natsauth.Option; nil: none)
	Prefix   string      // the subjects' first token
	Merchant string
	Store    string
	// Box names this box in its store's NATS config: the stream's acks
	// come to _INBOX_<box>, an inbox prefix no other box may hear.
	Box string
	// IDKey keys the message ids (MsgID): a box that cannot compute
	// another's ids cannot publish one first and have the stream drop the
	// real record as its copy. The box's credentials serve (IDKey); nil:
	// plain ids (a broker without credentials has no boundaries).
	IDKey   []byte
	Journal *journal.Journal
	Log     *zap.Logger
	// Batch is how many outbox entries are published before their removal
	// is committed (0: 256).
	Batch int
	// Poll is how often the outbox is read when nothing wakes the
	// publisher (0: 250 ms).
	Poll time.Duration
	// Linger is how long the publisher waits after a commit woke it (0:
	// 10 ms). The commit is a payment's, whose request to the gateway or
	// result on the display goes out right then: publishing after it
	// keeps the publisher (and the broker's acks) off the CPU the payment
	// needs (docs/performance.md), and a step's changes go together.
	Linger time.Duration
}

// Status is the publisher as posctl fleet status shows it.
type Status struct {
	URL       string    `json:"url"`
	Connected bool      `json:"connected"`
	Pending   uint64    `json:"pending"`
	Oldest    time.Time `json:"oldest,omitzero"`
	LastAck   time.Time `json:"last_ack,omitzero"`
	Published uint64    `json:"published"`
	LastError string    `json:"last_error,omitempty"`
}

// Publisher sends the journal's outbox to JetStream, in order, one
// message at a time: the next is sent once the stream acknowledged the
// one before, so an order's versions reach the stream in the order they
// were made. Each carries a Nats-Msg-Id (the record's kind, id and
// version): what a crash or a lost ack makes it send again is dropped by
// the stream's deduplication. Entries leave the outbox only after their
// ack. Nothing on the payment path waits for it.
type Publisher struct {
	o    Options
	wake chan struct{}
	// sent is the last entry the stream acknowledged; removed, the last
	// one whose removal is committed. Removals are committed at most
	// every RemoveEvery (or 1,024 entries behind): each is an fsync the
	// payment path would queue behind. A crash in between sends the
	// rest again, and the stream drops the copies.
	sent, removed uint64
	removedAt     time.Time

	mu sync.Mutex
	st Status
}

// New returns a publisher; Run starts it.
func New(o Options) *Publisher {
	if o.Batch <= 0 {
		o.Batch = 256
	}
	if o.Poll <= 0 {
		o.Poll = 250 * time.Millisecond
	}
	if o.Linger <= 0 {
		o.Linger = 10 * time.Millisecond
	}
	return &Publisher{o: o, wake: make(chan struct{}, 1), st: Status{URL: config.RedactURLs(o.URL)}}
}

// Wake tells the publisher the outbox has something new.
func (p *Publisher) Wake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Status returns the publisher's state and the outbox's.
func (p *Publisher) Status() Status {
	p.mu.Lock()
	st, sent := p.st, p.sent
	p.mu.Unlock()
	_ = p.o.Journal.View(func(tx *journal.Tx) error {
		os := tx.OutboxStatsAfter(sent) // what the stream has not acknowledged
		st.Pending, st.Oldest = os.Pending, os.Oldest
		return nil
	})
	return st
}

// Run connects and publishes until ctx ends. A broker that cannot be
// reached is tried again, for as long as it takes.
func (p *Publisher) Run(ctx context.Context) error {
	nc, err := nats.Connect(p.o.URL, p.connectOptions()...)
	if err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	backoff := time.Duration(0)
	for {
		p.setConnected(nc.IsConnected())
		n, err := p.drain(ctx, js)
		if err != nil {
			p.fail(err)
			backoff = min(max(2*backoff, 500*time.Millisecond), 30*time.Second)
		} else if backoff = 0; n > 0 {
			continue
		}
		wake, wait := p.wake, p.o.Poll
		if backoff > 0 {
			wake, wait = nil, backoff // a failing broker is not asked faster for being woken
		}
		select {
		case <-ctx.Done():
			return p.remove(true)
		case <-wake:
			if !ctxtime.Sleep(ctx, p.o.Linger) {
				return p.remove(true)
			}
		case <-time.After(wait):
		}
	}
}

func (p *Publisher) connectOptions() []nats.Option {
	opts := []nats.Option{
		nats.Name("posd " + p.o.Store),
		nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second),
		nats.Timeout(5 * time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			p.o.Log.Warn("fleet: broker link down: the outbox keeps every change", zap.Error(err))
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			p.o.Log.Info("fleet: broker link up", zap.String("server", config.RedactURLs(nc.ConnectedUrl())))
			p.Wake()
		}),
	}
	if p.o.Auth != nil {
		opts = append(opts, p.o.Auth)
	}
	if p.o.Box != "" {
		opts = append(opts, nats.CustomInboxPrefix(wire.Inbox(p.o.Box)))
	}
	return opts
}

// drain publishes one batch of the outbox and removes what was acked.
func (p *Publisher) drain(ctx context.Context, js jetstream.JetStream) (int, error) {
	var batch []journal.OutboxEntry
	live := map[uint64]bool{} // entries whose record is still there
	if err := p.o.Journal.View(func(tx *journal.Tx) error {
		var err error
		if batch, err = tx.OutboxAfter(p.sent, p.o.Batch); err != nil {
			return err
		}
		for i := range batch {
			ok, err := tx.Current(&batch[i])
			if err != nil {
				return err
			}
			live[batch[i].Seq] = ok
		}
		return nil
	}); err != nil {
		return 0, err
	}
	if len(batch) == 0 {
		return 0, p.remove(false)
	}
	var acked uint64
	var sent int
	var perr error
	done := map[string]bool{} // versions sent in this batch: a later entry of the same version is the same message
	for _, e := range batch {
		id := wire.MsgID(p.o.IDKey, p.o.Merchant, p.o.Store, e.Kind, e.ID, e.Version)
		if !live[e.Seq] || done[id] {
			acked = e.Seq
			continue
		}
		done[id] = true
		msg, err := p.message(&e)
		if err == nil {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err = js.PublishMsg(pctx, msg)
			cancel()
		}
		if err != nil {
			perr = fmt.Errorf("publish %s %s v%d: %w", e.Kind, e.ID, e.Version, err)
			break
		}
		acked, sent = e.Seq, sent+1
	}
	if acked > p.sent {
		// Killed here, posd sends these again after its restart: the
		// stream's duplicate window drops them (the crash tests).
		failpoint.Hit("fleet-published")
		p.o.Journal.OutboxAcked(acked) // removed by the next write, or by remove
		p.mu.Lock()
		p.sent = acked
		p.st.Published += uint64(sent)
		p.st.LastAck = time.Now()
		p.st.LastError = ""
		p.mu.Unlock()
	}
	if err := p.remove(false); err != nil {
		return sent, err
	}
	return sent, perr
}

// RemoveEvery is how often acknowledged entries are removed from the
// outbox, at most.
const RemoveEvery = time.Second

// remove commits the removal of what the stream acknowledged, when it is
// due (or now).
func (p *Publisher) remove(now bool) error {
	if p.sent == p.removed || !now && time.Since(p.removedAt) < RemoveEvery && p.sent-p.removed < 1024 {
		return nil
	}
	seq := p.sent
	var left bool // a payment's write may have removed them already (OutboxAcked)
	_ = p.o.Journal.View(func(tx *journal.Tx) error {
		first, err := tx.Outbox(1)
		left = err != nil || len(first) > 0 && first[0].Seq <= seq
		return nil
	})
	if !left {
		p.removed, p.removedAt = seq, time.Now()
		return nil
	}
	if err := p.o.Journal.Update(func(tx *journal.Tx) error { return tx.Acked(seq) }); err != nil {
		return err // published again after a restart: the stream drops the copies
	}
	p.removed, p.removedAt = seq, time.Now()
	return nil
}

// Message is what the head office receives: the record as the journal
// holds it (in the API's words: an order's mch_trade_id, state and
// version), with what says where it comes from.
func (p *Publisher) message(e *journal.OutboxEntry) (*nats.Msg, error) {
	var body map[string]json.RawMessage
	if err := json.Unmarshal(e.Record, &body); err != nil || body == nil {
		body = map[string]json.RawMessage{"record": e.Record}
	}
	// The code's hash finds a code scanned twice on this box; with the
	// last four digits beside it, a hash of a code of 18 digits falls to
	// a brute force. Head office has no use for it.
	delete(body, "code_sha256")
	add := func(k string, v any) {
		b, _ := json.Marshal(v)
		body[k] = b
	}
	// What belongs to the box rather than a lane (its gateway link) goes
	// under the box's name: its key publishes its own lanes' subjects and
	// its own, and two boxes of a store no longer share one device record.
	lane := e.Lane
	if lane == "" && p.o.Box != "" {
		lane = p.o.Box
	}
	add("type", e.Kind)
	add("merchant", p.o.Merchant)
	add("store", p.o.Store)
	add("lane", lane)
	add("version", e.Version)
	add("changed_at", e.At)
	data, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg(wire.Subject(p.o.Prefix, p.o.Merchant, p.o.Store, lane, e.Kind))
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, wire.MsgID(p.o.IDKey, p.o.Merchant, p.o.Store, e.Kind, e.ID, e.Version))
	return m, nil
}

func (p *Publisher) setConnected(up bool) {
	p.mu.Lock()
	p.st.Connected = up
	p.mu.Unlock()
}

func (p *Publisher) fail(err error) {
	p.mu.Lock()
	first := p.st.LastError == ""
	p.st.LastError = err.Error()
	p.mu.Unlock()
	if first {
		p.o.Log.Warn("fleet: not published; kept in the outbox, tried again", zap.Error(err))
	}
}
