package hq

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"example.com/posd/internal/natstest"
)

// What no database should be asked to store, and what no box writes in a
// name, an id or a state, is refused before either database sees it.
func TestParseRefusesNULControlsAndInvalidUTF8(t *testing.T) {
	ok := `{"type":"order","merchant":"M1","store":"S001","lane":"L1","mch_trade_id":"S001_POS1_A","version":3,"state":"paid","phase":"done"`
	for name, body := range map[string]string{
		"NUL in a state":                     ok[:len(ok)-len(`"phase":"done"`)] + `"phase":"done","state":"paid\u0000"`,
		"NUL in the store":                   strings.Replace(ok, `"S001"`, `"S001\u0000"`, 1),
		"NUL in a field head office skips":   ok + `,"subject":"tea\u0000"`,
		"NUL in a nested value":              ok + `,"extra":{"a":["x\u0000"]}`,
		"NUL in a field's name":              ok + `,"a\u0000b":1`,
		"invalid UTF-8 in a state":           strings.Replace(ok, `"paid"`, "\"pa\xffid\"", 1),
		"invalid UTF-8 in a skipped field":   ok + ",\"subject\":\"t\xc3\x28a\"",
		"a bell in the store":                strings.Replace(ok, `"S001"`, `"S0\u000701"`, 1),
		"a newline in the id":                strings.Replace(ok, `"S001_POS1_A"`, `"S001_POS1_A\n"`, 1),
		"a C1 control in the lane":           strings.Replace(ok, `"L1"`, `"L1\u0085"`, 1),
		"DEL in the merchant":                strings.Replace(ok, `"M1"`, `"M1\u007f"`, 1),
		"an id longer than any box's":        strings.Replace(ok, `"S001_POS1_A"`, `"`+strings.Repeat("A", maxField+1)+`"`, 1),
		"a second JSON value after":          ok + `}{"x":1`,
		"an array, not an object":            `[` + ok + `}]`,
		"null":                               `null`,
		"a version beyond 64 bits":           strings.Replace(ok, `"version":3`, `"version":18446744073709551616`, 1),
		"a negative version":                 strings.Replace(ok, `"version":3`, `"version":-1`, 1),
		"a device whose name holds a escape": `{"type":"device","merchant":"M1","store":"S001","lane":"L1","role":"scanner","name":"s\u001b[2J","version":3,"state":"gone"}`,
	} {
		if !strings.HasSuffix(body, "}") && !strings.HasSuffix(body, "]") && body != "null" {
			body += "}"
		}
		_, err := Parse([]byte(body))
		assert.Error(t, err, name)
	}
	for name, body := range map[string]string{
		"as a box writes it":                ok + `}`,
		"a newline and a tab in free text":  ok + `,"subject":"tea\n\tand cake"}`,
		"names in Chinese and an emoji":     strings.Replace(ok, `"S001"`, `"上海01☕"`, 1) + `}`,
		"an id as long as allowed":          strings.Replace(ok, `"S001_POS1_A"`, `"`+strings.Repeat("A", maxField)+`"`, 1) + `}`,
		"an escaped slash and unicode text": ok + `,"body":"a\/b \u00e9"}`,
	} {
		_, err := Parse([]byte(body))
		assert.NoError(t, err, name)
	}
}

// Head office does not keep a payment code's hash (or a code) a box sent:
// it is dropped from the body, at any depth and in any case; the masked
// code and the rest are kept as they were, numbers to the last digit.
func TestParseDropsTheCodeHash(t *testing.T) {
	in := `{"type":"order","merchant":"M1","store":"S001","lane":"L1","mch_trade_id":"S001_POS1_A","version":1234567890123456789,` +
		`"state":"paid","phase":"done","total_fee":12345678901234,"code_masked":"**************1234",` +
		`"code_sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","auth_code":"281234567890123456",` +
		`"Code_SHA256":"abc","refund":{"code_sha256":"def","note":"<b>&</b>"}}`
	r, err := Parse([]byte(in))
	require.NoError(t, err)
	assert.NotContains(t, strings.ToLower(string(r.Body)), "code_sha256")
	assert.NotContains(t, string(r.Body), "auth_code")
	assert.NotContains(t, string(r.Body), "9f86d081")
	assert.NotContains(t, string(r.Body), "281234567890123456")
	var got map[string]any
	d := json.NewDecoder(strings.NewReader(string(r.Body)))
	d.UseNumber()
	require.NoError(t, d.Decode(&got))
	assert.Equal(t, "**************1234", got["code_masked"])
	assert.Equal(t, json.Number("1234567890123456789"), got["version"])
	assert.Equal(t, json.Number("12345678901234"), got["total_fee"])
	assert.Equal(t, map[string]any{"note": "<b>&</b>"}, got["refund"])
	assert.Equal(t, uint64(1234567890123456789), r.Version)
}

