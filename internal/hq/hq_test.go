package hq

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"example.com/posd/internal/fleet"
	"example.com/posd/internal/journal"
	"example.com/posd/internal/journal/journaltest"
	"example.com/posd/internal/money"
	"example.com/posd/internal/natstest"
)

func msg(kind, store, id, state, phase string, version uint64, fee, refunded int64, created time.Time) []byte {
	m := map[string]any{"type": kind, "merchant": "M1", "store": store, "lane": "L1", "version": version, "state": state,
		"phase": phase, "wallet": "alipay", "total_fee": fee, "refunded_fee": refunded, "created_at": created}
	switch kind {
	case "order":
		m["mch_trade_id"] = id
	case "device":
		m["role"], m["name"], m["since"] = "scanner", id, created
	default:
		m["id"] = id
	}
	b, _ := json.Marshal(m)
	return b
}

// A record keeps its highest version whatever the order the versions
// arrive in and however often: replays, copies and reordering change
// nothing. The views read what is kept.
func TestApplyKeepsTheHighestVersion(t *testing.T) {
	for name, dsn := range databases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s, err := Open(ctx, dsn(t))
			require.NoError(t, err)
			defer s.Close()
			day := time.Date(2026, 11, 26, 10, 0, 0, 0, time.FixedZone("CST", 8*3600))
			parse := func(b []byte) Record { r, err := Parse(b); require.NoError(t, err); return r }
			v1 := parse(msg("order", "S1", "S1_POS1_A", "paying", "query", 1, 1000, 0, day))
			v2 := parse(msg("order", "S1", "S1_POS1_A", "paid", "done", 2, 1000, 0, day))
			v3 := parse(msg("order", "S1", "S1_POS1_A", "paid", "done", 3, 1000, 300, day))
			open := parse(msg("order", "S2", "S2_POS1_B", "paying", "reverse", 4, 500, 0, day.Add(-time.Hour)))
			down := parse(msg("device", "S2", "scan0", "gone", "", 7, 0, 0, day))
			require.NoError(t, s.Apply(ctx, []Record{v3, v1, open, down}))
			require.NoError(t, s.Apply(ctx, []Record{v2, v1, v3, v2}), "a replay, out of order, with copies in one batch")

			tot, err := s.Totals(ctx, "2026-11-26")
			require.NoError(t, err)
			require.Len(t, tot, 1)
			assert.Equal(t, Total{Store: "S1", Lane: "L1", Wallet: "alipay", Day: "2026-11-26", Paid: 1, PaidFee: 1000, RefundedFee: 300, NetFee: 700}, tot[0])
			u, _, err := s.Unresolved(ctx, Page{Limit: 10})
			require.NoError(t, err)
			require.Len(t, u, 1)
			assert.Equal(t, "S2_POS1_B", u[0].MchTradeID)
			d, _, err := s.DevicesDown(ctx, Page{})
			require.NoError(t, err)
			require.Len(t, d, 1)
			assert.Equal(t, "L1/scanner/scan0", d[0].Device)
			up := parse(msg("device", "S2", "scan0", "connected", "", 9, 0, 0, day))
			require.NoError(t, s.Apply(ctx, []Record{up}))
			d, _, _ = s.DevicesDown(ctx, Page{})
			assert.Empty(t, d, "back up")

			_, err = Parse([]byte(`{"type":"order","merchant":"M1","store":"S1"}`))
			assert.Error(t, err, "no id, no version: refused")
			_, err = Parse([]byte(`{"type":"virus"}`))
			assert.Error(t, err)
		})
	}
}

