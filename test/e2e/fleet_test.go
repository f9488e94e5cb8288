package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/hq"
	"example.com/posd/internal/journal"
	"example.com/posd/internal/money"
	"example.com/posd/payment/sandbox"
	"example.com/posd/test/harness"
)

// The fleet's binaries, built once for the tests that need them: posd-hq
// (race-enabled, as posd) and the real nats-server.
var fleetBins struct {
	once     sync.Once
	hq, nats string
	err      error
}

func buildFleet(t *testing.T) (hqBin, natsBin string) {
	t.Helper()
	fleetBins.once.Do(func() {
		dir, err := os.MkdirTemp("", "posd-fleet")
		if err != nil {
			fleetBins.err = err
			return
		}
		fleetBins.nats = filepath.Join(dir, "nats-server")
		if fleetBins.hq, fleetBins.err = harness.Build(dir, "cmd/posd-hq", true); fleetBins.err != nil {
			return
		}
		if out, err := exec.Command("go", "build", "-o", fleetBins.nats, "github.com/nats-io/nats-server/v2").CombinedOutput(); err != nil {
			fleetBins.err = fmt.Errorf("build nats-server: %v\n%s", err, out)
		}
	})
	require.NoError(t, fleetBins.err)
	return fleetBins.hq, fleetBins.nats
}

// proc is a process the test kills and starts again.
type proc struct {
	t    *testing.T
	name string
	args []string
	env  []string
	cmd  *exec.Cmd
	out  *harness.SyncBuf
	done chan struct{}
}

func startProc(t *testing.T, name string, env []string, args ...string) *proc {
	p := &proc{t: t, name: name, args: args, env: env}
	p.start()
	t.Cleanup(p.kill)
	return p
}

func (p *proc) start() {
	p.out = harness.NewOutput()
	p.cmd = harness.DiesWithTest(exec.Command(p.name, p.args...))
	p.cmd.Env = append(os.Environ(), p.env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	require.NoError(p.t, p.cmd.Start())
	p.done = make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(p.done) }()
}

