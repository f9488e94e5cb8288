package daemon

import (
	"example.com/posd/internal/fleet/wire"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"example.com/posd/internal/config"
	"example.com/posd/internal/device"
	"example.com/posd/internal/fleet"
	"example.com/posd/internal/natsauth"
)

// openFleet turns the journal's outbox on and makes the publisher, when
// fleet.url is set: from then on every change is kept for the head
// office, whatever the broker's state.
func (d *Daemon) openFleet() error {
	f := d.cfg.Fleet
	if f.URL == "" || d.damaged {
		return nil
	}
	var auth nats.Option
	var creds string
	if f.CredentialsFile != "" {
		var err error
		if creds, err = config.ReadSecret(f.CredentialsFile); err != nil {
			return err
		}
		if auth, err = natsauth.Option(creds); err != nil { // config validation refused it already
			return err
		}
	}
	d.journal.SetOutbox(true)
	d.fleet = fleet.New(fleet.Options{URL: f.URL, Auth: auth, Prefix: f.SubjectPrefix, Box: d.cfg.FleetBox(), IDKey: wire.IDKey(creds),
		Merchant: d.cfg.FleetMerchant(), Store: d.cfg.Merchant.StoreID, Journal: d.journal, Log: d.log.Named("fleet")})
	m := d.metrics
	m.r.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "posd_outbox_pending",
			Help: "Changes waiting in the outbox for the head office."}, func() float64 { return float64(d.fleet.Status().Pending) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "posd_outbox_oldest_seconds",
			Help: "Age of the oldest change waiting in the outbox (0: none)."}, func() float64 {
			if st := d.fleet.Status(); !st.Oldest.IsZero() {
				return time.Since(st.Oldest).Seconds()
			}
			return 0
		}),
	)
	return nil
}

// startFleet publishes the outbox and watches the devices, until posd
// stops.
func (d *Daemon) startFleet() {
	if d.fleet == nil {
		return
	}
	d.wg.Add(3)
	go func() {
		defer d.wg.Done()
		if err := d.fleet.Run(d.ctx); err != nil {
			d.log.Error("fleet: publisher stopped; the outbox keeps every change", zap.Error(err))
		}
	}()
	go func() {
		defer d.wg.Done()
		fleet.WatchDevices(d.ctx, d.journal, d.fleetDevices, 2*time.Second, d.fleet.Wake, d.log.Named("fleet"))
	}()
	go func() { defer d.wg.Done(); d.warnOutbox() }()
}

// fleetDevices are the registry's devices and the gateway link.
func (d *Daemon) fleetDevices() []device.Health {
	gw := device.Health{Role: "gateway", Type: "gateway", Name: "gateway", State: device.Connected}
	if up, why := d.client.LinkUp(); !up {
		gw.State, gw.Detail = device.Gone, why
	}
	return append(d.reg.List(), gw)
}

// FleetStatus is the outbox and the publisher, with a warning past the
// configured thresholds (nil: fleet off).
func (d *Daemon) FleetStatus() any {
	if d.fleet == nil {
		return nil
	}
	type status struct {
		fleet.Status
		Warning string `json:"warning,omitempty"`
	}
	st := status{Status: d.fleet.Status()}
	st.Warning = outboxWarning(st.Status, d.cfg.Fleet)
	return st
}

func outboxWarning(st fleet.Status, f config.Fleet) string {
	switch {
	case st.Pending >= f.OutboxWarn:
		return "the outbox holds many changes the head office has not received: is the broker reachable?"
	case !st.Oldest.IsZero() && time.Since(st.Oldest) > f.OutboxWarnAge:
		return "the head office has not received changes for " + time.Since(st.Oldest).Round(time.Second).String() + ": is the broker reachable?"
	}
	return ""
}

// warnOutbox logs once each time the outbox crosses its thresholds.
func (d *Daemon) warnOutbox() {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	warned := false
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
		}
		st := d.fleet.Status()
		w := outboxWarning(st, d.cfg.Fleet)
		if w != "" && !warned {
			d.log.Warn("fleet: "+w, zap.Uint64("pending", st.Pending), zap.Time("oldest", st.Oldest), zap.String("last_error", st.LastError))
		}
		warned = w != ""
	}
}
