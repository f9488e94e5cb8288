package sim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing/synctest"
	"time"

	"go.uber.org/zap"

	"example.com/posd/display"
	"example.com/posd/internal/clock"
	"example.com/posd/internal/journal"
	"example.com/posd/internal/lane"
	"example.com/posd/internal/money"
	"example.com/posd/internal/reconcile"
	"example.com/posd/payment"
	"example.com/posd/poller"
	"example.com/posd/scanner"
)

// Config is one run.
type Config struct {
	Seed   uint64
	Events int
	Dir    string // for the journal and its backups
}

// Report is what a run did and found.
type Report struct {
	Seed     uint64
	Events   int
	Virtual  time.Duration // virtual time covered
	Orders   int           // pay requests the gateway received
	Crashes  int
	Restores int
	Checks   int // invariant checks made
	Jumps    int // moves of the wall clock
	Futures  int // records dated in the future that a window stepped over (lane.Options.OnFuture)
	// ClockFaults are the faults posd's clock reported (at a start, or a
	// step while running); Pruned the records pruning removed.
	ClockFaults int
	Pruned      int
	// Backdated: records dated by a wall clock that was behind that posd
	// took for old (pruned early, out of a reference window): a gap in
	// posd the run shows rather than fails on, unless strictBackdated.
	Backdated  int
	Reached    Coverage
	Violations []string
	Trace      []string // the last events before the first violation (or the end)
	// Digest sums up the end state (every order as posd and the ledger
	// have it): the same seed gives the same digest.
	Digest string
}

// Failed reports whether an invariant broke.
func (r *Report) Failed() bool { return len(r.Violations) > 0 }

func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d: %d events, %s virtual, %d orders, %d crashes, %d restores, %d clock jumps (%d faults seen, %d future records), %d pruned, %d backdated taken for old, %d checks",
		r.Seed, r.Events, r.Virtual.Round(time.Second), r.Orders, r.Crashes, r.Restores, r.Jumps, r.ClockFaults, r.Futures, r.Pruned, r.Backdated, r.Checks)
	if r.Failed() {
		b.WriteString("\nVIOLATIONS:\n  " + strings.Join(r.Violations, "\n  "))
		b.WriteString("\nTRACE (last events):\n  " + strings.Join(r.Trace, "\n  "))
	}
	return b.String()
}

var lanes = []string{"L1", "L2", "L3"}

// world is the simulation: the gateway, one posd process at a time, and
// what the till, the customers and the operator know.
type world struct {
	cfg   Config
	rng   *rand.Rand
	gw    *Gateway
	posd  *process
	start time.Time
	seq   int // numbers the till's refund ids

	traceMu sync.Mutex
	trace   []string

	current   map[string]string   // lane -> the charge the till opened last
	charges   []string            // every charge opened
	codes     []string            // codes shown recently (rescans)
	inFlight  map[string]bool     // codes whose pay may have been cut short by a crash
	changed   map[string]struct{} // orders updated since the last check
	chMu      sync.Mutex
	backups   []string
	report    Report
	epochs    int
	restoring bool
	aborted   map[string]bool // charges the till stopped while paying
	// The till's refunds, and the mch_refund_id posd gave each (by
	// charge/id, and back).
	tillRefunds []tillRefund
	refundIDs   map[string]string
	refundOf    map[string]string
	// sales: the charge the till opened last for each of its sale ids
	// (lane/reference).
	sales map[string]string
	// backupDigests: the orders each backup holds (orderDigest).
	backupDigests map[string]string
	zlog          *zap.Logger
	covMu         sync.Mutex // Report.Reached, counted from the poller's goroutines

	// offset is how far posd's wall clock is off the true time (the
	// bubble's); read by the lanes' goroutines.
	offset                 atomic.Int64
	futures                atomic.Int64
	lastCheck, lastObserve time.Time
	// pub is what the head office holds, and backupPubs what it held when
	// each backup was taken; pruned are the orders pruning removed.
	pub        pubState
	backupPubs map[string]pubState
	pruned     map[string]bool
	// created is the true time each charge was opened; saleOf and keyOf
	// the sale (lane/reference) and the Idempotency-Key it was opened
	// for; keys what each key was opened with.
	created map[string]time.Time
	saleOf  map[string]string
	keyOf   map[string]string
	keys    map[string]lane.OpenRequest // Reference: the key's last charge
	keyList []string
}

// process is one run of posd, from boot to crash.
type process struct {
	j      *journal.Journal
	pol    *poller.Poller
	svc    *lane.Service
	hub    *display.Hub
	client *payment.Client
	subs   map[string]*display.Sub
	clk    *clock.Clock
	recon  *reconcile.Reconciler // started by the back office (startReconcile)
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	alive  atomic.Bool
}

