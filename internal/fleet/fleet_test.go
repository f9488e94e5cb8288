package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"example.com/posd/internal/fleet/wire"
	"example.com/posd/internal/journal"
	"example.com/posd/internal/journal/journaltest"
	"example.com/posd/internal/money"
	"example.com/posd/internal/natstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*Server).Start"))
}

// pay journals an order and its charge through to paid, with a partial
// refund: what a lane writes.
func pay(t *testing.T, j *journal.Journal, n int) {
	t.Helper()
	now := time.Now()
	id := "S1_POS1_" + string(rune('A'+n))
	o := money.NewOrder(money.Order{MchTradeID: id, ChargeID: "CH" + id, Lane: "L1", TotalFee: 100, AuthCode: "281234567890123456", Wallet: "alipay"}, now)
	c := money.Charge{ID: "CH" + id, Lane: "L1", TotalFee: 100, State: money.Paying, AttemptIDs: []string{id}}
	require.NoError(t, j.Update(func(tx *journal.Tx) error { return tx.RecordAttempt(&o, &c) }))
	o.State, o.Phase, o.FinishedAt = money.Paid, money.PhaseDone, now
	require.NoError(t, j.Update(func(tx *journal.Tx) error { _, err := tx.SaveStep(&o, now); return err }))
	r := money.Refund{MchRefundID: id + "R1", MchTradeID: id, ChargeID: c.ID, Lane: "L1", RefundFee: 30, State: money.Pending}
	require.NoError(t, j.Update(func(tx *journal.Tx) error { return tx.RecordRefund(&r) }))
}

type got struct {
	subject, msgID, kind, id, state string
	version                         uint64
}

// run runs a publisher until stop.
func run(p *Publisher) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	return func() { cancel(); <-done }
}

func readAll(t *testing.T, st jetstream.Stream) []got {
	t.Helper()
	ctx := context.Background()
	info, err := st.Info(ctx)
	require.NoError(t, err)
	var out []got
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		require.NoError(t, err)
		var b struct {
			Type, State, ID string
			MchTradeID      string `json:"mch_trade_id"`
			MchRefundID     string `json:"mch_refund_id"`
			Version         uint64
		}
		require.NoError(t, json.Unmarshal(m.Data, &b))
		id := b.MchTradeID
		switch b.Type {
		case "charge":
			id = b.ID
		case "refund":
			id = b.MchRefundID
		}
		out = append(out, got{m.Subject, m.Header.Get(jetstream.MsgIDHeader), b.Type, id, b.State, b.Version})
	}
	return out
}

