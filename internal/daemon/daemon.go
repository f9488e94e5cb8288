package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"example.com/posd/display"
	"example.com/posd/internal/api"
	"example.com/posd/internal/clock"
	"example.com/posd/internal/config"
	"example.com/posd/internal/device"
	"example.com/posd/internal/fleet"
	"example.com/posd/internal/httpguard"
	"example.com/posd/internal/journal"
	"example.com/posd/internal/lane"
	"example.com/posd/internal/money"
	"example.com/posd/internal/reconcile"
	"example.com/posd/internal/sdnotify"
	"example.com/posd/payment"
	"example.com/posd/payment/sandbox"
	"example.com/posd/poller"
	"example.com/posd/scanner"
)

// Daemon is posd, whole: Open builds it (the gateway, the journal, the
// lanes), Run serves until its context ends, Close lets go of everything.
// The command, the tests and the benchmarks all use this one wiring.
type Daemon struct {
	cfg     config.Config
	log     *zap.Logger
	tio     IO
	ctx     context.Context // everything Daemon starts runs under it
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	client  *payment.Client
	journal *journal.Journal
	clock   *clock.Clock
	damaged bool // the journal failed its check: read-only, no payment
	hub     *display.Hub
	metrics *posdMetrics
	poller  *poller.Poller
	svc     *lane.Service
	reg     *device.Registry
	hup     chan os.Signal // SIGHUP, caught from Open on: a reload during a start must not end posd
	gauges  sync.Once
	recon   *reconcile.Reconciler
	fleet   *fleet.Publisher // nil: fleet.url is empty
	disp    displaySet
	web     *display.Web
	polling struct {
		once sync.Once
		stop context.CancelFunc
		done chan struct{}
	}
}