// Run runs one simulation. It must be called inside a synctest bubble.
func Run(cfg Config) *Report {
	w := &world{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5151)),
		current: map[string]string{}, changed: map[string]struct{}{}, inFlight: map[string]bool{}, aborted: map[string]bool{},
		refundIDs: map[string]string{}, refundOf: map[string]string{}, backupDigests: map[string]string{}, sales: map[string]string{}, zlog: zap.NewNop(),
		pub: pubState{recs: map[string]published{}}, backupPubs: map[string]pubState{}, pruned: map[string]bool{},
		created: map[string]time.Time{}, saleOf: map[string]string{}, keyOf: map[string]string{}, keys: map[string]lane.OpenRequest{}}
	w.report.Seed, w.report.Reached = cfg.Seed, Coverage{}
	// The bubble's clock starts in 2000; the gateway wants this century's
	// time_start.
	time.Sleep(time.Until(time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)))
	w.gw = newGateway(cfg.Seed, w.log)
	w.start = time.Now()
	w.boot()
	defer func() {
		if w.posd != nil {
			w.crash()
		}
	}()
	for i := 0; i < cfg.Events && !w.failed(); i++ {
		w.report.Events++
		w.act()
		synctest.Wait()
		w.check()
	}
	if !w.failed() {
		w.heal()
	}
	w.report.Virtual = time.Since(w.start)
	w.report.Futures = int(w.futures.Load())
	w.report.Digest = w.digest()
	w.gw.mu.Lock()
	w.report.Orders = len(w.gw.payCount)
	w.gw.mu.Unlock()
	w.traceMu.Lock()
	w.report.Trace = slices.Clone(w.trace)
	w.traceMu.Unlock()
	return &w.report
}

func (w *world) failed() bool {
	w.gw.mu.Lock()
	defer w.gw.mu.Unlock()
	if len(w.gw.violations) > 0 {
		w.report.Violations = append(w.report.Violations, w.gw.violations...)
		w.gw.violations = nil
	}
	return len(w.report.Violations) > 0
}

func (w *world) violate(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	w.log("VIOLATION " + msg)
	w.report.Violations = append(w.report.Violations, msg)
}

func (w *world) log(s string) {
	w.traceMu.Lock()
	defer w.traceMu.Unlock()
	w.trace = append(w.trace, fmt.Sprintf("+%8.1fs %s", time.Since(w.start).Seconds(), s))
	if len(w.trace) > 150 && os.Getenv("POSD_SIM_TRACE") == "" {
		w.trace = w.trace[len(w.trace)-120:]
	}
}

func (w *world) journalPath() string { return filepath.Join(w.cfg.Dir, "journal.db") }

// epoch is the journal's run name, from the seed: a failing seed replays.
func (w *world) epoch() string {
	w.epochs++
	r := w.gw.rng("epoch", "", w.epochs)
	const chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	b := make([]byte, 6)
	for i := range b {
		b[i] = chars[r.IntN(len(chars))]
	}
	return string(b)
}

func (w *world) boot() {
	p := &process{subs: map[string]*display.Sub{}, done: make(chan struct{})}
	p.alive.Store(true)
	j, err := journal.OpenWith(w.journalPath(), journal.Options{NoSync: true, NoGroupCommit: true, Epoch: w.epoch, Witness: w.witnessPath()})
	if err != nil {
		panic(err)
	}
	p.j = j
	j.SetOutbox(true) // the head office's copy: checked at the end (checkOutbox)
	j.OutboxAcked(w.pub.seq)
	w.openClock(p)
	p.client, err = payment.NewClient(payment.ClientOptions{
		BaseURL: "http://127.0.0.1:9/", MerchantID: merchantID, Key: merchantKy,
		Timeout: 3 * time.Second, ConnectTimeout: time.Second,
		Transport: transport{g: w.gw, alive: p.alive.Load}, Probe: w.gw.probe(p.alive.Load),
	})
	if err != nil {
		panic(err)
	}
	p.hub = display.NewHub()
	for _, l := range lanes {
		p.subs[l] = p.hub.Subscribe(l, subDepth)
	}
	router, _ := scanner.NewRouter(scanner.DefaultWallets())
	lcs := w.laneConfigs()
	p.pol = poller.New(poller.Options{
		Gateway: p.client, Journal: j, Policy: poller.DefaultPolicy(), StoreID: "S1", ClientIP: "127.0.0.1",
		OnUpdate: func(o money.Order, st money.Settled) {
			w.chMu.Lock()
			w.changed[o.MchTradeID] = struct{}{}
			w.chMu.Unlock()
			p.svc.OrderUpdated(o, st)
		},
		OnJournalError: func(err error) { p.svc.JournalError(err) },
		OnStep:         func(b money.Order, r payment.Result, a money.Order) { w.reach(poller.TransitionOf(b, r, a)) },
	})
	p.svc = lane.New(lane.Options{Journal: j, Poller: p.pol, Hub: p.hub, Router: router, Lanes: lcs,
		StoreID: "S1", ClientIP: "127.0.0.1", DedupWindow: 10 * time.Second,
		Clock: p.clk, OnFuture: func(kind, id string, at time.Time) { w.futures.Add(1) }})
	p.client.OnLink(p.svc.GatewayState)
	if err := p.svc.Start(); err != nil {
		panic(err)
	}
	if w.restoring {
		// The till sees the lanes as the restored journal has them.
		for _, l := range lanes {
			if lv, _ := p.svc.Lane(l); lv.Charge != nil {
				w.current[l] = lv.Charge.Charge.ID
			} else {
				delete(w.current, l)
			}
		}
	}
	if j.Restored() {
		w.log("posd: JOURNAL RESTORED from an older copy")
	}
	if _, err := p.pol.Resume(time.Now()); err != nil {
		panic(err)
	}
	p.svc.ResumeAborts()
	ctx, cancel := context.WithCancel(context.Background())
	p.ctx, p.cancel = ctx, cancel
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pol.Run(ctx) }()
	go func() { defer wg.Done(); p.client.Watch(ctx, 5*time.Second) }()
	go func() { wg.Wait(); close(p.done) }()
	w.posd = p
	synctest.Wait()
	w.drain() // what Start shows is checked like everything else
	w.checkAll()
	w.prune("start")
}