// A box's journal, through its publisher and a real JetStream, into the
// head office's database: every order once, in its final state, equal to
// the journal's; a consumer stopped and started again, and a second
// consumer reading the whole stream again, change nothing.
func TestBoxToHeadOffice(t *testing.T) {
	for name, dsn := range databases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			ns := natstest.Start(t)
			natstest.Stream(t, ns.URL(), "POSD", "posd")
			j := journaltest.Open(t)
			j.SetOutbox(true)
			now := time.Now()
			for i := range 40 {
				id := fmt.Sprintf("S1_POS1_%04d", i)
				o := money.NewOrder(money.Order{MchTradeID: id, ChargeID: "CH" + id, Lane: "L1", TotalFee: int64(100 + i), AuthCode: "281234567890123456", Wallet: "wechat"}, now)
				c := money.Charge{ID: "CH" + id, Lane: "L1", TotalFee: o.TotalFee, State: money.Paying, AttemptIDs: []string{id}}
				require.NoError(t, j.Update(func(tx *journal.Tx) error { return tx.RecordAttempt(&o, &c) }))
				if i%10 != 9 { // every tenth stays unresolved
					o.State, o.Phase, o.FinishedAt = money.Paid, money.PhaseDone, now
					require.NoError(t, j.Update(func(tx *journal.Tx) error { _, err := tx.SaveStep(&o, now); return err }))
				}
			}
			pctx, stopPub := context.WithCancel(ctx)
			defer stopPub()
			pub := fleet.New(fleet.Options{URL: ns.URL(), Prefix: "posd", Merchant: "M1", Store: "S1", Journal: j, Log: zap.NewNop(), Poll: 10 * time.Millisecond})
			go func() { _ = pub.Run(pctx) }()

			store, err := Open(ctx, dsn(t))
			require.NoError(t, err)
			defer store.Close()
			nc, err := nats.Connect(ns.URL())
			require.NoError(t, err)
			defer nc.Close()
			js, err := jetstream.New(nc)
			require.NoError(t, err)
			consume := func(durable string, until func() bool) {
				cctx, cancel := context.WithCancel(ctx)
				done := make(chan struct{})
				c := &Consumer{Store: store, Stream: "POSD", Durable: durable, Filter: "posd.>", Batch: 7, Log: zap.NewNop(), Metrics: NewMetrics()}
				go func() { defer close(done); _ = c.Run(cctx, js) }()
				deadline := time.Now().Add(20 * time.Second)
				for !until() && time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
				}
				cancel()
				<-done
			}
			orders := func() map[string]Order { o, err := store.Orders(ctx, "M1", "S1"); require.NoError(t, err); return o }
			// Stopped after the first few orders: mid-stream.
			consume("hq", func() bool { return len(orders()) >= 5 })
			consume("hq", func() bool {
				got := orders()
				return len(got) == 40 && got["S1_POS1_0000"].Phase == "done" && pub.Status().Pending == 0
			})
			check := func() {
				got := orders()
				require.Len(t, got, 40, "every order once")
				require.NoError(t, j.View(func(tx *journal.Tx) error {
					return tx.EachOrder(func(o money.Order) error {
						h := got[o.MchTradeID]
						assert.Equal(t, Order{Version: o.Version, State: string(o.State), Phase: string(o.Phase)}, h, o.MchTradeID)
						return nil
					})
				}))
			}
			check()
			u, _, err := store.Unresolved(ctx, Page{Limit: 100})
			require.NoError(t, err)
			assert.Len(t, u, 4)
			// The whole stream again, through another consumer: nothing moves.
			info, err := js.Stream(ctx, "POSD")
			require.NoError(t, err)
			si, err := info.Info(ctx)
			require.NoError(t, err)
			consume("replay", func() bool {
				ci, err := js.Consumer(ctx, "POSD", "replay")
				return err == nil && ci.CachedInfo().AckFloor.Stream >= si.State.LastSeq
			})
			check()
		})
	}
}

// BenchmarkIngest: order events already in the stream (100 stores, each
// order paying then paid: two versions), consumed into the database
// through the durable consumer. Reports events a second.
func BenchmarkIngest(b *testing.B) {
	for _, db := range []string{"sqlite", "postgres"} {
		b.Run(db, func(b *testing.B) {
			dsn := filepath.Join(b.TempDir(), "hq.db")
			if db == "postgres" {
				if os.Getenv("POSD_TEST_POSTGRES") == "" {
					b.Skip("POSD_TEST_POSTGRES not set")
				}
				dsn = postgresSchema(b)
			}
			events := envEvents()
			ctx := context.Background()
			ns := natstest.Start(b)
			natstest.Stream(b, ns.URL(), "POSD", "posd")
			nc, err := nats.Connect(ns.URL())
			require.NoError(b, err)
			defer nc.Close()
			js, err := jetstream.New(nc)
			require.NoError(b, err)
			at := time.Now()
			for i := range events {
				store, n := fmt.Sprintf("S%03d", (i/2)%100), i/2
				state, phase, v := "paying", "query", uint64(1)
				if i%2 == 1 {
					state, phase, v = "paid", "done", 2
				}
				m := nats.NewMsg(fmt.Sprintf("posd.M1.%s.L1.orders", store))
				m.Data = msg("order", store, fmt.Sprintf("%s_POS1_%07d", store, n), state, phase, v, 1000, 0, at)
				if _, err := js.PublishMsgAsync(m); err != nil {
					b.Fatal(err)
				}
			}
			<-js.PublishAsyncComplete()
			s, err := Open(ctx, dsn)
			require.NoError(b, err)
			defer s.Close()
			b.ResetTimer()
			began := time.Now()
			cctx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			m := NewMetrics()
			c := &Consumer{Store: s, Stream: "POSD", Durable: "bench", Filter: "posd.>", Log: zap.NewNop(), Metrics: m}
			go func() { defer close(done); _ = c.Run(cctx, js) }()
			for {
				if n, _ := s.Count(ctx, "order"); n == events/2 {
					var paid int
					_ = s.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM records WHERE state = 'paid'").Scan(&paid)
					if paid == events/2 {
						break
					}
				}
				time.Sleep(50 * time.Millisecond)
				if time.Since(began) > 5*time.Minute {
					n, _ := s.Count(ctx, "order")
					b.Fatalf("only %d orders stored after 5 minutes", n)
				}
			}
			took := time.Since(began)
			cancel()
			<-done
			b.StopTimer()
			b.ReportMetric(float64(events)/took.Seconds(), "events/s")
			b.ReportMetric(took.Seconds(), "s")
		})
	}
}

func envEvents() int {
	if n, err := strconv.Atoi(os.Getenv("POSD_HQ_EVENTS")); err == nil && n > 0 {
		return n
	}
	return 100_000
}
