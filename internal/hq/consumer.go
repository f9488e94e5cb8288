package hq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"example.com/posd/internal/fleet"
)

// Consumer materializes a stream of box messages into a Store through a
// durable JetStream consumer: a batch is stored in one transaction and
// acknowledged only after it committed. A consumer killed mid-batch has
// acknowledged nothing of it: the stream delivers it again, and the
// versions make the second time change nothing.
type Consumer struct {
	Store   *Store
	Stream  string // the stream the operator created
	Durable string // the consumer's name (created if missing)
	Filter  string // subjects, e.g. posd.>
	Batch   int    // messages a fetch (0: 500)
	Log     *zap.Logger
	Metrics *Metrics
}

// Run consumes until ctx ends.
func (c *Consumer) Run(ctx context.Context, js jetstream.JetStream) error {
	if c.Batch <= 0 {
		c.Batch = 500
	}
	cons, err := c.consumer(ctx, js)
	if err != nil {
		return err
	}
	go c.watchLag(ctx, cons)
	for ctx.Err() == nil {
		if err := c.one(ctx, cons); err != nil && ctx.Err() == nil {
			c.Log.Warn("hq: batch not stored; delivered again", zap.Error(err))
			fleet.Sleep(ctx, time.Second)
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
		if !fleet.Sleep(ctx, 2*time.Second) {
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
	var msgs []jetstream.Msg
	var recs []Record
	for m := range b.Messages() {
		r, perr := Parse(m.Data())
		if perr == nil {
			perr = fromItsSubject(&r, m.Subject())
		}
		if perr != nil {
			// Not a box's message: it would come back forever. Kept out,
			// counted and logged.
			c.Metrics.malformed.Inc()
			c.Log.Error("hq: message refused", zap.String("subject", m.Subject()), zap.Error(perr))
			_ = m.Term()
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
	if err := c.Store.Apply(ctx, recs); err != nil {
		for _, m := range msgs {
			_ = m.Nak()
		}
		return err
	}
	c.Metrics.batch.Observe(time.Since(began).Seconds())
	for i, m := range msgs {
		_ = m.Ack()
		c.Metrics.records.WithLabelValues(recs[i].Kind).Inc()
		c.Metrics.heard(&recs[i])
	}
	return nil
}

// fromItsSubject refuses a record whose merchant, store, lane or kind is
// not its subject's: a box may publish only under its own store (the
// store's NATS server gives each store's lanes their subjects,
// docs/fleet), and the body must not claim another.
func fromItsSubject(r *Record, subject string) error {
	want := fleet.Subject("p", r.Merchant, r.Store, r.Lane, r.Kind)
	if !strings.HasSuffix(subject, want[1:]) {
		return fmt.Errorf("hq: a %s of %s/%s/%s published on %s", r.Kind, r.Merchant, r.Store, r.Lane, subject)
	}
	return nil
}

// watchLag keeps the consumer's backlog on /metrics.
func (c *Consumer) watchLag(ctx context.Context, cons jetstream.Consumer) {
	for {
		if info, err := cons.Info(ctx); err == nil {
			c.Metrics.lag.Set(float64(info.NumPending + uint64(info.NumAckPending)))
		}
		if !fleet.Sleep(ctx, 5*time.Second) {
			return
		}
	}
}

// Metrics are posd-hq's series on /metrics.
type Metrics struct {
	Registry  *prometheus.Registry
	records   *prometheus.CounterVec
	malformed prometheus.Counter
	lag       prometheus.Gauge
	batch     prometheus.Histogram
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
		malformed: prometheus.NewCounter(prometheus.CounterOpts{Name: "posd_hq_malformed_total",
			Help: "Messages refused as not a box's (terminated, never stored)."}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "posd_hq_consumer_lag",
			Help: "Messages in the stream not yet stored and acknowledged."}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "posd_hq_batch_seconds",
			Help: "Time to store one batch.", Buckets: prometheus.ExponentialBuckets(0.001, 3, 10)}),
		last: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "posd_hq_store_last_change_timestamp_seconds",
			Help: "When the newest change stored of each store was made (alert on time() minus it in opening hours)."}, []string{"merchant", "store"}),
		lastSeen: map[[2]string]time.Time{},
	}
	m.Registry.MustRegister(m.records, m.malformed, m.lag, m.batch, m.last)
	return m
}
