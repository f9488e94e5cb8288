package display

import (
	"context"
	"errors"
	"io"
	"time"

	"example.com/posd/internal/device"
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

	conn     io.ReadWriteCloser
	last     *Event
	nextOpen time.Time
}

// errDown: the display is gone and its next try has not come yet.
var errDown = errors.New("display gone; retrying")

// Show paints e, opening the port first if needed. A display that is gone
// is tried again at most once a second (and by Retry): it costs a lane
// nothing while it is away.
func (d *VFDDevice) Show(e Event) error {
	if e.Kind == Device || e.Kind == Reprint {
		return nil // for the cashier, not the customer
	}
	d.last = &e
	if d.conn == nil {
		if time.Now().Before(d.nextOpen) {
			return errDown
		}
		c, err := d.Open()
		if err != nil {
			d.nextOpen = time.Now().Add(time.Second)
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
	d.nextOpen = time.Time{}
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

// RunDevice feeds a display from its own queue until ctx ends. While its
// last Show failed, Retry is called every retry interval. A result (paid,
// declined, …) stays on screen for hold before an idle screen replaces
// it, so the customer sees it; a new charge replaces it at once.
func RunDevice(ctx context.Context, h *Hub, lane string, d Display, retry, hold time.Duration, onErr func(error)) {
	s := h.Subscribe(lane, 16)
	defer h.Unsubscribe(s)
	if c, ok := d.(interface{ Close() }); ok {
		defer c.Close()
	}
	r, _ := d.(Retrier)
	t := time.NewTicker(retry)
	defer t.Stop()
	holdT := time.NewTimer(time.Hour)
	holdT.Stop()
	var (
		failing   bool
		holdUntil time.Time
		pending   *Event
	)
	show := func(e Event) {
		err := d.Show(e)
		if err != nil && !failing && onErr != nil {
			onErr(err)
		}
		failing = err != nil
		pending = nil
		if hold > 0 && isResult(e.Kind) {
			holdUntil = time.Now().Add(hold)
			holdT.Reset(hold)
			if e.Kind.Moment() {
				// A refusal is a moment: then the lane's state again.
				if last, ok := h.Last(lane); ok {
					pending = &last
				}
			}
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-s.C():
			if e.Kind == LateResult {
				continue // the lane has moved on: for the till only
			}
			if time.Now().Before(holdUntil) && (e.Kind == Idle || e.Kind == AwaitingScan && e.ChargeID == "") {
				pending = &e
				continue
			}
			holdUntil = time.Time{}
			show(e)
		case <-holdT.C:
			holdUntil = time.Time{}
			if pending != nil {
				show(*pending)
			}
		case <-t.C:
			if failing && r != nil {
				failing = r.Retry() != nil
			}
		}
	}
}

func isResult(k Kind) bool {
	switch k {
	case Paid, Declined, Refunded, Canceled, Rejected, NeedsAttention, Offline:
		return true
	}
	return false
}
