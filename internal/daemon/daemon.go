package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"example.com/posd/display"
	"example.com/posd/internal/api"
	"example.com/posd/internal/checkout"
	"example.com/posd/internal/config"
	"example.com/posd/internal/device"
	"example.com/posd/internal/journal"
	"example.com/posd/internal/sdnotify"
	"example.com/posd/payment"
	"example.com/posd/payment/sandbox"
	"example.com/posd/poller"
	"example.com/posd/scanner"
)

// IO is where the stdin scanner and the terminal display read and write,
// and the config file SIGHUP reloads (none: no reload).
type IO struct {
	Stdin      io.Reader
	Stdout     io.Writer
	ConfigPath string
}

// Run runs posd until ctx ends, then finishes in-flight work up to the
// configured bound and leaves the rest to the journal. ready, if not nil,
// is called once the journal is open and the lanes and API are up.
func Run(ctx context.Context, cfg config.Config, log *zap.Logger, tio IO, ready func(addr string)) error {
	return run(ctx, cfg, log, tio, func(addr string, _ *journal.Journal) {
		if ready != nil {
			ready(addr)
		}
	})
}

func run(ctx context.Context, cfg config.Config, log *zap.Logger, tio IO, ready func(addr string, j *journal.Journal)) error {
	// The sandbox's merchant only exists on a sandbox, embedded or not.
	sandboxed := cfg.IsSandbox() || cfg.Merchant.ID == sandbox.MerchantID
	if sandboxed {
		log = log.With(zap.String("gateway", "SANDBOX"))
	}
	merchantID, key := cfg.Merchant.ID, ""
	if cfg.Merchant.KeyFile != "" {
		var err error
		if key, err = config.ReadKey(cfg.Merchant.KeyFile); err != nil {
			return fmt.Errorf("merchant key: %w", err)
		}
	}
	baseURL := cfg.Gateway.URL
	var wg sync.WaitGroup
	defer wg.Wait()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	if cfg.IsSandbox() {
		if merchantID == "" {
			merchantID = sandbox.MerchantID
		}
		if key == "" {
			key = sandbox.Key
		}
		sb := sandbox.New(sandbox.Options{MerchantID: merchantID, Key: key, SlowDelay: cfg.Gateway.SandboxSlow})
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		baseURL = "http://" + l.Addr().String() + "/"
		log.Warn("SANDBOX gateway: no real money moves", zap.String("url", baseURL), zap.String("merchant_id", merchantID))
		wg.Add(1)
		go func() { defer wg.Done(); _ = api.Serve(runCtx, l, sb) }()
	}
	client, err := payment.NewClient(payment.ClientOptions{
		BaseURL: baseURL, MerchantID: merchantID, Key: key,
		Timeout: cfg.Gateway.Timeout, ConnectTimeout: cfg.Gateway.ConnectTimeout, CAFile: cfg.Gateway.CAFile,
	})
	if err != nil {
		return err
	}
	router, err := scanner.NewRouter(cfg.Wallets)
	if err != nil {
		return err
	}
	var j *journal.Journal
	damaged := false
	if cerr := checkJournal(cfg.Journal.Path); cerr != nil {
		damaged = true
		log.Error("JOURNAL DAMAGED: posd runs read-only and takes no payment; export what can be read (posctl export) and restore or replace the journal",
			zap.String("journal", cfg.Journal.Path), zap.Error(cerr))
		j, err = journal.OpenReadOnly(cfg.Journal.Path)
	} else {
		j, err = journal.Open(cfg.Journal.Path)
	}
	if err != nil {
		return err
	}
	defer j.Close()

	hub := display.NewHub()
	m := newMetrics()
	var svc *checkout.Service
	pol := poller.New(poller.Options{
		Gateway: client, Journal: j, Policy: policy(cfg), Log: log.Named("poller"),
		StoreID: cfg.Merchant.StoreID, ClientIP: cfg.Merchant.ClientIP,
		OnUpdate: func(o poller.Order) {
			m.order(o)
			svc.OrderUpdated(o)
		},
		OnCall:         m.call,
		OnJournalError: func(err error) { svc.JournalError(err) },
	})
	svc = checkout.New(checkout.Options{
		Journal: j, Poller: pol, Hub: hub, Router: router, Lanes: lanes(cfg),
		StoreID: cfg.Merchant.StoreID, ClientIP: cfg.Merchant.ClientIP, Sandbox: sandboxed,
		DedupWindow: cfg.Scan.DuplicateWindow, Log: log.Named("checkout"), OnLate: m.late,
	})
	client.OnLink(func(up bool, reason string) {
		if up {
			log.Info("gateway reachable")
		} else {
			log.Warn("gateway unreachable", zap.String("reason", reason))
		}
		svc.GatewayState(up, reason)
	})

	// Displays first, so that they see the state Start publishes.
	reg := device.NewRegistry()
	// Web displays live as long as posd; the others under dispCtx, so that
	// SIGHUP can restart them with a new config.
	web, err := startWebDisplays(runCtx, &wg, cfg, hub, log)
	if err != nil {
		return err
	}
	disp := &displaySet{}
	if err := disp.start(runCtx, cfg, hub, j, reg, log, tio.Stdout); err != nil {
		return err
	}
	defer disp.stop()
	if err := svc.Start(); err != nil {
		if !damaged {
			return err
		}
		log.Error("damaged journal: open charges could not be read", zap.Error(err))
	}
	pollCtx, stopPolling := context.WithCancel(context.Background())
	defer stopPolling()
	pollDone := make(chan struct{})
	if damaged {
		// No step can be recorded, so none is taken: the lanes are out of
		// service and the records stay as they are for the operator.
		svc.JournalError(fmt.Errorf("%w: damaged, opened read-only", journal.ErrUnwritable))
		close(pollDone)
	} else {
		n, err := pol.Resume(time.Now())
		if err != nil {
			return err
		}
		svc.ResumeAborts()
		if n > 0 {
			log.Info("resumed unfinished orders", zap.Int("orders", n))
		}
		go func() { pol.Run(pollCtx); close(pollDone) }()
	}

	ln, prot, err := listenAPI(cfg.API)
	if err != nil {
		return err
	}
	srv := api.New(svc, log.Named("api"), func() error {
		if ok, why := svc.InService(); !ok {
			return errors.New(why)
		}
		if why := svc.Offline(); why != "" {
			return fmt.Errorf("%w: %s", api.ErrDegraded, why)
		}
		return nil
	}, func() any { return reg.List() })
	if cfg.API.TokenFile != "" {
		token, err := config.ReadSecret(cfg.API.TokenFile)
		if err != nil {
			return fmt.Errorf("api token: %w", err)
		}
		srv.RequireToken(token)
	}
	srv.Protect(prot)
	m.gauges(pol, j, reg, client)
	wg.Add(1)
	go func() { defer wg.Done(); client.Watch(runCtx, cfg.Gateway.ProbeInterval) }()
	srv.Handle("GET /metrics", m.reg)
	events := &display.Web{Hub: hub, MaxStreams: cfg.API.MaxStreams}
	srv.Handle("GET /v1/events", http.HandlerFunc(events.Events))
	if web != nil && !strings.HasPrefix(cfg.API.Listen, "unix:") {
		routeWeb(srv, web)
	}
	apiErr := make(chan error, 1)
	wg.Add(1)
	go func() { defer wg.Done(); apiErr <- api.Serve(runCtx, ln, srv) }()

	for _, l := range cfg.Lanes {
		for _, sc := range l.Scanners {
			lane, slog := l.ID, log.Named("scanner").With(zap.String("lane", l.ID), zap.String("type", sc.Type), zap.String("device", sc.Label()))
			report := reg.Reporter(lane, "scanner", sc.Type, sc.Label())
			src := scannerSource(sc, tio, func(st device.State, detail string) {
				report(st, detail)
				if st == device.Connected {
					slog.Info("scanner connected")
				} else {
					slog.Warn("scanner unavailable", zap.String("state", string(st)), zap.String("detail", detail))
				}
				svc.DeviceChanged(lane, "scanner "+sc.Label()+": "+string(st))
			})
			// The reader hands codes over and reads on: a pay's journal
			// commit must not keep it from the kernel's queue (64 evdev
			// events, about ten keys), or a following code would overflow.
			scans := make(chan scanner.Scan, 16)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for s := range scans {
					if runCtx.Err() == nil { // a code read as posd stops is not paid
						_ = svc.Scan(lane, s)
					}
				}
			}()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer close(scans)
				err := src.Run(runCtx, func(s scanner.Scan) {
					select {
					case scans <- s:
					default:
						slog.Warn("scan dropped: sixteen codes already wait for this lane", zap.String("source", s.Source))
					}
				})
				if err != nil && runCtx.Err() == nil {
					slog.Error("scanner stopped", zap.Error(err))
				} else if runCtx.Err() == nil {
					slog.Info("scanner input ended")
				}
			}()
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if !damaged {
			probeJournal(runCtx, j, svc)
		}
	}()
	if !damaged {
		wg.Add(1)
		go func() { defer wg.Done(); prune(runCtx, svc, cfg.Journal.Retention, log.Named("journal")) }()
	}

	log.Info("posd ready", zap.String("api", ln.Addr().String()), zap.String("journal", cfg.Journal.Path), zap.Int("lanes", len(cfg.Lanes)))
	ready(ln.Addr().String(), j)
	if ok, nerr := sdnotify.Notify("READY=1\nSTATUS=taking payments"); nerr != nil {
		log.Warn("sd_notify", zap.Error(nerr))
	} else if ok {
		log.Info("told systemd: ready")
	}
	// The watchdog is fed from this loop: if it stops turning, systemd
	// restarts posd, and the journal resumes what was in flight.
	var watchdog <-chan time.Time
	if iv := sdnotify.WatchdogInterval(); iv > 0 {
		t := time.NewTicker(iv)
		defer t.Stop()
		watchdog = t.C
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-hup:
			if next, ok := reload(cfg, tio.ConfigPath, client, svc, log); ok {
				if displaysChanged(cfg, next) {
					disp.stop()
					if err := disp.start(runCtx, next, hub, j, reg, log, tio.Stdout); err != nil {
						log.Error("reload: displays", zap.Error(err))
					} else {
						log.Info("reload: displays restarted with the new config")
					}
				}
				cfg = next
			}
		case err = <-apiErr:
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("api stopped", zap.Error(err))
			}
			break loop
		case <-watchdog:
			_, _ = sdnotify.Notify("WATCHDOG=1")
		}
	}
	_, _ = sdnotify.Notify("STOPPING=1")
	log.Info("shutting down: finishing calls in flight", zap.Duration("bound", cfg.ShutdownTimeout))
	cancel()
	stopPolling()
	<-pollDone
	if !pol.Wait(cfg.ShutdownTimeout) {
		log.Warn("shutdown bound reached: unfinished orders resume from the journal at the next start")
	}
	return err
}

