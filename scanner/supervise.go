package scanner

import (
	"context"
	"io"
	"math/rand/v2"
	"time"

	"example.com/posd/internal/device"
)

// Report is how a source tells its device's health.
type Report func(device.State, string)

// Backoff is the capped, jittered wait between attempts to find a device
// again.
type Backoff struct {
	Min, Max time.Duration
}

func (b Backoff) next(prev time.Duration) time.Duration {
	if b.Min <= 0 {
		b.Min = time.Second
	}
	if b.Max < b.Min {
		b.Max = 3 * time.Second
	}
	d := max(prev*2, b.Min)
	d = min(d, b.Max)
	// ±20% so that a lane's devices do not retry in step.
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// supervise owns one device: open, serve until it fails, close, find it
// again after a backoff, until ctx ends. Closing the device is what ends a
// blocked read, both on error and on ctx.
func supervise(ctx context.Context, open func() (io.ReadCloser, error), serve func(context.Context, io.Reader) error,
	report Report, b Backoff) error {
	if report == nil {
		report = func(device.State, string) {}
	}
	wait := time.Duration(0)
	for {
		dev, err := open()
		if err == nil {
			wait = 0
			report(device.Connected, "")
			stop := context.AfterFunc(ctx, func() { dev.Close() })
			err = serve(ctx, dev)
			stop()
			dev.Close()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		state := device.StateOf(err)
		detail := "closed"
		if err != nil {
			detail = err.Error()
		}
		report(state, detail)
		wait = b.next(wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}