// metric is a series' value in m's registry (0: not there).
func metric(t *testing.T, m *Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue series
				}
			}
			if s.Counter != nil {
				return s.GetCounter().GetValue()
			}
			return s.GetGauge().GetValue()
		}
	}
	return 0
}

// publish puts a body on a subject of the test's stream.
func publish(t *testing.T, js jetstream.JetStream, subject string, body []byte) {
	t.Helper()
	_, err := js.Publish(context.Background(), subject, body)
	require.NoError(t, err)
}

type ingest struct {
	js    jetstream.JetStream
	store *Store
	m     *Metrics
	stop  func()
}

// startIngest starts a broker with the boxes' stream and a consumer
// into the database at dsn whose batches take in everything published
// so far; the clock is head office's.
func startIngest(t *testing.T, dsn string, prepare func(*Store)) *ingest {
	ctx := context.Background()
	ns := natstest.Start(t)
	natstest.Stream(t, ns.URL(), "POSD", "posd")
	nc, err := nats.Connect(ns.URL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	in := &ingest{m: NewMetrics()}
	in.js, err = jetstream.New(nc)
	require.NoError(t, err)
	in.store, err = Open(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { in.store.Close() })
	if prepare != nil {
		prepare(in.store)
	}
	return in
}

func (in *ingest) run(t *testing.T) {
	cctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	c := &Consumer{Store: in.store, Stream: "POSD", Durable: "hq", Batch: 50, Log: zap.NewNop(), Metrics: in.m}
	go func() { defer close(done); _ = c.Run(cctx, in.js) }()
	in.stop = func() { cancel(); <-done }
	t.Cleanup(in.stop)
}

// info is the durable consumer's state (empty before the consumer made
// it).
func (in *ingest) info() *jetstream.ConsumerInfo {
	c, err := in.js.Consumer(context.Background(), "POSD", "hq")
	if err != nil {
		return &jetstream.ConsumerInfo{NumPending: 1}
	}
	ci, err := c.Info(context.Background())
	if err != nil {
		return &jetstream.ConsumerInfo{NumPending: 1}
	}
	return ci
}

// refuseID makes the database itself refuse one id, as a constraint
// would: a record Parse takes that the database does not.
func refuseID(t *testing.T, s *Store, id string) {
	stmt := `CREATE TRIGGER refuse_one BEFORE INSERT ON records WHEN NEW.id = '` + id + `' BEGIN SELECT RAISE(ABORT, 'refused'); END`
	if s.postgres {
		stmt = `ALTER TABLE records ADD CONSTRAINT refuse_one CHECK (id <> '` + id + `')`
	}
	_, err := s.DB().ExecContext(context.Background(), stmt)
	require.NoError(t, err)
}

// One bad record among many, of two stores: every other record is stored,
// those published after it too; the bad ones (a NUL in a state, a body
// naming another store than its subject, a forged version, a record the
// database refuses) are terminated, counted by why, and not delivered
// again. A record dated ahead of head office's clock is kept but does not
// move its store's last change.
func TestPoisonRecordsDoNotHoldTheStream(t *testing.T) {
	for name, dsn := range databases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			in := startIngest(t, dsn(t), func(s *Store) { refuseID(t, s, "S002_POS1_REFUSED") })
			now := time.Now()
			order := func(store, id, state string, v uint64, at time.Time) []byte {
				var m map[string]any
				require.NoError(t, json.Unmarshal(msg("order", store, id, state, "done", v, 100, 0, at), &m))
				m["changed_at"] = at
				b, err := json.Marshal(m)
				require.NoError(t, err)
				return b
			}
			subj := func(store string) string { return "posd.M1." + store + ".L1.orders" }
			for i := range 5 {
				publish(t, in.js, subj("S001"), order("S001", fmt.Sprintf("S001_POS1_%d", i), "paid", 1, now))
				publish(t, in.js, subj("S002"), order("S002", fmt.Sprintf("S002_POS1_%d", i), "paid", 1, now))
			}
			publish(t, in.js, subj("S001"), []byte(strings.Replace(string(order("S001", "S001_POS1_NUL", "paid", 1, now)),
				`"state":"paid"`, `"state":"paid\u0000"`, 1)))
			publish(t, in.js, "posd.M1.S001.x.M1.S002.L1.orders", order("S002", "S002_POS1_FORGED", "paid", 1, now))
			publish(t, in.js, subj("S002"), order("S002", "S002_POS1_PINNED", "paid", 1<<63-1, now))
			publish(t, in.js, subj("S002"), order("S002", "S002_POS1_REFUSED", "paid", 1, now))
			future := now.AddDate(73, 0, 0)
			publish(t, in.js, subj("S001"), order("S001", "S001_POS1_AHEAD", "paid", 1, future))
			in.run(t)
			// After the poison, and a genuine version of the record the
			// forged one tried to pin.
			for i := 5; i < 10; i++ {
				publish(t, in.js, subj("S001"), order("S001", fmt.Sprintf("S001_POS1_%d", i), "paid", 1, now))
				publish(t, in.js, subj("S002"), order("S002", fmt.Sprintf("S002_POS1_%d", i), "paid", 1, now))
			}
			publish(t, in.js, subj("S002"), order("S002", "S002_POS1_PINNED", "refunded", 2, now))

			orders := func(store string) map[string]Order {
				o, err := in.store.Orders(ctx, "M1", store)
				require.NoError(t, err)
				return o
			}
			require.Eventually(t, func() bool {
				return len(orders("S001")) == 11 && len(orders("S002")) == 11 && orders("S002")["S002_POS1_PINNED"].Version == 2
			}, 20*time.Second, 20*time.Millisecond, "every record but the bad ones, of both stores")
			s1, s2 := orders("S001"), orders("S002")
			assert.NotContains(t, s1, "S001_POS1_NUL")
			assert.NotContains(t, s2, "S002_POS1_FORGED")
			assert.NotContains(t, s2, "S002_POS1_REFUSED")
			assert.Equal(t, Order{Version: 2, State: "refunded", Phase: "done"}, s2["S002_POS1_PINNED"], "the genuine version, not pinned")
			assert.Contains(t, s1, "S001_POS1_AHEAD", "a record dated in the future is kept")

			for why, n := range map[string]float64{WhyMalformed: 1, WhySubject: 1, WhyVersion: 1, WhyStoreRefused: 1} {
				assert.Equal(t, n, metric(t, in.m, "posd_hq_rejected_total", map[string]string{"why": why}), why)
			}
			assert.Equal(t, 1.0, metric(t, in.m, "posd_hq_future_records_total", map[string]string{"store": "S001"}))
			last := metric(t, in.m, "posd_hq_store_last_change_timestamp_seconds", map[string]string{"store": "S001"})
			assert.InDelta(t, float64(now.UnixMilli())/1000, last, 1, "the future date does not move the store's last change")

			require.Eventually(t, func() bool {
				ci := in.info()
				return ci.NumPending == 0 && ci.NumAckPending == 0
			}, 5*time.Second, 20*time.Millisecond, "everything acknowledged or terminated")
			time.Sleep(100 * time.Millisecond) // a Nak would have sent one back by now
			ci := in.info()
			assert.Zero(t, ci.NumAckPending)
			assert.Zero(t, ci.NumRedelivered, "nothing delivered again")
		})
	}
}