// listenAPI opens the API's listener: connections capped, TLS when it is
// not loopback (check-config insists), and how it is exposed.
func listenAPI(c config.API) (net.Listener, api.Protection, error) {
	prot := api.Protection{Listen: c.Listen}
	ln, err := api.Listen(c.Listen)
	if err != nil {
		return nil, prot, err
	}
	ln = api.LimitListener(ln, c.MaxConnections)
	if !strings.HasPrefix(c.Listen, "unix:") {
		host, _, _ := net.SplitHostPort(c.Listen)
		prot.Remote = !payment.IsLoopbackHost(host)
		prot.MoneyNeedsToken = !prot.Remote && !c.AllowMoneyWithoutToken
	}
	if c.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			ln.Close()
			return nil, prot, fmt.Errorf("%w: api tls: %v", config.ErrConfig, err) // exit 78: a restart would not fix it
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		prot.TLS = true
	} else if prot.Remote {
		ln.Close()
		return nil, prot, fmt.Errorf("api.listen %s is not loopback: it serves TLS only (api.tls_cert_file, api.tls_key_file)", c.Listen)
	}
	return ln, prot, nil
}

// checkJournal checks the journal file in a child process (posd
// journal-check), because bbolt may panic on damage in goroutines of its
// own. A missing file is fine: it is about to be created.
func checkJournal(path string) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	self, err := os.Executable()
	if err != nil {
		return nil // cannot check: open as usual
	}
	out, err := exec.Command(self, "journal-check", path).CombinedOutput()
	if err == nil {
		return nil
	}
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 3 || strings.Contains(string(out), "panic") {
		return fmt.Errorf("%s", strings.TrimSpace(lastLine(string(out))))
	}
	return nil // the checker itself could not run (not this binary): open as usual
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 && !strings.Contains(s[i:], "panic") {
		return s[i+1:]
	}
	if i := strings.Index(s, "panic: "); i >= 0 {
		if e := strings.IndexByte(s[i:], '\n'); e > 0 {
			return s[i : i+e]
		}
	}
	return s
}