// crash kills the process: nothing more is written or sent.
func (w *world) crash() {
	p := w.posd
	// Orders whose pay may be cut short: their codes stay burned, rightly.
	_ = p.j.View(func(tx *journal.Tx) error {
		return tx.EachOrder(func(o money.Order) error {
			if o.Phase == money.PhasePay {
				w.inFlight[o.CodeSHA256] = true
			}
			return nil
		})
	})
	p.alive.Store(false)
	p.j.Kill()
	p.cancel()
	if p.recon != nil {
		p.recon.Wait()
	}
	p.pol.Wait(0)
	<-p.done
	synctest.Wait()
	_ = p.j.Close()
	w.posd = nil
}

var fees = []int64{100, 1234, 1651, 500, 999}

func (w *world) digest() string {
	var lines []string
	if w.posd != nil {
		_ = w.posd.j.View(func(tx *journal.Tx) error {
			return tx.EachOrder(func(o money.Order) error {
				lines = append(lines, fmt.Sprintf("posd %s %s %s %d", o.MchTradeID, o.State, o.Phase, o.TotalFee))
				return nil
			})
		})
	}
	w.gw.mu.Lock()
	for id, o := range w.gw.orders {
		lines = append(lines, fmt.Sprintf("ledger %s %d %d %d", id, o.State, o.Charged, o.Refunded))
	}
	w.gw.mu.Unlock()
	slices.Sort(lines)
	h := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(h[:8])
}

// heal ends the faults and lets virtual hours pass: every order must then
// agree with the ledger, or need attention.
func (w *world) heal() {
	w.gw.mu.Lock()
	w.gw.faulty, w.gw.linkDown = false, false
	w.gw.mu.Unlock()
	// The few hostile orders stay so for five more hours: long enough for
	// posd's verifying of one to back off to its longest wait, which the
	// restores, every half hour or so, never leave time for.
	w.log("HEAL: faults off, link up; the hostile orders stay so for five virtual hours")
	for range 60 {
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		w.check()
		if w.failed() {
			return
		}
	}
	w.gw.mu.Lock()
	w.gw.calm = true
	w.gw.mu.Unlock()
	w.log("HEAL: no hostile orders either; three virtual hours pass")
	for range 36 {
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		w.check()
		if w.failed() {
			return
		}
	}
	w.checkAll()
	p := w.posd
	var paidPosd, chargedLedger, unseen int64
	_ = p.j.View(func(tx *journal.Tx) error {
		return tx.EachOrder(func(o money.Order) error {
			if o.Active() {
				w.violate("order %s still %s/%s three hours after the faults stopped", o.MchTradeID, o.Phase, o.State)
			}
			if !o.Final() {
				return nil
			}
			w.gw.mu.Lock()
			if lo := w.gw.orders[o.MchTradeID]; lo != nil && lo.CodeHash == o.CodeSHA256 {
				chargedLedger += lo.Charged
			}
			w.gw.mu.Unlock()
			if o.State == money.Paid {
				paidPosd += o.TotalFee - o.RefundedFee
				w.gw.mu.Lock()
				if lo := w.gw.orders[o.MchTradeID]; lo != nil {
					unseen += w.unseen(&o, lo)
				}
				w.gw.mu.Unlock()
			}
			return nil
		})
	})
	w.report.Checks++
	if paidPosd < chargedLedger || paidPosd > chargedLedger+unseen {
		w.violate("posd reports %d fen paid in total; the ledger holds %d charged for those orders (%d refunded under ids posd cannot know of)", paidPosd, chargedLedger, unseen)
	}
	// Nothing the gateway charged from this journal's lineage is unknown to posd.
	w.gw.mu.Lock()
	defer w.gw.mu.Unlock()
	for id, lo := range w.gw.orders {
		if lo.generation != w.gw.generation || lo.Charged == 0 {
			continue
		}
		found := false
		_ = p.j.View(func(tx *journal.Tx) error { _, found, _ = tx.Order(id); return nil })
		if !found && !w.pruned[id] {
			w.violate("the gateway charged %s, which posd lost", id)
		}
	}
	w.checkOutbox()
}
