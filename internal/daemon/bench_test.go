package daemon

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"go.uber.org/zap"

	"example.com/posd/internal/config"
	"example.com/posd/internal/journal"
	"example.com/posd/internal/journal/journaltest"
	"example.com/posd/internal/money"
	"example.com/posd/internal/natstest"
	"example.com/posd/payment/sandbox"
)

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// BenchmarkScanToPay measures, through the whole daemon, from the scanner's
// terminator (the newline written to the stdin scanner) to the pay request
// arriving at a loopback sandbox. The journal's fsync sits on this path.
// The lane also has a pole display that is not there (dead): it must add
// nothing. result-shown is from the gateway's paid answer to the display
// showing PAID. dispatch-own is from the terminator to the moment the pay
// is dispatched (its journal commit returned), less that commit.
func BenchmarkScanToPay(b *testing.B) {
	b.Run("stdin", func(b *testing.B) { benchScanToPay(b, false, fleetOff) })
	b.Run("serial-pty", func(b *testing.B) { benchScanToPay(b, true, fleetOff) })
	// The outbox written in the scan's transaction, and the publisher
	// sending it to a real JetStream meanwhile (no cost
	// measurable).
	b.Run("stdin-fleet", func(b *testing.B) { benchScanToPay(b, false, fleetBroker) })
	// The outbox alone: the broker cannot be reached (a store offline).
	b.Run("stdin-outbox", func(b *testing.B) { benchScanToPay(b, false, fleetNoBroker) })
	// The same at a cashier's pace rather than back to back: the next scan
	// comes 20 ms after the last result was shown, not while the publisher
	// (and the broker, on this machine's two cores) still send its changes.
	b.Run("stdin-paced", func(b *testing.B) { benchScanToPay(b, false, fleetOff|paced) })
	b.Run("stdin-fleet-paced", func(b *testing.B) { benchScanToPay(b, false, fleetBroker|paced) })
}

const (
	fleetOff      = 0
	fleetBroker   = 1
	fleetNoBroker = 2
	paced         = 4
)

func benchScanToPay(b *testing.B, serial bool, fleet int) {
	arrived := make(chan time.Time, 1)
	answered := make(chan time.Time, 1)
	sb := sandbox.New(sandbox.Options{})
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/pay" {
			arrived <- time.Now()
		}
		sb.ServeHTTP(w, r)
		if r.URL.Path == "/pay" {
			answered <- time.Now() // the order is final at the gateway
		}
	}))
	defer gw.Close()

	dir := b.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte(sandbox.Key), 0o600); err != nil {
		b.Fatal(err)
	}
	inR, inW := io.Pipe()
	var codeW io.Writer = inW
	scannerYAML := "{type: stdin}"
	if serial {
		m, sl, err := pty.Open()
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		defer sl.Close()
		codeW, scannerYAML = m, "{type: serial, port: "+sl.Name()+", baud: 115200}"
	}
	fleetYAML := ""
	switch fleet &^ paced {
	case fleetBroker:
		// POSD_BENCH_NATS: a broker in another process (as in a store,
		// where it is another machine), e.g. started with
		// go run github.com/nats-io/nats-server/v2 -js -p 4333 -sd /dev/shm/nats
		url := os.Getenv("POSD_BENCH_NATS")
		if url == "" {
			url = natstest.Start(b).URL()
		}
		natstest.Stream(b, url, "POSD", "posd")
		fleetYAML = "fleet: {url: \"" + url + "\"}"
	case fleetNoBroker:
		fleetYAML = "fleet: {url: \"nats://127.0.0.1:9\"}"
	}
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
merchant: {id: %s, key_file: %s}
gateway: {url: "%s/"}
journal: {path: %s}
api: {listen: "unix:%s"}
scan: {duplicate_window: 1ms}
%s
lanes:
  - id: L1
    device_info: POS01
    fixed_fee: 1
    subject: bench
    body: bench
    scanners: [%s]
    displays:
      - {type: terminal}
      - {type: vfd, port: /dev/posd-bench-dead-display}