func (p *proc) kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Several boxes pay while the broker is stopped and started again; one is
// SIGKILLed right after a publish, before its outbox knew (its acks lost),
// another SIGKILLed between a payment's journal commit and its publish;
// the head office's consumer is SIGKILLed mid-stream. Afterwards the
// head office's database holds every order of every box exactly once, in
// the state and version each box's journal has.
func TestFleetThroughFaults(t *testing.T) {
	t.Parallel()
	hqBin, natsBin := buildFleet(t)
	g := startSandbox(t)
	addr := harness.FreePort(t)
	_, port, _ := net.SplitHostPort(addr)
	natsURL := "nats://" + addr
	broker := startProc(t, natsBin, nil, "-a", "127.0.0.1", "-p", port, "-js", "-sd", t.TempDir())
	js := jetStream(t, natsURL)
	ctx := context.Background()
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "POSD", Subjects: []string{"posd.>"}, Storage: jetstream.FileStorage, Duplicates: time.Hour})
	require.NoError(t, err)

	dbPath := filepath.Join(t.TempDir(), "hq.db")
	hqProc := startProc(t, hqBin, nil, "-nats", natsURL, "-db", dbPath, "-listen", "127.0.0.1:0")

	stores := []string{"S101", "S102", "S103"}
	boxes := map[string]*posdProc{}
	for _, s := range stores {
		d := newDaemon(t, g, opts{store: s, extra: "fleet: {url: \"" + natsURL + "\"}\n"})
		boxes[s] = d
	}
	pay := func(d *posdProc, n int) {
		for range n {
			c := d.openCharge("L1", 1000)
			d.scan(harness.AlipayCode(7))
			require.Equal(t, "paid", d.settle(c.ID, 15*time.Second).State)
		}
	}
	boxes["S101"].start()
	boxes["S103"].start()
	pay(boxes["S101"], 2)

	// The broker goes away; the boxes take payments all the same. S102
	// starts now, armed to die right after its first publish, before its
	// outbox records the ack (the ack lost to it).
	broker.kill()
	boxes["S102"].start("POSD_FAILPOINT=fleet-published")
	pay(boxes["S102"], 2)
	pay(boxes["S101"], 2)
	pay(boxes["S103"], 3)
	// S103 is killed between its payments' journal commits and their
	// publish (the broker is away: nothing of them has left).
	boxes["S103"].kill()
	boxes["S103"].start()
	code, body := boxes["S101"].do("GET", "/v1/fleet", nil)
	require.Equal(t, 200, code)
	var fs struct {
		Status struct {
			Pending uint64 `json:"pending"`
		} `json:"status"`
	}
	require.NoError(t, json.Unmarshal(body, &fs))
	assert.Positive(t, fs.Status.Pending, "kept in the outbox while the broker is away: %s", body)

	// The consumer is killed; the broker comes back: S102 publishes and
	// dies, and sends it all again after its restart.
	hqProc.kill()
	broker.start()
	require.ErrorContains(t, boxes["S102"].waitExit(30*time.Second), "killed", "the failpoint's SIGKILL")
	boxes["S102"].start()
	pay(boxes["S102"], 1)
	hqProc.start()
	time.Sleep(500 * time.Millisecond)
	hqProc.kill() // mid-stream: what it had not acknowledged comes again
	hqProc.start()

	// Every box's journal, as the head office must hold it.
	want := map[string]map[string]hq.Order{}
	for s, d := range boxes {
		waitOutboxDrained(t, d, s+"'s")
		want[s] = boxOrders(t, d)
	}
	require.Len(t, want["S101"], 4)
	require.Len(t, want["S102"], 3)
	require.Len(t, want["S103"], 3)
	store, err := hq.Open(ctx, dbPath)
	require.NoError(t, err)
	defer store.Close()
	for _, s := range stores {
		var got map[string]hq.Order
		harness.WaitFor(t, 30*time.Second, func() bool {
			got, err = store.Orders(ctx, sandbox.MerchantID, s)
			return err == nil && assert.ObjectsAreEqual(want[s], got)
		}, s+" at the head office as in its journal")
	}
	// The stream holds each version of each record once: the copies sent
	// again after the kill were dropped.
	st, err := js.Stream(ctx, "POSD")
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	ids := map[string]int{}
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		require.NoError(t, err)
		ids[m.Header.Get(jetstream.MsgIDHeader)]++
	}
	for id, k := range ids {
		assert.Equal(t, 1, k, "message %s in the stream %d times", id, k)
	}
	n, err := store.Count(ctx, "order")
	require.NoError(t, err)
	assert.Equal(t, 10, n, "every order exactly once")
	tot, err := store.Totals(ctx, "")
	require.NoError(t, err)
	var paid int64
	for _, x := range tot {
		paid += x.PaidFee
	}
	assert.Equal(t, int64(10*1000), paid)
}

