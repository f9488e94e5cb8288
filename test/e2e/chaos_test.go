package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/test/harness"
)

// TestChaos: many charges over several lanes at once, random faults from a
// seed on every call kind, posd killed with SIGKILL and restarted at random
// moments. At the end every charge is final and, order by order, posd and
// the gateway agree. POSD_CHAOS_ROUNDS (make chaos ROUNDS=N) runs more
// rounds; POSD_CHAOS_SEED reproduces a run.
func TestChaos(t *testing.T) {
	rounds := harness.EnvInt("POSD_CHAOS_ROUNDS", 1)
	seed := uint64(harness.EnvInt("POSD_CHAOS_SEED", int(time.Now().UnixNano()%1_000_000)))
	for r := range rounds {
		s := seed + uint64(r)
		t.Run(fmt.Sprintf("seed=%d", s), func(t *testing.T) {
			t.Logf("reproduce with POSD_CHAOS_SEED=%d POSD_CHAOS_ROUNDS=1", s)
			runChaos(t, s, harness.EnvInt("POSD_CHAOS_CHARGES", 210), harness.EnvInt("POSD_CHAOS_RESTARTS", 10))
		})
	}
}

func chaosCode(rng *rand.Rand) string {
	sc := rng.IntN(80) // paid at once
	if rng.IntN(10) < 4 {
		sc = 80 + rng.IntN(10) // the harder rows
	}
	return harness.AlipayCode(sc)
}

func runChaos(t *testing.T, seed uint64, total, restarts int) {
	g := startSandbox(t, "-slow", "1s")
	p := startFaultProxy(t, g.url, 600*time.Millisecond, randomFaults(seed, 0.12))
	lanes := []string{"L1", "L2", "L3"}
	d := newDaemon(t, g, opts{gateway: p.url, lanes: `
  - {id: L1, device_info: POS01}
  - {id: L2, device_info: POS02}
  - {id: L3, device_info: POS03}
`})
	d.start()

	var (
		mu      sync.Mutex
		charges = map[string]bool{}
		started atomic.Int64
		kills   atomic.Int64
		wg      sync.WaitGroup
		errs    = make(chan error, 100)
	)
	for li, lane := range lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(li)))
			// Charges go on until both total have started and posd has
			// been killed restarts times: a fast run still crashes mid-flow.
			for i := 0; started.Add(1) <= int64(total) || kills.Load() < int64(restarts); i++ {
				id, err := chaosCharge(d, lane, fmt.Sprintf("chaos-%d-%s-%d", seed, lane, i), chaosCode(rng))
				if err != nil {
					errs <- fmt.Errorf("lane %s charge %d: %w", lane, i, err)
					return
				}
				mu.Lock()
				charges[id] = true
				mu.Unlock()
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	// The killer runs here, on the test's goroutine.
	rng := rand.New(rand.NewPCG(seed, 99))
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-time.After(time.Duration(300+rng.IntN(1200)) * time.Millisecond):
			if kills.Load() < int64(restarts*3) {
				d.kill()
				kills.Add(1)
				d.start()
			}
		}
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	require.GreaterOrEqual(t, kills.Load(), int64(restarts), "posd was restarted %d times", kills.Load())

	// Faults off: every order must now reach its final state.
	p.setScript(nil)
	harness.WaitFor(t, 90*time.Second, func() bool {
		code, body, err := d.try("GET", "/v1/orders?state=unresolved", nil)
		return err == nil && code == 200 && bytes.Equal(bytes.TrimSpace(body), []byte(`{"orders":[]}`))
	}, "every order final")

	var all []harness.ChargeJSON
	paid := 0
	for id := range charges {
		c := d.charge(id, "")
		require.Contains(t, []string{"paid", "canceled"}, c.State, "charge %s ends final: %+v", id, c)
		if c.State == "paid" {
			paid++
		}
		all = append(all, c)
	}
	l := g.ledger(t)
	checkLedger(t, l, all...)
	known := map[string]bool{}
	for _, c := range all {
		for _, a := range c.Attempts {
			known[a.MchTradeID] = true
		}
	}
	orphans := 0
	for _, o := range l.Orders {
		if !known[o.MchTradeID] {
			orphans++
			assert.Zero(t, o.Charged, "the gateway holds money for an order posd never showed: %+v", o)
		}
	}
	faults := p.faults()
	for _, f := range AllFaults {
		assert.Positive(t, faults[f], "fault %s injected at least once", f)
	}
	t.Logf("chaos seed %d: %d charges (%d paid), %d gateway orders, %d pay requests, %d restarts (SIGKILL), faults %v, %d orders unknown to posd (none charged), 0 disagreements",
		seed, len(all), paid, len(l.Orders), len(l.PayRequests), kills.Load(), faults, orphans)
	assert.GreaterOrEqual(t, len(all), 200)
}

// chaosCharge takes one charge through open, scan and settle, whatever
// posd's restarts do to the calls, and leaves it final (paid or canceled).
func chaosCharge(d *posdProc, lane, key, code string) (string, error) {
	deadline := time.Now().Add(2 * time.Minute)
	var c harness.ChargeJSON
	// Open (the Idempotency-Key makes a retried POST the same charge).
	for {
		if time.Now().After(deadline) {
			return "", fmt.Errorf("could not open a charge")
		}
		status, body, err := d.try("POST", "/v1/charges", map[string]any{"lane": lane, "total_fee": 100 + len(key), "subject": "chaos", "body": "chaos"}, "Idempotency-Key", key)
		if err == nil && status == 201 {
			_ = json.Unmarshal(body, &c)
			break
		}
		if err == nil && status == 409 {
			freeLane(d, lane)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Scan once; a retry after a lost answer meets "already used" or
	// "in progress", never a second submission.
	for {
		status, _, err := d.try("POST", "/v1/lanes/"+lane+"/scans", map[string]string{"auth_code": code})
		if err == nil && status != 503 {
			break
		}
		if time.Now().After(deadline) {
			return c.ID, fmt.Errorf("could not scan")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Settle, then cancel what ended unpaid.
	for {
		if time.Now().After(deadline) {
			return c.ID, fmt.Errorf("charge %s did not settle: %+v", c.ID, c)
		}
		status, body, err := d.try("GET", "/v1/charges/"+c.ID+"?wait=2s", nil)
		if err != nil || status != 200 {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		_ = json.Unmarshal(body, &c)
		switch c.State {
		case "paid", "canceled", "needs_attention":
			return c.ID, nil
		case "awaiting_scan":
			_, _, _ = d.try("DELETE", "/v1/charges/"+c.ID, nil)
		}
	}
}

// freeLane cancels a charge left open on the lane by an earlier, cut-short
// round (its answer lost in a restart).
func freeLane(d *posdProc, lane string) {
	status, body, err := d.try("GET", "/v1/lanes/"+lane, nil)
	if err != nil || status != 200 {
		return
	}
	var l struct {
		Charge *harness.ChargeJSON `json:"charge"`
	}
	_ = json.Unmarshal(body, &l)
	if l.Charge != nil && l.Charge.State == "awaiting_scan" {
		_, _, _ = d.try("DELETE", "/v1/charges/"+l.Charge.ID, nil)
	}
}
