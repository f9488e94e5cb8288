package daemon

import (
	"context"
	"time"

	"go.uber.org/zap"

	"example.com/posd/internal/clock"
	"example.com/posd/payment"
)

// ObserveEvery is how often the time posd has seen pass is written to the
// journal (and at a stop): a crash costs at most this much of it, which
// the next start takes as time the box was off.
const ObserveEvery = 5 * time.Minute

// clockCheckEvery is how often the wall clock is compared with the
// monotonic one.
const clockCheckEvery = 10 * time.Second

// openClock starts posd's clock from the journal (clock.Open). A damaged
// journal is read as little as can be: it takes no payment anyway.
func (d *Daemon) openClock() {
	if d.damaged {
		d.clock = clock.New(time.Time{}, d.tio.Wall)
		return
	}
	var err error
	if d.clock, err = clock.Open(d.journal, d.tio.Wall); err != nil {
		d.log.Warn("journal: observed time not read; the clock starts from the wall clock", zap.Error(err))
	}
	for _, f := range d.clock.Faults() {
		d.clockFault(f)
	}
	d.saveClock()
}

// saveClock writes what the next start resumes from.
func (d *Daemon) saveClock() {
	if err := d.clock.Save(d.journal); err != nil {
		d.log.Warn("journal: observed time not written", zap.Error(err))
	}
}

// clockFault says a fault where operators look: the log and /metrics
// (/healthz reads the clock itself).
func (d *Daemon) clockFault(f clock.Fault) {
	d.metrics.clockJumps.WithLabelValues(f.When, f.Way).Inc()
	d.log.Error("CLOCK FAULT: records dated in the future bind nothing and pruning goes by the time posd measured; set the clock right (timedatectl, NTP)",
		zap.String("when", f.When), zap.String("direction", f.Way), zap.Duration("offset", f.Offset), zap.String("reason", f.Reason))
}

// watchClock compares the wall clock with the monotonic one every few
// seconds, and writes the observed time to the journal now and then and
// when posd stops.
func (d *Daemon) watchClock(ctx context.Context) {
	check := time.NewTicker(clockCheckEvery)
	defer check.Stop()
	observe := time.NewTicker(ObserveEvery)
	defer observe.Stop()
	for {
		select {
		case <-ctx.Done():
			d.saveClock()
			return
		case <-check.C:
			if f, ok := d.clock.Check(); ok {
				d.clockFault(f)
			}
		case <-observe.C:
			d.saveClock()
		}
	}
}

// gatewayTime hands the clock the time a pay just answered "paid" says the
// payment completed: the gateway's word confirms the wall clock, or shows
// it wrong.
func (d *Daemon) gatewayTime(c payment.Call, r payment.Result) {
	if c != payment.CallPay || r.Outcome != payment.Paid {
		return
	}
	if t, ok := r.Detail.Completed(); ok {
		if f, bad := d.clock.Gateway(t); bad {
			d.clockFault(f)
		}
	}
}
