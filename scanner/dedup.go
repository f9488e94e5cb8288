package scanner

import (
	"sync"
	"time"
)

// Dedup makes the same code scanned twice within a window one scan: a
// scanner that reads a phone screen twice must not start a second payment.
type Dedup struct {
	window time.Duration
	mu     sync.Mutex
	seen   map[string]time.Time
}

// NewDedup returns a window of the given length.
func NewDedup(window time.Duration) *Dedup {
	return &Dedup{window: window, seen: map[string]time.Time{}}
}

// Seen reports whether code was taken (Add) within the window before now.
func (d *Dedup) Seen(code string, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.seen[code]
	return ok && now.Sub(t) <= d.window
}

// Add records that code was taken at now. Only a scan that started a
// payment is added: one refused (no charge open yet) may be scanned again.
func (d *Dedup) Add(code string, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for c, t := range d.seen {
		if now.Sub(t) > d.window {
			delete(d.seen, c)
		}
	}
	d.seen[code] = now
}

// Forget drops the codes match picks: a code whose pay never left the box
// may be scanned again at once.
func (d *Dedup) Forget(match func(code string) bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for c := range d.seen {
		if match(c) {
			delete(d.seen, c)
		}
	}
}