// Open builds posd from its config: the gateway client (and the embedded
// sandbox when the config names it), the journal, checked first, and the
// poller and lanes over it. Nothing is served until Run.
func Open(cfg config.Config, log *zap.Logger, tio IO) (*Daemon, error) {
	tio.Stdin = cmp.Or[io.Reader](tio.Stdin, strings.NewReader(""))
	tio.Stdout = cmp.Or[io.Writer](tio.Stdout, io.Discard)
	// The sandbox's merchant only exists on a sandbox, embedded or not.
	if cfg.IsSandbox() || cfg.Merchant.ID == sandbox.MerchantID {
		log = log.With(zap.String("gateway", "SANDBOX"))
	}
	d := &Daemon{cfg: cfg, log: log, tio: tio, hub: display.NewHub(), metrics: newMetrics(), reg: device.NewRegistry(),
		hup: make(chan os.Signal, 1)}
	signal.Notify(d.hup, syscall.SIGHUP)
	d.ctx, d.cancel = context.WithCancel(context.Background())
	if err := d.openGateway(); err != nil {
		d.Close()
		return nil, err
	}
	if err := d.openJournal(); err != nil {
		d.Close()
		return nil, err
	}
	d.openClock()
	if err := d.openFleet(); err != nil {
		d.Close()
		return nil, err
	}
	if err := d.openLanes(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// openGateway makes the payment client, starting the embedded sandbox on
// loopback when the config asks for it.
func (d *Daemon) openGateway() error {
	merchantID, key, baseURL := d.cfg.Merchant.ID, "", d.cfg.Gateway.URL
	if d.cfg.Merchant.KeyFile != "" {
		var err error
		if key, err = config.ReadKey(d.cfg.Merchant.KeyFile); err != nil {
			return fmt.Errorf("merchant key: %w", err)
		}
	}
	if d.cfg.IsSandbox() {
		if merchantID == "" {
			merchantID = sandbox.MerchantID
		}
		if key == "" {
			key = sandbox.Key
		}
		sb := sandbox.New(sandbox.Options{MerchantID: merchantID, Key: key, SlowDelay: d.cfg.Gateway.SandboxSlow})
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		baseURL = "http://" + l.Addr().String() + "/"
		d.log.Warn("SANDBOX gateway: no real money moves", zap.String("url", baseURL), zap.String("merchant_id", merchantID))
		d.wg.Add(1)
		go func() { defer d.wg.Done(); _ = api.Serve(d.ctx, l, sb) }()
	}
	var err error
	d.client, err = payment.NewClient(payment.ClientOptions{
		BaseURL: baseURL, MerchantID: merchantID, Key: key,
		Timeout: d.cfg.Gateway.Timeout, ConnectTimeout: d.cfg.Gateway.ConnectTimeout, CAFile: d.cfg.Gateway.CAFile,
	})
	return err
}

// openJournal checks the journal in a process of its own (bbolt may panic
// on damage) and opens it, read-only when damaged.
func (d *Daemon) openJournal() error {
	path := d.cfg.Journal.Path
	// The check may read the whole file (after a power cut), and an upgrade
	// may index a year of history: tell systemd to wait (a start killed
	// half-way would only begin again).
	_, _ = sdnotify.Notify("EXTEND_TIMEOUT_USEC=900000000\nSTATUS=checking the journal")
	var err error
	began := time.Now()
	how, cerr := checkJournal(path)
	d.log.Info("journal checked", zap.String("how", how), zap.Duration("took", time.Since(began)))
	if cerr != nil {
		d.damaged = true
		d.log.Error("JOURNAL DAMAGED: posd runs read-only and takes no payment; export what can be read (posctl export) and restore or replace the journal",
			zap.String("journal", path), zap.Error(cerr))
		d.journal, err = journal.OpenReadOnly(path)
	} else {
		d.journal, err = journal.OpenWith(path, journal.Options{Witness: d.cfg.Journal.WitnessPath})
	}
	return err
}

// openLanes builds the poller and the lanes over the journal.
func (d *Daemon) openLanes() error {
	router, err := scanner.NewRouter(d.cfg.Wallets)
	if err != nil {
		return err
	}
	cfg, m := d.cfg, d.metrics
	d.poller = poller.New(poller.Options{
		Gateway: d.client, Journal: d.journal, Policy: policy(cfg), Log: d.log.Named("poller"),
		StoreID: cfg.Merchant.StoreID, ClientIP: cfg.Merchant.ClientIP,
		OnUpdate: func(o money.Order, st money.Settled) {
			m.order(o)
			d.svc.OrderUpdated(o, st)
			if d.fleet != nil {
				d.fleet.Wake()
			}
		},
		OnCall:         func(c payment.Call, r payment.Result) { m.call(c, r); d.gatewayTime(c, r) },
		OnJournalError: func(err error) { d.svc.JournalError(err) },
	})
	d.svc = lane.New(lane.Options{
		Journal: d.journal, Poller: d.poller, Hub: d.hub, Router: router, Lanes: lanes(cfg),
		StoreID: cfg.Merchant.StoreID, ClientIP: cfg.Merchant.ClientIP, Sandbox: cfg.IsSandbox() || cfg.Merchant.ID == sandbox.MerchantID,
		DedupWindow: cfg.Scan.DuplicateWindow, Log: d.log.Named("lane"), OnLate: m.late,
		RefundMaxCount: cfg.Refunds.MaxPerOrder, RefundMaxAge: cfg.Refunds.MaxAge, ReferenceWindow: cfg.Charges.ReferenceWindow,
		Clock: d.clock, OnFuture: func(kind, _ string, _ time.Time) { m.future.WithLabelValues(kind).Inc() },
	})
	d.recon = &reconcile.Reconciler{Ctx: d.ctx, Journal: d.journal, Gateway: d.client, Rate: cfg.Reconcile.Rate,
		Log: d.log.Named("reconcile"), OnDisagree: func(d money.Disagreement) { m.disagree.WithLabelValues(reconcile.Kind(d.What)).Inc() },
		Reopen: func(id, why string) error { _, err := d.poller.Reopen(id, why, time.Now()); return err }}
	d.client.OnLink(func(up bool, reason string) {
		if up {
			d.log.Info("gateway reachable")
		} else {
			d.log.Warn("gateway unreachable", zap.String("reason", reason))
		}
		d.svc.GatewayState(up, reason)
	})
	return nil
}

// Run serves until ctx ends: displays, the lanes' state, the orders left
// unfinished, the API, the scanners and the housekeeping; then it stops
// taking scans and lets the calls in flight finish within the bound.
func (d *Daemon) Run(ctx context.Context, ready func(addr string, j *journal.Journal)) error {
	if err := d.Start(); err != nil {
		return err
	}
	ln, apiErr, err := d.serveAPI()
	if err != nil {
		return err
	}
	d.startScanners()
	d.startHousekeeping()
	d.startFleet()
	d.log.Info("posd ready", zap.String("api", ln.Addr().String()), zap.String("journal", d.cfg.Journal.Path), zap.Int("lanes", len(d.cfg.Lanes)))
	if ready != nil {
		ready(ln.Addr().String(), d.journal)
	}
	if ok, nerr := sdnotify.Notify("READY=1\nSTATUS=taking payments"); nerr != nil {
		d.log.Warn("sd_notify", zap.Error(nerr))
	} else if ok {
		d.log.Info("told systemd: ready")
	}
	err = d.serve(ctx, apiErr)
	d.shutdown()
	return err
}

// Start shows the lanes on their displays and drives the orders left
// unfinished: what Run does before it serves. A test that serves the API
// itself (APIServer) calls it, then Close.
func (d *Daemon) Start() error {
	if err := d.startDisplays(); err != nil {
		return err
	}
	return d.resume()
}

// startDisplays starts the web displays (they live as long as posd) and
// the others (restarted on SIGHUP), before the lanes publish their state.
func (d *Daemon) startDisplays() error {
	var err error
	if d.web, err = startWebDisplays(d.ctx, &d.wg, d.cfg, d.hub, d.log); err != nil {
		return err
	}
	return d.disp.start(d.ctx, d.cfg, d.hub, d.journal, d.reg, d.log, d.tio.Stdout)
}

// resume loads the lanes' open charges and drives the orders left
// unfinished; a damaged journal takes no step at all.
func (d *Daemon) resume() error {
	if err := d.svc.Start(); err != nil {
		if !d.damaged {
			return err
		}
		d.log.Error("damaged journal: open charges could not be read", zap.Error(err))
	}
	ctx, stop := context.WithCancel(context.Background())
	d.polling.stop, d.polling.done = stop, make(chan struct{})
	if d.damaged {
		// No step can be recorded, so none is taken: the lanes are out of
		// service and the records stay as they are for the operator.
		d.svc.JournalError(fmt.Errorf("%w: damaged, opened read-only", journal.ErrUnwritable))
		close(d.polling.done)
		return nil
	}
	n, err := d.poller.Resume(time.Now())
	if err != nil {
		return err
	}
	d.svc.ResumeAborts()
	if n > 0 {
		d.log.Info("resumed unfinished orders", zap.Int("orders", n))
	}
	if n, err := d.recon.Resume(); err != nil {
		d.log.Error("reconcile: runs cut short not resumed", zap.Error(err))
	} else if n > 0 {
		d.log.Info("resumed reconciliations cut short", zap.Int("days", n))
	}
	go func() { d.poller.Run(ctx); close(d.polling.done) }()
	return nil
}

// serveAPI starts the local API (with /metrics and the event stream) and
// returns its listener and the channel its end is told on.
func (d *Daemon) serveAPI() (net.Listener, <-chan error, error) {
	ln, prot, err := listenAPI(d.cfg.API)
	if err != nil {
		return nil, nil, err
	}
	srv, err := d.APIServer(prot)
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	d.wg.Add(1)
	go func() { defer d.wg.Done(); d.client.Watch(d.ctx, d.cfg.Gateway.ProbeInterval) }()
	apiErr := make(chan error, 1)
	d.wg.Add(1)
	go func() { defer d.wg.Done(); apiErr <- api.Serve(d.ctx, ln, srv) }()
	return ln, apiErr, nil
}

// APIServer is the local API as posd serves it (with /metrics and the
// event stream), guarded by p.
func (d *Daemon) APIServer(p api.Protection) (*api.Server, error) {
	svc := d.svc
	srv := api.New(svc, d.journal, d.log.Named("api"), func() error {
		if ok, why := svc.InService(); !ok {
			return errors.New(why)
		}
		if why := svc.Offline(); why != "" {
			return fmt.Errorf("%w: %s", api.ErrDegraded, why)
		}
		return nil
	}, func() any { return d.reg.List() })
	if d.cfg.API.TokenFile != "" {
		token, err := config.ReadSecret(d.cfg.API.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("api token: %w", err)
		}
		srv.RequireToken(token)
	}
	srv.Protect(p)
	srv.Store = d.cfg.Merchant.StoreID
	srv.Reconcile = d.recon
	srv.Clock = d.clock.Status
	if d.fleet != nil {
		srv.Fleet = d.FleetStatus
	}
	d.gauges.Do(func() { d.metrics.gauges(d.poller, d.journal, d.reg, d.client, d.clock) })
	srv.Handle("GET /metrics", d.metrics.reg)
	events := &display.Web{Hub: d.hub, MaxStreams: d.cfg.API.MaxStreams, Client: httpguard.ClientOf, Admitted: httpguard.KeepConn}
	srv.Handle("GET /v1/events", srv.KnownLane(http.HandlerFunc(events.Events)))
	if d.web != nil && !strings.HasPrefix(d.cfg.API.Listen, "unix:") {
		routeWeb(srv, d.web)
	}
	return srv, nil
}

// startScanners starts one owner per scanner. The reader hands codes over
// and reads on: a pay's journal commit must not keep it from the kernel's
// queue (64 evdev events, about ten keys), or a following code would
// overflow.
func (d *Daemon) startScanners() {
	for _, l := range d.cfg.Lanes {
		for _, sc := range l.Scanners {
			lane, slog := l.ID, d.log.Named("scanner").With(zap.String("lane", l.ID), zap.String("type", sc.Type), zap.String("device", sc.Label()))
			report := d.reg.Reporter(lane, "scanner", sc.Type, sc.Label())
			src := scannerSource(sc, d.tio, func(st device.State, detail string) {
				report(st, detail)
				if st == device.Connected {
					slog.Info("scanner connected")
				} else {
					slog.Warn("scanner unavailable", zap.String("state", string(st)), zap.String("detail", detail))
				}
				d.svc.DeviceChanged(lane, "scanner "+sc.Label()+": "+string(st))
			})
			scans := make(chan scanner.Scan, 16)
			d.wg.Add(2)
			go func() {
				defer d.wg.Done()
				for s := range scans {
					if d.ctx.Err() == nil { // a code read as posd stops is not paid
						_ = d.svc.Scan(lane, s)
					}
				}
			}()
			go func() {
				defer d.wg.Done()
				defer close(scans)
				err := src.Run(d.ctx, func(s scanner.Scan) {
					select {
					case scans <- s:
					default:
						slog.Warn("scan dropped: sixteen codes already wait for this lane", zap.String("source", s.Source))
					}
				})
				if err != nil && d.ctx.Err() == nil {
					slog.Error("scanner stopped", zap.Error(err))
				} else if d.ctx.Err() == nil {
					slog.Info("scanner input ended")
				}
			}()
		}
	}
}

// startHousekeeping probes a journal that failed a write, and prunes what
// is past retention, at start and daily.
func (d *Daemon) startHousekeeping() {
	if d.damaged {
		return
	}
	d.wg.Add(3)
	go func() { defer d.wg.Done(); probeJournal(d.ctx, d.journal, d.svc) }()
	go func() { defer d.wg.Done(); d.watchClock(d.ctx) }()
	go func() {
		defer d.wg.Done()
		prune(d.ctx, d.journal, d.clock, d.cfg.Journal.Retention, d.log.Named("journal"))
	}()
}

// serve turns until ctx ends or the API stops: SIGHUP reloads the config,
// and the systemd watchdog is fed from here, so that a posd that stops
// turning is restarted and the journal resumes what was in flight.
func (d *Daemon) serve(ctx context.Context, apiErr <-chan error) error {
	var watchdog <-chan time.Time
	if iv := sdnotify.WatchdogInterval(); iv > 0 {
		t := time.NewTicker(iv)
		defer t.Stop()
		watchdog = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.hup:
			d.reload()
		case err := <-apiErr:
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.log.Error("api stopped", zap.Error(err))
				return err
			}
			return nil
		case <-watchdog:
			_, _ = sdnotify.Notify("WATCHDOG=1")
		}
	}
}

