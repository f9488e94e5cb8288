package display

import (
	"context"
	"io"
	"time"

	"posd/internal/device"
)

// Report is how a device tells its health.
type Report func(device.State, string)

// VFDDevice is a pole display on a port that may come and go. Show and
// Retry run on the display's own goroutine (Run): a gone device costs the
// payment nothing.
type VFDDevice struct {
	VFD    VFD
	Open   device.Opener
	Report Report

	conn io.ReadWriteCloser
	last *Event
}

// Show paints e, opening the port first if needed.
func (d *VFDDevice) Show(e Event) error {
	d.last = &e
	if d.conn == nil {
		c, err := d.Open()
		if err != nil {
			d.Report(device.StateOf(err), err.Error())
			return err
		}
		d.conn = c
		d.VFD.Reset()
		d.VFD.W = c
		d.Report(device.Connected, "")
	}
	if err := d.VFD.Show(e); err != nil {
		d.Close()
		d.Report(device.Gone, err.Error())
		return err
	}
	return nil
}

// Retry repaints the last event on a display that was gone.
func (d *VFDDevice) Retry() error {
	if d.conn != nil || d.last == nil {
		return nil
	}
	return d.Show(*d.last)
}

// Close closes the port.
func (d *VFDDevice) Close() {
	if d.conn != nil {
		d.conn.Close()
		d.conn = nil
	}
}

// Retrier is a display that can try again after a failure.
type Retrier interface{ Retry() error }

// RunDevice is Run for a display that may fail: while its last Show
// failed, Retry is called every retry interval.
func RunDevice(ctx context.Context, h *Hub, lane string, d Display, retry time.Duration, onErr func(error)) {
	s := h.Subscribe(lane, 16)
	defer h.Unsubscribe(s)
	if c, ok := d.(interface{ Close() }); ok {
		defer c.Close()
	}
	r, _ := d.(Retrier)
	t := time.NewTicker(retry)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-s.C():
			err := d.Show(e)
			if err != nil && !failing && onErr != nil {
				onErr(err)
			}
			failing = err != nil
		case <-t.C:
			if failing && r != nil {
				failing = r.Retry() != nil
			}
		}
	}
}