// A box whose broker was away for a week: its outbox holds a week of a
// busy lane (POSD_OUTBOX_WEEK payments, five changes each; make test:
// 2,000; docs/performance.md: 12,000). posd starts on it, idles, and
// drains it when the broker appears: its memory throughout, and the
// drain's time.
func TestOutboxWeek(t *testing.T) {
	t.Parallel()
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("POSD_OUTBOX_WEEK")); err == nil && v > 0 {
		n = v
	}
	_, natsBin := buildFleet(t)
	g := startSandbox(t)
	addr := harness.FreePort(t)
	_, port, _ := net.SplitHostPort(addr)
	d := newDaemon(t, g, opts{extra: "fleet: {url: \"nats://" + addr + "\"}\n"})
	d.bin = plainPosd(t) // as shipped: no race detector

	j, err := journal.OpenWith(filepath.Join(d.dir, "journal.db"), journal.Options{NoSync: true})
	require.NoError(t, err)
	j.SetOutbox(true)
	now := time.Now().Add(-7 * 24 * time.Hour)
	for k := range n {
		at := now.Add(time.Duration(k) * 7 * 24 * time.Hour / time.Duration(n))
		id := fmt.Sprintf("S001_POS01_W%08d", k)
		c := money.Charge{ID: "CHW" + id, Lane: "L1", TotalFee: 100, Subject: "goods", Body: "goods", State: money.AwaitingScan,
			CreatedAt: at, ExpiresAt: at.Add(10 * time.Minute), UpdatedAt: at}
		o := money.NewOrder(money.Order{MchTradeID: id, ChargeID: c.ID, Lane: "L1", DeviceInfo: "POS01", PayType: "alipay.micro",
			TotalFee: 100, Subject: "goods", Body: "goods", ClientIP: "127.0.0.1", AuthCode: "281234567890123456"}, at)
		o.AuthCode = ""
		require.NoError(t, j.Update(func(tx *journal.Tx) error {
			if err := tx.OpenCharge(&c); err != nil {
				return err
			}
			c.State, c.AttemptIDs = money.Paying, []string{id}
			if err := tx.RecordAttempt(&o, &c); err != nil {
				return err
			}
			o.State, o.Phase, o.FinishedAt = money.Paid, money.PhaseDone, at.Add(time.Second)
			_, err := tx.SaveStep(&o, at.Add(time.Second))
			return err
		}))
	}
	var entries uint64
	require.NoError(t, j.View(func(tx *journal.Tx) error { entries = tx.OutboxStats().Pending; return nil }))
	require.NoError(t, j.Close())
	st, err := os.Stat(filepath.Join(d.dir, "journal.db"))
	require.NoError(t, err)

	d.start()
	time.Sleep(2 * time.Second)
	idle := rssKB(t, d.cmd.Process.Pid)
	fleetPending := func() uint64 {
		_, body := d.do("GET", "/v1/fleet", nil)
		var fs struct {
			Status struct {
				Pending uint64 `json:"pending"`
			} `json:"status"`
		}
		require.NoError(t, json.Unmarshal(body, &fs), "%s", body)
		return fs.Status.Pending
	}
	require.GreaterOrEqual(t, fleetPending(), entries, "the week waits (and the devices posd found at its start)")
	code, body := d.do("GET", "/healthz", nil)
	require.Equal(t, 200, code, "a full outbox stops no payment")
	if entries >= 10_000 {
		assert.Contains(t, string(body), "warning", "past fleet.outbox_warn: %s", body)
	}

	startProc(t, natsBin, nil, "-a", "127.0.0.1", "-p", port, "-js", "-sd", t.TempDir())
	var js jetstream.JetStream
	harness.WaitFor(t, 10*time.Second, func() bool {
		nc, err := nats.Connect("nats://" + addr)
		if err != nil {
			return false
		}
		t.Cleanup(nc.Close)
		js, err = jetstream.New(nc)
		return err == nil
	}, "broker up")
	began := time.Now()
	_, err = js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "POSD", Subjects: []string{"posd.>"}, Storage: jetstream.FileStorage, Duplicates: time.Hour})
	require.NoError(t, err)
	peak, anon := idle, procStatus(d.cmd.Process.Pid, "RssAnon:")
	idleAnon := anon
	harness.WaitFor(t, 5*time.Minute, func() bool {
		peak = max(peak, rssKB(t, d.cmd.Process.Pid))
		anon = max(anon, procStatus(d.cmd.Process.Pid, "RssAnon:"))
		return fleetPending() == 0
	}, "the outbox drained")
	took := time.Since(began)
	t.Logf("outbox of a week: %d payments, %d changes, journal %.1f MB; posd idle with it %d MB resident (%d MB anonymous); drained in %s (%.0f changes/s), %d MB resident at most meanwhile (%d MB anonymous: the rest is the journal's pages, mapped)",
		n, entries, float64(st.Size())/1e6, idle/1024, idleAnon/1024, took.Round(time.Millisecond), float64(entries)/took.Seconds(), peak/1024, anon/1024)
	assert.Less(t, anon, int64(64*1024), "posd's own memory under 64 MB")
}
