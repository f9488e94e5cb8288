package daemon

import (
	"context"
	"fmt"
	"sync"
	"time"

	"example.com/posd/internal/config"
	"example.com/posd/internal/device"
	"example.com/posd/payment"
	"example.com/posd/scanner"
)

// Scan reads the configured scanners without paying, so that an installer
// can try each one (and a test can count what a driver delivers): every
// code read is printed with its lane, source, wallet, masked digits and a
// short fingerprint (the first 12 hex digits of its SHA-256), never in
// full. Device changes are printed too. lane, when not empty, limits it to
// one lane. It returns when ctx ends.
func Scan(ctx context.Context, cfg config.Config, tio IO, lane string) error {
	router, err := scanner.NewRouter(cfg.Wallets)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(tio.Stdout, format+"\n", args...)
	}
	var wg sync.WaitGroup
	n := 0
	for _, l := range cfg.Lanes {
		if lane != "" && l.ID != lane {
			continue
		}
		for _, sc := range l.Scanners {
			n++
			id, label := l.ID, sc.Label()
			src := scannerSource(sc, tio, func(st device.State, detail string) {
				say("device lane=%s scanner=%s state=%s detail=%q", id, label, st, detail)
			})
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := src.Run(ctx, func(s scanner.Scan) {
					at := time.Now()
					code, w, err := router.Route(s.Code)
					if err != nil {
						say("refused lane=%s source=%s len=%d at=%d: %v", id, s.Source, len(s.Code), at.UnixNano(), err)
						return
					}
					say("scan lane=%s source=%s scene=%s wallet=%s code=%s fp=%s at=%d",
						id, s.Source, orScene(s.Scene), w.Name, payment.MaskCode(code), payment.CodeHash(code)[:12], at.UnixNano())
				})
				if err != nil && ctx.Err() == nil {
					say("stopped lane=%s scanner=%s: %v", id, label, err)
				}
			}()
		}
	}
	if n == 0 {
		return fmt.Errorf("no scanner configured%s", map[bool]string{true: " on lane " + lane}[lane != ""])
	}
	say("reading %d scanner(s); nothing is paid. Ctrl-C ends.", n)
	wg.Wait()
	return nil
}

func orScene(s string) string {
	if s == "" {
		return "bar_code"
	}
	return s
}