// reload applies what can change without a restart: the merchant key (a
// key rotation), the displays, and the settings of lanes not in use; it
// says what else changed and needs one. It returns the config now in force.
func reload(cur config.Config, path string, client *payment.Client, svc *checkout.Service, log *zap.Logger) (config.Config, bool) {
	if path == "" {
		return cur, false
	}
	next, _, err := config.Load(path)
	if err != nil {
		log.Error("reload refused: the config has problems; nothing changed", zap.Error(err))
		return cur, false
	}
	if next.Merchant.KeyFile != "" {
		key, err := config.ReadKey(next.Merchant.KeyFile)
		if err != nil {
			log.Error("reload: merchant key not read; the old key stays", zap.Error(err))
		} else {
			client.SetKey(key)
			log.Info("reload: merchant key reloaded")
		}
	}
	var needs []string
	applied := cur
	applied.Merchant.KeyFile = next.Merchant.KeyFile
	if sameLaneSet(cur, next) {
		busy := svc.UpdateLanes(lanes(next))
		for i := range next.Lanes {
			l := next.Lanes[i]
			if slices.Contains(busy, l.ID) {
				needs = append(needs, "lane "+l.ID+" (in use: reload again when it is free)")
				continue
			}
			if !reflect.DeepEqual(cur.Lanes[i].Scanners, l.Scanners) {
				needs = append(needs, "lane "+l.ID+" scanners")
				l.Scanners = cur.Lanes[i].Scanners
			}
			applied.Lanes[i] = l
		}
	} else {
		needs = append(needs, "lanes added, removed or renumbered")
	}
	for name, same := range map[string]bool{
		"merchant.id":       cur.Merchant.ID == next.Merchant.ID,
		"merchant.store_id": cur.Merchant.StoreID == next.Merchant.StoreID,
		"gateway":           reflect.DeepEqual(cur.Gateway, next.Gateway),
		"confirm":           reflect.DeepEqual(cur.Confirm, next.Confirm),
		"journal":           reflect.DeepEqual(cur.Journal, next.Journal),
		"api":               reflect.DeepEqual(cur.API, next.API),
		"wallets":           reflect.DeepEqual(cur.Wallets, next.Wallets),
	} {
		if !same {
			needs = append(needs, name)
		}
	}
	if len(needs) > 0 {
		slices.Sort(needs)
		log.Warn("reload: these changes need a restart (systemctl restart posd)", zap.Strings("changed", needs))
	}
	return applied, true
}

