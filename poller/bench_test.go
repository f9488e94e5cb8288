package poller

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"example.com/posd/internal/journal"
	"example.com/posd/internal/journal/journaltest"
	"example.com/posd/internal/money"
	"example.com/posd/payment"
	"example.com/posd/payment/sandbox"
	"example.com/posd/payment/sandbox/sandboxtest"
)

func rssKB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

// BenchmarkPoller10k: 10,000 unresolved orders in the poller at once, as on
// a store server after an outage, queried every 5 s over real HTTP against
// a loopback sandbox in another process, reversed
// after 3 queries and confirmed. It reports how late calls start against
// their schedule and the peak resident memory. Run with -benchtime 1x.
func BenchmarkPoller10k(b *testing.B) {
	const n = 10_000
	policy := DefaultPolicy()
	policy.QueryAttempts = 3
	url := sandboxtest.Start(b)
	client, err := payment.NewClient(payment.ClientOptions{BaseURL: url, MerchantID: sandbox.MerchantID, Key: sandbox.Key})
	if err != nil {
		b.Fatal(err)
	}
	j := journaltest.Open(b)

	// The orders exist at the gateway (paying forever) and in the journal,
	// each in its query phase, due over the next interval.
	now := time.Now()
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	orders := make([]money.Order, n)
	for i := range orders {
		o := money.NewOrder(money.Order{MchTradeID: fmt.Sprintf("BENCH_%06d", i), TotalFee: 100, DeviceInfo: "POS01",
			PayType: "alipay.micro", Subject: "s", Body: "b", ClientIP: "127.0.0.1",
			AuthCode: fmt.Sprintf("28%014d81", i)}, now)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			client.Pay(context.Background(), &payment.PayRequest{MchTradeID: o.MchTradeID, PayType: o.PayType,
				DeviceInfo: o.DeviceInfo, Subject: o.Subject, Body: o.Body, TotalFee: o.TotalFee,
				SpbillCreateIP: o.ClientIP, AuthCode: o.AuthCode})
		}()
		o.AuthCode, o.Phase = "", money.PhaseQuery
		orders[i] = o
	}
	wg.Wait()
	start := time.Now().Add(time.Second)
	for i := range orders {
		orders[i].NextAt = start.Add(time.Duration(rand.Int64N(int64(policy.QueryInterval))))
	}
	for chunk := range slices.Chunk(orders, 500) {
		if err := j.Update(func(tx *journal.Tx) error {
			for _, o := range chunk {
				if err := saveOrder(tx, o); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	orders = nil
	// What the setup allocated is not the poller's. posd runs with a soft
	// memory limit (cmd/posd: memoryLimit, 40 MiB); so does this measurement.
	debug.SetMemoryLimit(40 << 20)
	debug.FreeOSMemory()

	var mu sync.Mutex
	var late []time.Duration
	finished := make(chan struct{}, n)
	p := New(Options{Gateway: client, Journal: j, Policy: policy,
		OnDispatch: func(d time.Duration) { mu.Lock(); late = append(late, d); mu.Unlock() },
		OnUpdate: func(o money.Order, _ money.Settled) {
			if o.Final() {
				finished <- struct{}{}
			}
		}})
	b.ResetTimer()
	if _, err := p.Resume(time.Now()); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go p.Run(ctx)
	var peak int64
	var ms runtime.MemStats
	tick := time.NewTicker(100 * time.Millisecond)
	for done := 0; done < n; {
		select {
		case <-finished:
			done++
		case <-tick.C:
			if r := rssKB(); r > peak {
				peak = r
				runtime.ReadMemStats(&ms)
			}
		case <-time.After(2 * time.Minute):
			b.Fatalf("only %d of %d orders final", done, n)
		}
	}
	tick.Stop()
	cancel()
	p.Wait(5 * time.Second)
	b.StopTimer()

	mu.Lock()
	defer mu.Unlock()
	slices.Sort(late)
	pct := func(q float64) float64 {
		return float64(late[min(len(late)-1, int(float64(len(late))*q))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(late)), "calls")
	b.ReportMetric(pct(0.50), "p50-late-ms")
	b.ReportMetric(pct(0.99), "p99-late-ms")
	b.ReportMetric(float64(late[len(late)-1].Microseconds())/1000, "max-late-ms")
	b.ReportMetric(float64(peak)/1024, "peak-rss-MB")
	b.ReportMetric(float64(ms.HeapSys)/(1<<20), "heap-sys-MB")
	b.ReportMetric(float64(j.Size())/(1<<20), "journal-MB")
}

func TestMain(m *testing.M) {
	sandboxtest.ServeIfChild()
	// Every goroutine the package starts must end with the test that
	// started it.
	goleak.VerifyTestMain(m)
}