// A database that refuses every write (not any record's fault) has no
// record terminated: the batch is delivered again until the database
// takes it.
func TestUnavailableDatabaseTerminatesNothing(t *testing.T) {
	ctx := context.Background()
	in := startIngest(t, databases(t)["sqlite"](t), nil)
	// One connection (SQLite's single writer): it refuses every write.
	_, err := in.store.DB().ExecContext(ctx, "PRAGMA query_only = ON")
	require.NoError(t, err)
	now := time.Now()
	for i := range 6 {
		publish(t, in.js, "posd.M1.S001.L1.orders", msg("order", "S001", fmt.Sprintf("S001_POS1_%d", i), "paid", "done", 1, 100, 0, now))
	}
	in.run(t)
	require.Eventually(t, func() bool { return in.info().NumRedelivered > 0 }, 10*time.Second, 20*time.Millisecond,
		"the batch delivered again")
	for _, why := range []string{WhyMalformed, WhySubject, WhyVersion, WhyStoreRefused} {
		assert.Zero(t, metric(t, in.m, "posd_hq_rejected_total", map[string]string{"why": why}), why)
	}
	_, err = in.store.DB().ExecContext(ctx, "PRAGMA query_only = OFF")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		o, err := in.store.Orders(ctx, "M1", "S001")
		return err == nil && len(o) == 6
	}, 10*time.Second, 20*time.Millisecond, "every record once the database takes writes again")
}