// sameLaneSet: the same lanes, in the same order, with the same ids and
// devices (a lane's device_info is part of its order ids).
func sameLaneSet(a, b config.Config) bool {
	if len(a.Lanes) != len(b.Lanes) {
		return false
	}
	for i := range a.Lanes {
		if a.Lanes[i].ID != b.Lanes[i].ID || a.Lanes[i].DeviceInfo != b.Lanes[i].DeviceInfo {
			return false
		}
	}
	return true
}

func displaysChanged(a, b config.Config) bool {
	for i := range a.Lanes {
		if i >= len(b.Lanes) || !reflect.DeepEqual(a.Lanes[i].Displays, b.Lanes[i].Displays) {
			return true
		}
	}
	return false
}

// prune keeps the journal bounded on a small SD card: at start, then daily,
// final orders older than the retention go.
func prune(ctx context.Context, svc *checkout.Service, keep time.Duration, log *zap.Logger) {
	for {
		o, c, err := svc.Prune(time.Now().Add(-keep))
		switch {
		case err != nil:
			log.Error("prune", zap.Error(err))
		case o+c > 0:
			log.Info("pruned final records past retention", zap.Int("orders", o), zap.Int("charges", c), zap.Duration("retention", keep))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(24 * time.Hour):
		}
	}
}

// probeJournal brings the lanes back into service once the journal can be
// written again.
func probeJournal(ctx context.Context, j *journal.Journal, svc *checkout.Service) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if ok, _ := svc.InService(); ok {
			continue
		}
		if err := j.Update(func(tx *journal.Tx) error { return tx.PutString(journal.Idem, "\x00probe", time.Now().String()) }); err == nil {
			svc.JournalError(nil)
		}
	}
}

func policy(cfg config.Config) poller.Policy {
	p := poller.DefaultPolicy()
	c := cfg.Confirm
	p.QueryInterval, p.QueryAttempts = c.QueryInterval, c.QueryAttempts
	p.ReverseInterval, p.ReverseAttempts = c.ReverseInterval, c.ReverseAttempts
	p.ReconcileInterval, p.ReconcileMax = c.ReconcileInterval, c.ReconcileMax
	if c.ReverseFallback != nil {
		p.ReverseFallback = *c.ReverseFallback
	}
	return p
}

func lanes(cfg config.Config) []checkout.LaneConfig {
	var out []checkout.LaneConfig
	for _, l := range cfg.Lanes {
		out = append(out, checkout.LaneConfig{
			ID: l.ID, DeviceInfo: l.DeviceInfo, FixedFee: int64(l.FixedFee), MaxFee: int64(l.MaxFee),
			Subject: l.Subject, Body: l.Body, ChargeTTL: l.ChargeTTL,
		})
	}
	return out
}