`, sandbox.MerchantID, keyFile, gw.URL, filepath.Join(dir, "j.db"), filepath.Join(dir, "api.sock"), fleetYAML, scannerYAML)))
	if err != nil {
		b.Fatal(err)
	}
	outR, outW := io.Pipe()
	paid := make(chan time.Time, 1)
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "PAID") {
				paid <- time.Now()
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *journal.Journal, 1)
	done := make(chan error)
	go func() {
		done <- run(ctx, cfg, zap.NewNop(), IO{Stdin: inR, Stdout: outW}, func(_ string, j *journal.Journal) { ready <- j })
	}()
	j := <-ready
	time.Sleep(100 * time.Millisecond) // the serial port is open

	lat := make([]time.Duration, 0, b.N)
	own := make([]time.Duration, 0, b.N)
	sync := make([]time.Duration, 0, b.N)
	shown := make([]time.Duration, 0, b.N)
	dispatch := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		code := fmt.Sprintf("28%014d%02d", i, i%80)
		j0 := j.UpdateTime()
		if _, err := io.WriteString(codeW, code); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if _, err := io.WriteString(codeW, "\n"); err != nil {
			b.Fatal(err)
		}
		d := (<-arrived).Sub(t0)
		fs := j.UpdateTime() - j0 // the one Update of this scan: order, code index, charge
		lat, sync, own = append(lat, d), append(sync, fs), append(own, d-fs)
		dispatch = append(dispatch, j.LastUpdate().Sub(t0)-fs)
		final := <-answered
		shown = append(shown, (<-paid).Sub(final))
		if fleet&paced != 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	b.StopTimer()
	cancel()
	inW.Close()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	outW.Close()
	b.ReportMetric(float64(percentile(lat, 0.50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds()), "p99-µs")
	b.ReportMetric(float64(percentile(sync, 0.99).Microseconds()), "fsync-p99-µs")
	b.ReportMetric(float64(percentile(own, 0.50).Microseconds()), "own-p50-µs")
	b.ReportMetric(float64(percentile(own, 0.99).Microseconds()), "own-p99-µs")
	b.ReportMetric(float64(percentile(shown, 0.99).Microseconds())/1000, "result-shown-p99-ms")
	b.ReportMetric(float64(percentile(dispatch, 0.99).Microseconds()), "dispatch-own-p99-µs")
}

// BenchmarkJournalFsync is the journal's own cost on the scan path: one
// order written and fsync'd. With the outbox on (its cost on the
// scan path must not be measurable), each write also adds its entry, and
// removes the entries the broker acknowledged since the last write:
// "outbox" acknowledges each write's entry before the next, as a publisher
// that keeps up does; "outbox-backlog" never does (the broker away).
func BenchmarkJournalFsync(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchJournalFsync(b, false, false) })
	b.Run("outbox", func(b *testing.B) { benchJournalFsync(b, true, true) })
	b.Run("outbox-backlog", func(b *testing.B) { benchJournalFsync(b, true, false) })
}

func benchJournalFsync(b *testing.B, outbox, acked bool) {
	j := journaltest.Open(b)
	j.SetOutbox(outbox)
	o := money.NewOrder(money.Order{TotalFee: 1, Subject: "bench", Body: "bench", DeviceInfo: "POS01", AuthCode: "282941234567890123"}, time.Now())
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		o.MchTradeID = fmt.Sprintf("S001_POS01_BENCH%d", i)
		t0 := time.Now()
		if err := j.Update(func(tx *journal.Tx) error {
			if _, err := tx.NextSeq(); err != nil {
				return err
			}
			return saveOrder(tx, o)
		}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
		if acked {
			ackOutbox(b, j)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(percentile(lat, 0.50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds()), "p99-µs")
}

// ackOutbox acknowledges what waits in the outbox, as the publisher does
// on the broker's ack: the next write removes it.
func ackOutbox(b *testing.B, j *journal.Journal) {
	err := j.View(func(tx *journal.Tx) error {
		es, err := tx.Outbox(1000)
		if len(es) > 0 {
			j.OutboxAcked(es[len(es)-1].Seq)
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}

// saveOrder journals an order as a step would.
func saveOrder(tx *journal.Tx, o money.Order) error {
	_, err := tx.SaveStep(&o, time.Now())
	return err
}
