package display

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"example.com/posd/internal/device"
)

type memQueue struct {
	mu sync.Mutex
	rs []Receipt
}

func (q *memQueue) Add(_ string, r Receipt) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.rs = append(q.rs, r)
	return nil
}

func (q *memQueue) List(string) ([]Receipt, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]Receipt(nil), q.rs...), nil
}

func (q *memQueue) Remove(_ string, id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, r := range q.rs {
		if r.ID == id {
			q.rs = append(q.rs[:i], q.rs[i+1:]...)
			break
		}
	}
	return nil
}

// fakeLP is a usblp printer: it answers DLE EOT with 0x12 (ready) and
// has a printer-class status byte; gone makes every call fail ENODEV.
// eot1 and eot2, when set, are its answers to DLE EOT 1 and DLE EOT 2
// (-1: no answer); asked2 counts the DLE EOT 2 requests.
type fakeLP struct {
	class   atomic.Int32
	gone    atomic.Bool
	eot1    atomic.Int32
	eot2    atomic.Int32
	asked2  atomic.Int32
	mu      sync.Mutex
	printed bytes.Buffer
	answers chan byte
	closed  chan struct{}
	once    sync.Once
}

func newFakeLP(lp *fakeLP) *fakeLP {
	c := &fakeLP{answers: make(chan byte, 16), closed: make(chan struct{})}
	c.class.Store(lp.class.Load())
	return c
}

func (c *fakeLP) Read(b []byte) (int, error) {
	select {
	case a := <-c.answers:
		b[0] = a
		return 1, nil
	case <-c.closed:
		return 0, io.ErrClosedPipe
	}
}

func (c *fakeLP) Write(b []byte) (int, error) {
	if c.gone.Load() {
		return 0, syscall.ENODEV
	}
	if len(b) == 3 && b[0] == 0x10 && b[1] == 0x04 {
		var a int32
		switch b[2] {
		case 1:
			a = c.eot1.Load()
		case 2:
			c.asked2.Add(1)
			a = c.eot2.Load()
		}
		switch a {
		case -1:
		case 0:
			c.answers <- 0x12
		default:
			c.answers <- byte(a)
		}
		return 3, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.printed.Write(b)
}

func (c *fakeLP) Close() error { c.once.Do(func() { close(c.closed) }); return nil }

func (c *fakeLP) PrinterStatus() (byte, error) {
	if c.gone.Load() {
		return 0, syscall.ENODEV
	}
	return byte(c.class.Load()), nil
}

func (c *fakeLP) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.printed.String()
}

type reports struct {
	mu   sync.Mutex
	last string
}

func (r *reports) report(s device.State, d string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = string(s) + " " + d
}

func (r *reports) get() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