// reload applies a changed config file (SIGHUP): the key, the lanes'
// settings, and the displays when they changed.
func (d *Daemon) reload() {
	next, ok := reload(d.cfg, d.tio.ConfigPath, d.client, d.svc, d.log)
	if !ok {
		return
	}
	if displaysChanged(d.cfg, next) {
		d.disp.stop()
		if err := d.disp.start(d.ctx, next, d.hub, d.journal, d.reg, d.log, d.tio.Stdout); err != nil {
			d.log.Error("reload: displays", zap.Error(err))
		} else {
			d.log.Info("reload: displays restarted with the new config")
		}
	}
	d.cfg = next
}

// shutdown stops taking scans and lets the calls in flight finish within
// the configured bound; the rest resumes from the journal at the next
// start.
func (d *Daemon) shutdown() {
	_, _ = sdnotify.Notify("STOPPING=1")
	d.log.Info("shutting down: finishing calls in flight", zap.Duration("bound", d.cfg.ShutdownTimeout))
	d.cancel()
	d.stopPolling()
}

// stopPolling stops the poller Start began, once: the calls in flight
// finish within the shutdown bound.
func (d *Daemon) stopPolling() {
	d.polling.once.Do(func() {
		if d.polling.stop == nil {
			return
		}
		d.polling.stop()
		<-d.polling.done
		if !d.poller.Wait(d.cfg.ShutdownTimeout) {
			d.log.Warn("shutdown bound reached: unfinished orders resume from the journal at the next start")
		}
	})
}

// Close lets go of everything Open and Run started, the journal last.
func (d *Daemon) Close() error {
	signal.Stop(d.hup)
	d.cancel()
	d.stopPolling()
	if d.recon != nil {
		d.recon.Wait()
	}
	d.wg.Wait()
	d.disp.stop()
	if d.journal == nil {
		return nil
	}
	return d.journal.Close()
}
