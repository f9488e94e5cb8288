package sim

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"example.com/posd/internal/journal"
	"example.com/posd/internal/money"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// runSeed runs one simulation in its own bubble and fails t with the seed
// and the trace if an invariant broke.
func runSeed(t *testing.T, seed uint64, events int) *Report {
	t.Helper()
	var r *Report
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		r = Run(Config{Seed: seed, Events: events, Dir: dir})
	})
	return r
}

// TestSimulation runs SEEDS seeds from SEED (or a random start) with
// EVENTS events each, in parallel: POSD_SIM_SEED, POSD_SIM_SEEDS,
// POSD_SIM_EVENTS (make sim sets them). The default is the small budget of
// make test; CI's is in .ci/run.
func TestSimulation(t *testing.T) {
	first := uint64(envInt("POSD_SIM_SEED", int(time.Now().UnixNano()%1_000_000)))
	seeds := envInt("POSD_SIM_SEEDS", 8)
	events := envInt("POSD_SIM_EVENTS", 1500)
	start := time.Now()
	var mu sync.Mutex
	var virtual time.Duration
	var total, checks, orders, crashes, restores, jumps, pruned, backdated int
	reached := Coverage{}
	t.Run("seeds", func(t *testing.T) {
		for s := first; s < first+uint64(seeds); s++ {
			t.Run(strconv.FormatUint(s, 10), func(t *testing.T) {
				t.Parallel()
				r := runSeed(t, s, events)
				mu.Lock()
				reached.add(r.Reached) // a failed run too: what it reached, it reached
				mu.Unlock()
				if r.Failed() {
					t.Fatalf("%s\nreplay: make sim SEED=%d SEEDS=1 EVENTS=%d (and add the seed to internal/sim/testdata/regressions.txt)", r, s, events)
				}
				mu.Lock()
				defer mu.Unlock()
				virtual += r.Virtual
				total += r.Events
				checks += r.Checks
				orders += r.Orders
				crashes += r.Crashes
				restores += r.Restores
				jumps += r.Jumps
				pruned += r.Pruned
				backdated += r.Backdated
			})
		}
	})
	el := time.Since(start)
	t.Logf("seeds %d..%d: %d events, %d orders, %d crashes, %d restores, %d clock jumps, %d records pruned (%d dated by a clock behind taken for old), %.0f events/s, %.1f virtual hours, %d invariant checks, in %s",
		first, first+uint64(seeds)-1, total, orders, crashes, restores, jumps, pruned, backdated, float64(total)/el.Seconds(), virtual.Hours(), checks, el.Round(time.Millisecond))
	checkCoverage(t, reached, seeds*events)
}

// TestSimulationRegressions replays every seed that ever failed.
func TestSimulationRegressions(t *testing.T) {
	f, err := os.Open("testdata/regressions.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		seed, err1 := strconv.ParseUint(fields[0], 10, 64)
		events, err2 := strconv.Atoi(fields[1])
		if err1 != nil || err2 != nil {
			t.Fatalf("regressions.txt: %q: want SEED EVENTS [why]", line)
		}
		if r := runSeed(t, seed, events); r.Failed() {
			t.Errorf("regression seed %d: %s", seed, r)
		}
	}
}

// TestSimulationIsDeterministic: one seed, one outcome. Goroutines of the
// same virtual instant may interleave differently, so the gateway model
// draws every choice from the seed and the call, never from arrival order.
func TestSimulationIsDeterministic(t *testing.T) {
	a := runSeed(t, 42, 1500)
	b := runSeed(t, 42, 1500)
	if a.Failed() || b.Failed() {
		t.Fatalf("seed 42 failed:\n%s\n%s", a, b)
	}
	if a.Digest != b.Digest || a.Events != b.Events || a.Orders != b.Orders || a.Virtual != b.Virtual {
		t.Fatalf("seed 42 ran twice to different ends:\n%s %s\n%s %s", a, a.Digest, b, b.Digest)
	}
}

func TestChargesAgreeWithAllTheirAttempts(t *testing.T) {
	first := uint64(envInt("POSD_SIM_SEED", 1))
	seeds := envInt("POSD_SIM_SEEDS", 4)
	events := envInt("POSD_SIM_EVENTS", 2000)
	for s := first; s < first+uint64(seeds); s++ {
		t.Run(strconv.FormatUint(s, 10), func(t *testing.T) {
			dir := t.TempDir()
			var r *Report
			synctest.Test(t, func(t *testing.T) { r = Run(Config{Seed: s, Events: events, Dir: dir}) })
			if r.Failed() {
				t.Logf("the simulation's own invariants failed: %v", r.Violations)
			}
			j, err := journal.Open(filepath.Join(dir, "journal.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			_ = j.View(func(tx *journal.Tx) error {
				var charges []money.Charge
				seen := map[string]bool{}
				_ = tx.EachOrder(func(o money.Order) error {
					if !seen[o.ChargeID] {
						seen[o.ChargeID] = true
						if c, ok, _ := tx.Charge(o.ChargeID); ok {
							charges = append(charges, c)
						}
					}
					return nil
				})
				for _, c := range charges {
					var kept []string
					var reopened bool
					for _, id := range c.AttemptIDs {
						o, ok, _ := tx.Order(id)
						if !ok {
							continue
						}
						reopened = reopened || o.Reopened != ""
						if o.Final() && o.State == money.Paid {
							kept = append(kept, id+"("+strconv.FormatInt(o.TotalFee-o.RefundedFee, 10)+")")
						}
					}
					switch {
					case len(kept) > 1:
						t.Errorf("charge %s (%s): money kept by %d attempts %v (reopened: %v)", c.ID, c.State, len(kept), kept, reopened)
					case len(kept) == 1 && c.State == money.Canceled:
						t.Errorf("charge %s canceled while attempt %v kept the money (reopened: %v)", c.ID, kept, reopened)
					case len(kept) == 0 && (c.State == money.Paid || c.State == money.PartiallyRefunded):
						t.Errorf("charge %s %s, no attempt of %v kept money (reopened: %v)", c.ID, c.State, c.AttemptIDs, reopened)
					}
				}
				return nil
			})
		})
	}
}
