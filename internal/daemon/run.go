package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"example.com/posd/internal/api"
	"example.com/posd/internal/clock"
	"example.com/posd/internal/config"
	"example.com/posd/internal/httpguard"
	"example.com/posd/internal/journal"
	"example.com/posd/internal/lane"
	"example.com/posd/payment"
	"example.com/posd/poller"
)

// IO is where the stdin scanner and the terminal display read and write
// (nil: nothing to read, output dropped), and the config file SIGHUP
// reloads (none: no reload).
type IO struct {
	Stdin      io.Reader
	Stdout     io.Writer
	ConfigPath string
	// Wall is the wall clock (nil: time.Now); a test moves its own.
	Wall func() time.Time
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
	d, err := Open(cfg, log, tio)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Run(ctx, ready)
}

// listenAPI opens the API's listener: connections capped, TLS when it is
// not loopback (check-config insists), and how it is exposed.
func listenAPI(c config.API) (net.Listener, api.Protection, error) {
	prot := api.Protection{Listen: c.Listen, AllowedOrigins: c.AllowedOrigins}
	ln, err := api.Listen(c.Listen)
	if err != nil {
		return nil, prot, err
	}
	ln = httpguard.LimitListener(ln, c.MaxConnections)
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
// journal-check -start), because bbolt may panic on damage in goroutines
// of its own, and says how. A missing file is fine: it is about to be
// created.
func checkJournal(path string) (how string, err error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return "new", nil
	}
	self, err := os.Executable()
	if err != nil {
		return "not checked", nil // cannot check: open as usual
	}
	cmd := exec.Command(self, "journal-check", "-start", path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err == nil {
		return strings.TrimSpace(string(out)), nil
	}
	msg := stderr.String()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 3 || strings.Contains(msg, "panic") {
		return "whole file", fmt.Errorf("%s", strings.TrimSpace(lastLine(msg)))
	}
	return "not checked", nil // the checker itself could not run (not this binary): open as usual
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
func reload(cur config.Config, path string, client *payment.Client, svc *lane.Service, log *zap.Logger) (config.Config, bool) {
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
// final orders older than the retention go, and no record the head office
// has not acknowledged (the journal keeps those).
func prune(ctx context.Context, j *journal.Journal, clk *clock.Clock, keep time.Duration, log *zap.Logger) {
	for {
		// By the observed time: a wall clock run ahead makes nothing old.
		o, c, err := j.Prune(clk.Cutoff(keep))
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
func probeJournal(ctx context.Context, j *journal.Journal, svc *lane.Service) {
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
		if err := j.Probe(); err == nil {
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

func lanes(cfg config.Config) []lane.Config {
	var out []lane.Config
	for _, l := range cfg.Lanes {
		out = append(out, lane.Config{
			ID: l.ID, DeviceInfo: l.DeviceInfo, FixedFee: int64(l.FixedFee), MaxFee: int64(l.MaxFee),
			Subject: l.Subject, Body: l.Body, ChargeTTL: l.ChargeTTL,
		})
	}
	return out
}