// A record the database fails in a way that names no fault of its data
// (here a trigger that breaks for it alone) is delivered again, a few
// times, while the records around it are stored; then it is terminated
// and counted, not sent back for ever.
func TestRecordTheDatabaseKeepsFailingEnds(t *testing.T) {
	ctx := context.Background()
	in := startIngest(t, databases(t)["sqlite"](t), func(s *Store) {
		_, err := s.DB().ExecContext(ctx, `CREATE TRIGGER odd BEFORE INSERT ON records WHEN NEW.id = 'S001_POS1_ODD' BEGIN SELECT json('{'); END`)
		require.NoError(t, err)
	})
	now := time.Now()
	publish(t, in.js, "posd.M1.S001.L1.orders", msg("order", "S001", "S001_POS1_ODD", "paid", "done", 1, 100, 0, now))
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	c := &Consumer{Store: in.store, Stream: "POSD", Durable: "hq", Batch: 50, Log: zap.NewNop(), Metrics: in.m, Unsure: 3, Pause: 20 * time.Millisecond}
	go func() { defer close(done); _ = c.Run(cctx, in.js) }()
	defer func() { cancel(); <-done }()
	refused := func() float64 {
		return metric(t, in.m, "posd_hq_rejected_total", map[string]string{"why": WhyStoreRefused})
	}
	for i := 0; refused() == 0; i++ {
		require.Less(t, i, 200, "the failing record terminated")
		publish(t, in.js, "posd.M1.S001.L1.orders", msg("order", "S001", fmt.Sprintf("S001_POS1_%d", i), "paid", "done", 1, 100, 0, now))
		time.Sleep(20 * time.Millisecond)
	}
	assert.Equal(t, 1.0, refused())
	require.Eventually(t, func() bool { return in.info().NumAckPending == 0 && in.info().NumPending == 0 }, 10*time.Second, 20*time.Millisecond)
	o, err := in.store.Orders(ctx, "M1", "S001")
	require.NoError(t, err)
	assert.NotContains(t, o, "S001_POS1_ODD")
	assert.Greater(t, len(o), 1, "the records around it stored")
}

// The database's refusals that are a record's fault, and the failures
// that are not.
func TestRefusedTellsARecordsFaultFromTheDatabases(t *testing.T) {
	for name, dsn := range databases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s, err := Open(ctx, dsn(t))
			require.NoError(t, err)
			defer s.Close()
			refuseID(t, s, "X")
			r, err := Parse(msg("order", "S1", "X", "paid", "done", 1, 1, 0, time.Now()))
			require.NoError(t, err)
			err = s.Apply(ctx, []Record{r})
			require.Error(t, err)
			assert.True(t, Refused(err), "%v", err)
			_, err = s.DB().ExecContext(ctx, "SELECT * FROM no_such_table")
			require.Error(t, err)
			assert.False(t, Refused(err), "%v", err)
			s.Close()
			err = s.Apply(ctx, []Record{r})
			require.Error(t, err)
			assert.False(t, Refused(err), "a closed database: %v", err)
		})
	}
}
