package hq

import (
	"context"
	"errors"
	"example.com/posd/internal/ctxtime"
	"example.com/posd/internal/fleet/wire"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Consumer materializes a stream of box messages into a Store through a
// durable JetStream consumer: a batch is stored in one transaction and
// acknowledged only after it committed. A consumer killed mid-batch has
// acknowledged nothing of it: the stream delivers it again, and the
// versions make the second time change nothing.
//
// A message that cannot be stored is terminated and counted
// (posd_hq_rejected_total), never delivered again: the consumer's
// MaxDeliver is unlimited, so one message sent back forever would hold
// every later record of every store behind it. A batch the database fails
// is stored one record at a time to find the record at fault; while the
// database is unavailable nothing is terminated, and the batch is
// delivered again.
type Consumer struct {
	Store   *Store
	Stream  string // the stream the operator created
	Durable string // the consumer's name (created if missing)
	Prefix  string // the boxes' subjects' prefix ("": posd)
	Filter  string // subjects ("": Prefix.>)
	Batch   int    // messages a fetch (0: 500)
	Log     *zap.Logger
	Metrics *Metrics
	Now     func() time.Time // head office's clock (nil: time.Now)
	// Unsure is how many deliveries of a record the database fails, while
	// it stores others, come before it is terminated (0: MaxUnsure);
	// Pause, the wait before each (0: a second).
	Unsure int
	Pause  time.Duration
}

// Why a message was terminated, the values of posd_hq_rejected_total's
// why label.
const (
	// WhyMalformed: not a box's record (not a JSON object, not UTF-8, a
	// NUL, a control character or an overlong name, no id or version, an
	// unknown type).
	WhyMalformed = "malformed"
	// WhySubject: the body's merchant, store, lane or kind is not its
	// subject's.
	WhySubject = "subject"
	// WhyVersion: a version no box makes (MaxVersionAhead).
	WhyVersion = "version"
	// WhyStoreRefused: the database refused the record while it stored
	// others.
	WhyStoreRefused = "store_refused"
)

// MaxVersionAhead bounds a record's version above head office's clock in
// Unix milliseconds. A box's versions are its own: a record's grows by one
// a change, but after a journal restore it starts again above the box's
// clock in milliseconds, and a device's is that plus the box's outbox
// sequence; a box's clock ahead of head office's or a long outbox
// sequence fits in 2^40 (35 years of milliseconds, a trillion entries).
// A version above it is forged or broken, and stored it would pin its
// record for ever: no later genuine version would replace it.
const MaxVersionAhead = 1 << 40

// FutureSlack is how far ahead of head office's clock a record may be
// dated before it counts as from the future.
const FutureSlack = 24 * time.Hour

// Run consumes until ctx ends.
func (c *Consumer) Run(ctx context.Context, js jetstream.JetStream) error {
	if c.Batch <= 0 {
		c.Batch = 500
	}
	if c.Prefix == "" {
		c.Prefix = "posd"
	}
	if c.Filter == "" {
		c.Filter = c.Prefix + ".>"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Unsure <= 0 {
		c.Unsure = MaxUnsure
	}
	if c.Pause <= 0 {
		c.Pause = time.Second
	}
	cons, err := c.consumer(ctx, js)
	if err != nil {
		return err
	}
	go c.watchLag(ctx, cons)
	for ctx.Err() == nil {
		if err := c.one(ctx, cons); err != nil && ctx.Err() == nil {
			c.Log.Warn("hq: batch not stored; delivered again", zap.Error(err))
			ctxtime.Sleep(ctx, time.Second)
		}
	}
	return nil
}

// consumer makes (or finds) the durable consumer, waiting for the stream.
func (c *Consumer) consumer(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{Durable: c.Durable, AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: c.Filter,
		AckWait: 10 * time.Second, MaxAckPending: 10 * c.Batch, MaxDeliver: -1}
	for {
		cons, err := js.CreateOrUpdateConsumer(ctx, c.Stream, cfg)
		if err == nil {
			return cons, nil
		}
		c.Log.Warn("hq: no consumer yet (is the stream there, the broker up?)", zap.String("stream", c.Stream), zap.Error(err))
		if !ctxtime.Sleep(ctx, 2*time.Second) {
			return nil, ctx.Err()
		}
	}
}

// one fetches a batch, stores it and acknowledges it.
func (c *Consumer) one(ctx context.Context, cons jetstream.Consumer) error {
	b, err := cons.Fetch(c.Batch, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		return err
	}
	now := c.Now()
	var msgs []jetstream.Msg
	var recs []Record
	for m := range b.Messages() {
		r, why, err := c.admit(m, now)
		if err != nil {
			c.refuse(m, why, err)
			continue
		}
		msgs, recs = append(msgs, m), append(recs, r)
	}
	if err := b.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
		c.Log.Debug("hq: fetch", zap.Error(err))
	}
	if len(recs) == 0 {
		return nil
	}
	began := time.Now()
	err = c.Store.Apply(ctx, recs)
	if err == nil {
		c.Metrics.batch.Observe(time.Since(began).Seconds())
		for i, m := range msgs {
			c.stored(m, &recs[i], now)
		}
		return nil
	}
	if ctx.Err() != nil {
		nakAll(msgs)
		return err
	}
	if perr := c.Store.Ping(ctx); perr != nil {
		nakAll(msgs)
		return fmt.Errorf("%w (the database does not answer: %v)", err, perr)
	}
	return c.oneByOne(ctx, msgs, recs, now, err)
}

// oneByOne stores a batch the database failed one record at a time. A
// record the database refuses (Refused: its data) is terminated. One
// that fails otherwise may have met a passing fault (a deadlock, a
// restart, a full disk): it is delivered again after a pause; only once
// it has been delivered MaxUnsure times, failing while the database
// stored other records, is it taken for the record's fault and
// terminated rather than sent back for ever.
func (c *Consumer) oneByOne(ctx context.Context, msgs []jetstream.Msg, recs []Record, now time.Time, batchErr error) error {
	c.Log.Warn("hq: batch not stored; storing its records one at a time", zap.Int("records", len(recs)), zap.Error(batchErr))
	var unsure []int
	errs := map[int]error{}
	storedAny := false
	for i := range recs {
		err := c.Store.Apply(ctx, recs[i:i+1])
		switch {
		case err == nil:
			c.stored(msgs[i], &recs[i], now)
			storedAny = true
		case Refused(err):
			c.refuse(msgs[i], WhyStoreRefused, err)
		case ctx.Err() != nil:
			nakAll(msgs[i:])
			nakEach(msgs, unsure)
			return err
		default:
			if perr := c.Store.Ping(ctx); perr != nil {
				nakAll(msgs[i:])
				nakEach(msgs, unsure)
				return fmt.Errorf("%w (the database does not answer: %v)", err, perr)
			}
			unsure, errs[i] = append(unsure, i), err
		}
	}
	var again error
	for _, i := range unsure {
		if md, err := msgs[i].Metadata(); storedAny && err == nil && md.NumDelivered >= uint64(c.Unsure) {
			c.refuse(msgs[i], WhyStoreRefused, fmt.Errorf("%w (delivered %d times)", errs[i], md.NumDelivered))
			continue
		}
		_ = msgs[i].NakWithDelay(c.Pause)
		again = errs[i]
	}
	return again
}

func nakEach(msgs []jetstream.Msg, which []int) {
	for _, i := range which {
		_ = msgs[i].Nak()
	}
}

// MaxUnsure is how many times a record the database fails, while it
// answers, is delivered before it is terminated.
const MaxUnsure = 10

func nakAll(msgs []jetstream.Msg) {
	for _, m := range msgs {
		_ = m.Nak()
	}
}

// admit reads a message and says why it is not a record head office
// stores.
func (c *Consumer) admit(m jetstream.Msg, now time.Time) (Record, string, error) {
	r, err := Parse(m.Data())
	if err != nil {
		return r, WhyMalformed, err
	}
	if err := fromItsSubject(&r, c.Prefix, m.Subject()); err != nil {
		return r, WhySubject, err
	}
	if limit := uint64(max(now.UnixMilli(), 0)) + MaxVersionAhead; r.Version > limit {
		return r, WhyVersion, fmt.Errorf("hq: a %s of %s/%s at version %d, above %d", r.Kind, r.Merchant, r.Store, r.Version, limit)
	}
	return r, "", nil
}

// refuse terminates a message that will never be stored: delivered again
// it would come back for ever.
func (c *Consumer) refuse(m jetstream.Msg, why string, err error) {
	c.Metrics.rejected.WithLabelValues(why).Inc()
	c.Log.Error("hq: message refused, not delivered again", zap.String("why", why), zap.String("subject", m.Subject()), zap.Error(err))
	_ = m.Term()
}

// stored acknowledges a message whose record is stored.
func (c *Consumer) stored(m jetstream.Msg, r *Record, now time.Time) {
	_ = m.Ack()
	c.Metrics.records.WithLabelValues(r.Kind).Inc()
	if r.ChangedAt.After(now.Add(FutureSlack)) || r.CreatedAt.After(now.Add(FutureSlack)) {
		// Kept: a box whose clock ran ahead still took the money. Its date
		// says nothing of when the store was last heard of.
		c.Metrics.future.WithLabelValues(r.Merchant, r.Store).Inc()
		c.Log.Warn("hq: a record dated in the future (the box's clock?)", zap.String("merchant", r.Merchant),
			zap.String("store", r.Store), zap.String("lane", r.Lane), zap.String("kind", r.Kind), zap.String("id", r.ID),
			zap.Time("changed_at", r.ChangedAt), zap.Time("created_at", r.CreatedAt))
		return
	}
	c.Metrics.heard(r)
}

// fromItsSubject refuses a record published anywhere but on the one
// subject its merchant, store, lane and kind make under prefix: a box may
// publish only under its own store (the store's NATS server gives each
// store's lanes their subjects, docs/fleet), and the body must not claim
// another, nor hide its own behind tokens of its own before them.
func fromItsSubject(r *Record, prefix, subject string) error {
	// A subject turns what it gives a meaning to into _: names holding it
	// would pass as another's (S.01 on S_01's subject).
	for _, name := range []string{r.Merchant, r.Store, r.Lane} {
		if strings.ContainsAny(name, ".*> \t") {
			return fmt.Errorf("hq: a %s of %q/%q/%q: a name a subject cannot carry", r.Kind, r.Merchant, r.Store, r.Lane)
		}
	}
	if want := wire.Subject(prefix, r.Merchant, r.Store, r.Lane, r.Kind); subject != want {
		return fmt.Errorf("hq: a %s of %s/%s/%s published on %s, not %s", r.Kind, r.Merchant, r.Store, r.Lane, subject, want)
	}
	return nil
}

// watchLag keeps the consumer's backlog on /metrics.
func (c *Consumer) watchLag(ctx context.Context, cons jetstream.Consumer) {
	for {
		if info, err := cons.Info(ctx); err == nil {
			c.Metrics.lag.Set(float64(info.NumPending + uint64(info.NumAckPending)))
		}
		if !ctxtime.Sleep(ctx, 5*time.Second) {
			return
		}
	}
}

// Metrics are posd-hq's series on /metrics.
type Metrics struct {
	Registry *prometheus.Registry
	records  *prometheus.CounterVec
	rejected *prometheus.CounterVec
	future   *prometheus.CounterVec
	lag      prometheus.Gauge
	batch    prometheus.Histogram
	// last is each store's newest change stored: a store whose lanes'
	// changes stop arriving (its link down, its stream not sourced) shows
	// as an age, before its server's stream drops anything (max_age).
	last     *prometheus.GaugeVec
	lastSeen map[[2]string]time.Time
}

func (m *Metrics) heard(r *Record) {
	k := [2]string{r.Merchant, r.Store}
	if r.ChangedAt.After(m.lastSeen[k]) {
		m.lastSeen[k] = r.ChangedAt
		m.last.WithLabelValues(r.Merchant, r.Store).Set(float64(r.ChangedAt.UnixMilli()) / 1000)
	}
}

// NewMetrics registers posd-hq's series.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "posd_hq_records_total",
			Help: "Box messages stored (rate(): records per second), by kind."}, []string{"kind"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "posd_hq_rejected_total",
			Help: "Messages terminated, never stored, by why: malformed, subject, version, store_refused."}, []string{"why"}),
		future: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "posd_hq_future_records_total",
			Help: "Records stored dated more than a day ahead of head office's clock (a box's clock ahead), by store."}, []string{"merchant", "store"}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "posd_hq_consumer_lag",
			Help: "Messages in the stream not yet stored and acknowledged."}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "posd_hq_batch_seconds",
			Help: "Time to store one batch.", Buckets: prometheus.ExponentialBuckets(0.001, 3, 10)}),
		last: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "posd_hq_store_last_change_timestamp_seconds",
			Help: "When the newest change stored of each store was made (alert on time() minus it in opening hours)."}, []string{"merchant", "store"}),
		lastSeen: map[[2]string]time.Time{},
	}
	for _, why := range []string{WhyMalformed, WhySubject, WhyVersion, WhyStoreRefused} {
		m.rejected.WithLabelValues(why)
	}
	m.Registry.MustRegister(m.records, m.rejected, m.future, m.lag, m.batch, m.last)
	return m
}
