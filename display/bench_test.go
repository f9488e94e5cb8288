package display

import (
	"context"
	"io"
	"slices"
	"sync"
	"testing"
	"time"
)

type stamp struct {
	mu   sync.Mutex
	seen map[uint64]time.Time
}

func (s *stamp) Show(e Event) error {
	s.mu.Lock()
	s.seen[e.Seq] = time.Now()
	s.mu.Unlock()
	return nil
}

type deadDisplay struct{ block chan struct{} }

func (d deadDisplay) Show(Event) error { <-d.block; return nil }

// BenchmarkFanOut: a result published to a lane with a terminal, a pole
// display, a healthy device and a dead one that never returns. Reports how
// long Publish takes (the payment's share) and how late the result reaches
// the healthy display.
func BenchmarkFanOut(b *testing.B) {
	h := NewHub()
	ctx, cancel := context.WithCancel(context.Background())
	dead := deadDisplay{block: make(chan struct{})}
	st := &stamp{seen: map[uint64]time.Time{}}
	for _, d := range []Display{&Terminal{W: io.Discard}, &VFD{W: io.Discard, Encoding: "ascii"}, st, dead} {
		go RunDevice(ctx, h, "L1", d, time.Second, 0, nil)
	}
	time.Sleep(10 * time.Millisecond) // subscribed
	var pub, reach []time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		e := h.Publish(Event{Lane: "L1", Kind: Paid, TotalFee: int64(i)})
		pub = append(pub, time.Since(t0))
		for {
			st.mu.Lock()
			t, ok := st.seen[e.Seq]
			st.mu.Unlock()
			if ok {
				reach = append(reach, t.Sub(t0))
				break
			}
			time.Sleep(10 * time.Microsecond)
		}
	}
	b.StopTimer()
	cancel()
	close(dead.block)
	slices.Sort(pub)
	slices.Sort(reach)
	b.ReportMetric(float64(pub[len(pub)*99/100].Nanoseconds())/1000, "publish-p99-µs")
	b.ReportMetric(float64(reach[len(reach)*99/100].Nanoseconds())/1000, "reach-p99-µs")
}