func waitEmpty(t *testing.T, p *Publisher) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for p.Status().Pending > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("outbox not drained: %+v", p.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Every change reaches the stream once, in order, on its subject, with
// its Nats-Msg-Id; a re-send after a crash that lost the outbox's update
// (a restored copy taken before it) is dropped by the stream; with the
// broker away the outbox keeps everything and drains when it is back.
func TestPublisher(t *testing.T) {
	ns := natstest.Start(t)
	st := natstest.Stream(t, ns.URL(), "POSD", "posd")
	dir := t.TempDir()
	j, err := journal.Open(filepath.Join(dir, "j.db"))
	require.NoError(t, err)
	j.SetOutbox(true)
	pay(t, j, 0)
	require.NoError(t, j.Backup(filepath.Join(dir, "before-publish.db")))

	opts := Options{URL: ns.URL(), Prefix: "posd", Merchant: "M1", Store: "S1", Journal: j, Log: zap.NewNop(), Poll: 20 * time.Millisecond}
	p := New(opts)
	stop := run(p)
	waitEmpty(t, p)
	msgs := readAll(t, st)
	var seen []string
	for _, m := range msgs {
		seen = append(seen, m.kind+" "+m.id+" "+m.state)
	}
	assert.Equal(t, []string{"order S1_POS1_A paid", "charge CHS1_POS1_A paid", "refund S1_POS1_AR1 pending"}, seen,
		"each record as it is when published (its earlier versions go as the latest), in the order first changed")
	assert.Equal(t, "posd.M1.S1.L1.orders", msgs[0].subject)
	assert.Equal(t, "posd.M1.S1.L1.refunds", msgs[2].subject)
	assert.Equal(t, "M1:S1:order:S1_POS1_A:2", msgs[0].msgID)
	assert.Equal(t, uint64(2), msgs[0].version)
	assert.False(t, p.Status().LastAck.IsZero())

	// Changes made while the publisher keeps up go one by one, in order.
	now := time.Now()
	o := money.NewOrder(money.Order{MchTradeID: "S1_POS1_LIVE", Lane: "L1", TotalFee: 100, AuthCode: "281234567890123456"}, now)
	for _, st := range []money.State{money.Paying, money.Unknown, money.Paid} {
		o.State = st
		if st == money.Paid {
			o.Phase, o.FinishedAt = money.PhaseDone, now
		}
		require.NoError(t, j.Update(func(tx *journal.Tx) error { _, err := tx.SaveStep(&o, now); return err }))
		p.Wake()
		waitEmpty(t, p)
	}
	var live []string
	for _, m := range readAll(t, st)[3:] {
		live = append(live, fmt.Sprintf("%s v%d", m.state, m.version))
	}
	assert.Equal(t, []string{"paying v1", "unknown v2", "paid v3"}, live)

	// The broker goes away: payments go on, the outbox keeps them.
	ns.Stop()
	pay(t, j, 1)
	time.Sleep(300 * time.Millisecond)
	s := p.Status()
	assert.Equal(t, uint64(6), s.Pending, "kept while the broker is away")
	_ = s
	ns.Restart()
	p.Wake()
	waitEmpty(t, p)
	// Drained when it is back: each record up to its latest version, in
	// order (a version read while the payment was being written goes too,
	// before the later ones).
	all := readAll(t, st)
	last := map[string]uint64{}
	for _, m := range all[6:] {
		k := m.kind + " " + m.id
		assert.Greater(t, m.version, last[k], "%s: versions in order", k)
		last[k] = m.version
	}
	assert.Equal(t, map[string]uint64{"order S1_POS1_B": 2, "charge CHS1_POS1_B": 3, "refund S1_POS1_BR1": 1}, last)
	stop()
	require.NoError(t, j.Close())

	// A restored copy from before the publish sends the first records
	// again: the stream drops every one.
	j2, err := journal.Open(filepath.Join(dir, "before-publish.db"))
	require.NoError(t, err)
	defer j2.Close()
	opts.Journal = j2
	p2 := New(opts)
	stop = run(p2)
	waitEmpty(t, p2)
	stop()
	assert.Len(t, readAll(t, st), len(all), "copies dropped by the stream's duplicate window")
}

func TestSubjectTokens(t *testing.T) {
	assert.Equal(t, "posd.M_1.S__1._.devices", wire.Subject("posd", "M.1", "S *1", "", "device"))
	assert.Equal(t, "nats://u:xxxxx@h:4222,nats://h2:4222", New(Options{URL: "nats://u:pw@h:4222,nats://h2:4222"}).Status().URL)
}

// BenchmarkThousandBoxes: 1,000 boxes, each with a journal holding five
// payments in its outbox (a lane's quarter of an hour), start publishing
// at the same moment to one JetStream server: the time until the stream
// holds every change, and the rate.
func BenchmarkThousandBoxes(b *testing.B) {
	boxes := 1000
	if n, err := strconv.Atoi(os.Getenv("POSD_FLEET_BOXES")); err == nil && n > 0 {
		boxes = n
	}
	ns := natstest.Start(b)
	st := natstest.Stream(b, ns.URL(), "POSD", "posd")
	var pubs []*Publisher
	var want uint64
	for i := range boxes {
		j := journaltest.OpenWith(b, journal.Options{NoSync: true})
		j.SetOutbox(true)
		for k := range 5 {
			payT(b, j, fmt.Sprintf("S%04d_POS1_%d", i, k))
		}
		require.NoError(b, j.View(func(tx *journal.Tx) error { want += tx.OutboxStats().Pending; return nil }))
		pubs = append(pubs, New(Options{URL: ns.URL(), Prefix: "posd", Merchant: "M1", Store: fmt.Sprintf("S%04d", i), Journal: j, Log: zap.NewNop()}))
	}
	b.ResetTimer()
	began := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, p := range pubs {
		wg.Add(1)
		go func() { defer wg.Done(); _ = p.Run(ctx) }()
	}
	// Done when every box's outbox is acknowledged: two entries of one
	// record go as one message (the record as it is when published), so
	// the stream holds fewer messages than the outboxes held entries.
	for left := len(pubs); left > 0; {
		left = 0
		for _, p := range pubs {
			if p.Status().Pending > 0 {
				left++
			}
		}
		if time.Since(began) > 5*time.Minute {
			b.Fatalf("%d of %d boxes not drained after 5 minutes", left, len(pubs))
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(began)
	b.StopTimer()
	cancel()
	wg.Wait()
	info, err := st.Info(context.Background())
	require.NoError(b, err)
	require.NotZero(b, info.State.Msgs)
	b.ReportMetric(float64(boxes), "boxes")
	b.ReportMetric(float64(want), "entries")
	b.ReportMetric(float64(info.State.Msgs), "messages")
	b.ReportMetric(took.Seconds(), "s")
	b.ReportMetric(float64(info.State.Msgs)/took.Seconds(), "msgs/s")
}

// payT is pay for a benchmark: one paid charge, journaled as a lane does.
func payT(b *testing.B, j *journal.Journal, id string) {
	now := time.Now()
	o := money.NewOrder(money.Order{MchTradeID: id, ChargeID: "CH" + id, Lane: "L1", TotalFee: 100, AuthCode: "281234567890123456", Wallet: "alipay"}, now)
	c := money.Charge{ID: "CH" + id, Lane: "L1", TotalFee: 100, State: money.Paying, AttemptIDs: []string{id}}
	require.NoError(b, j.Update(func(tx *journal.Tx) error { return tx.RecordAttempt(&o, &c) }))
	o.State, o.Phase, o.FinishedAt = money.Paid, money.PhaseDone, now
	require.NoError(b, j.Update(func(tx *journal.Tx) error { _, err := tx.SaveStep(&o, now); return err }))
}
