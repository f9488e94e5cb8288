package display

import (
	"bytes"
	"context"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"posd/internal/device"
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
type fakeLP struct {
	class   atomic.Int32
	gone    atomic.Bool
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
		c.answers <- 0x12
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