func waitUntil(t *testing.T, what string, f func() bool) {
	t.Helper()
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if f() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestPrinterClassStatus(t *testing.T) {
	var mu sync.Mutex
	conns := []*fakeLP{}
	proto := &fakeLP{}
	proto.class.Store(0x18)
	plugged := atomic.Bool{}
	plugged.Store(true)
	var opens atomic.Int32
	cur := func() *fakeLP { mu.Lock(); defer mu.Unlock(); return conns[len(conns)-1] }
	rep := &reports{}
	q := &memQueue{}
	p := &Printer{Name: "p", Report: rep.report, Queue: q, Store: "S", Width: 32,
		StatusTimeout: 200 * time.Millisecond, Retry: 50 * time.Millisecond,
		Open: func() (io.ReadWriteCloser, error) {
			opens.Add(1)
			if !plugged.Load() {
				return nil, device.ErrNotFound
			}
			c := newFakeLP(proto)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			return c, nil
		}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)
	waitUntil(t, "connected", func() bool { return rep.get() == "connected ok" })

	// Paper out on the printer-class status, DLE EOT still ready: held.
	proto.class.Store(0x30)
	cur().class.Store(0x30)
	waitUntil(t, "out of paper while idle", func() bool { return rep.get() == "degraded out of paper" })
	if err := p.Show(Event{Kind: Paid, MchTradeID: "M1", TradeID: "T1", TotalFee: 1234, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if rs, _ := q.List("p"); len(rs) != 1 || bytes.Contains([]byte(cur().text()), []byte("T1")) {
		t.Fatalf("printed while out of paper: %d queued, %q", len(rs), cur().text())
	}
	// Not selected: offline.
	cur().class.Store(0x08)
	waitUntil(t, "offline", func() bool { return rep.get() == "degraded offline" })
	// Paper back: printed.
	cur().class.Store(0x18)
	waitUntil(t, "receipt printed", func() bool { rs, _ := q.List("p"); return len(rs) == 0 })
	if !bytes.Contains([]byte(cur().text()), []byte("Trade T1")) {
		t.Fatalf("receipt: %q", cur().text())
	}
	waitUntil(t, "connected", func() bool { return rep.get() == "connected ok" })

	// Unplugged while idle: gone, without a receipt.
	proto.class.Store(0x18)
	plugged.Store(false)
	cur().gone.Store(true)
	waitUntil(t, "gone while idle", func() bool { return rep.get() == "gone device not found" })
	// Plugged back: a receipt prints on the new port; an I/O error on the
	// old one reopens at once.
	plugged.Store(true)
	waitUntil(t, "back", func() bool { return rep.get() == "connected ok" })
	n := opens.Load()
	cur().gone.Store(true) // the old node died; a new one is there
	if err := p.Show(Event{Kind: Paid, MchTradeID: "M2", TradeID: "T2", TotalFee: 1, Seq: 2}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "second receipt", func() bool { return bytes.Contains([]byte(cur().text()), []byte("Trade T2")) })
	if got := opens.Load() - n; got != 1 {
		t.Fatalf("reopened %d times, want once", got)
	}
}

func TestWithClassStatus(t *testing.T) {
	ok := ParseStatus(0x12, 0x12)
	for _, c := range []struct {
		st    PrinterStatus
		class byte
		want  string
	}{
		{ok, 0x18, "ok"},
		{ok, 0x38, "out of paper"},
		{ok, 0x08, "offline"},
		{PrinterStatus{Reason: "no answer"}, 0x30, "out of paper"},
		{PrinterStatus{Reason: "no answer"}, 0x18, "unknown: no answer"},
	} {
		if got := WithClassStatus(c.st, c.class).String(); got != c.want {
			t.Errorf("%v %#02x: %q, want %q", c.st, c.class, got, c.want)
		}
	}
}

// startFakePrinter runs a printer on one fakeLP (printer-class status
// selected, paper in) until the test ends.
func startFakePrinter(t *testing.T) (*Printer, *fakeLP, *memQueue, *reports) {
	t.Helper()
	lp := newFakeLP(&fakeLP{})
	lp.class.Store(0x18)
	rep, q := &reports{}, &memQueue{}
	p := &Printer{Name: "p", Report: rep.report, Queue: q, Store: "S", Width: 32,
		StatusTimeout: 100 * time.Millisecond, Retry: 20 * time.Millisecond,
		Open: func() (io.ReadWriteCloser, error) { return lp, nil }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitUntil(t, "connected", func() bool { return rep.get() == "connected ok" })
	return p, lp, q, rep
}

func TestPrinterCoverOpen(t *testing.T) {
	p, lp, q, rep := startFakePrinter(t)
	if n := lp.asked2.Load(); n != 0 {
		t.Fatalf("DLE EOT 2 asked %d times of an online printer", n)
	}
	// Offline (DLE EOT 1 bit 3), cover open (DLE EOT 2 bit 2): held.
	lp.eot2.Store(0x16)
	lp.eot1.Store(0x1a)
	waitUntil(t, "cover open", func() bool { return rep.get() == "degraded cover open" })
	n := lp.asked2.Load()
	if err := p.Show(Event{Kind: Paid, MchTradeID: "M1", TradeID: "T1", TotalFee: 1234, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	// Three more status rounds: at least one listed the queue after Show
	// and decided, and the next one started.
	waitUntil(t, "status rounds", func() bool { return lp.asked2.Load() >= n+3 })
	if rs, _ := q.List("p"); len(rs) != 1 || strings.Contains(lp.text(), "T1") {
		t.Fatalf("printed with the cover open: %d queued, %q", len(rs), lp.text())
	}
	if got := rep.get(); got != "degraded cover open" {
		t.Fatalf("report %q", got)
	}
	// Cover closed: online again, the receipt prints.
	lp.eot1.Store(0)
	waitUntil(t, "receipt printed", func() bool { rs, _ := q.List("p"); return len(rs) == 0 })
	if !strings.Contains(lp.text(), "Trade T1") {
		t.Fatalf("receipt: %q", lp.text())
	}
	waitUntil(t, "connected", func() bool { return rep.get() == "connected ok" })
}

func TestPrinterOfflineCauseUnknown(t *testing.T) {
	_, lp, _, rep := startFakePrinter(t)
	for _, answer := range []int32{0xff, 0x16 | 0x80, -1} { // not 0xx1xx10, or none at all
		lp.eot2.Store(answer)
		lp.eot1.Store(0x1a)
		n := lp.asked2.Load()
		waitUntil(t, "status rounds", func() bool { return lp.asked2.Load() >= n+2 })
		waitUntil(t, "offline", func() bool { return rep.get() == "degraded offline" })
		lp.eot1.Store(0)
		waitUntil(t, "connected", func() bool { return rep.get() == "connected ok" })
	}
}

func TestWithOfflineCause(t *testing.T) {
	offline := ParseStatus(0x1a, 0x12)
	for _, c := range []struct {
		st    PrinterStatus
		cause byte
		want  string
		cover bool
	}{
		{offline, 0x16, "cover open", true},
		{offline, 0x56, "cover open", true}, // cover open and an error
		{offline, 0x32, "offline: paper end", false},
		{offline, 0x52, "offline: error", false},
		{offline, 0x12, "offline", false},
		{offline, 0xff, "offline", false},
		{offline, 0x04, "offline", false},
		{ParseStatus(0x12, 0x12), 0x16, "ok", false}, // an online printer has no offline cause
		{PrinterStatus{Reason: "no answer"}, 0x16, "unknown: no answer", false},
	} {
		st := WithOfflineCause(c.st, c.cause)
		if got := st.String(); got != c.want {
			t.Errorf("%v %#02x: %q, want %q", c.st, c.cause, got, c.want)
		}
		if st.CoverOpen != c.cover {
			t.Errorf("%v %#02x: CoverOpen %v", c.st, c.cause, st.CoverOpen)
		}
		if st.OK() != (c.want == "ok") {
			t.Errorf("%v %#02x: OK %v", c.st, c.cause, st.OK())
		}
	}
	// The printer-class status keeps the cause.
	if got := WithClassStatus(WithOfflineCause(offline, 0x16), 0x08).String(); got != "cover open" {
		t.Errorf("with class status: %q", got)
	}
}
