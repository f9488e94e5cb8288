package sim

// The simulation reconciles and reopens; its charge rule (checkCharge)
// holds a charge against its latest attempt. This test runs seeds and then holds every charge of the final journal
// against all its attempts: no charge paid by two attempts that both kept
// the money, no charge shown paid without an attempt that kept money, no
// charge shown canceled while one of its attempts kept money.

import (
	"path/filepath"
	"strconv"
	"testing"
	"testing/synctest"

	"example.com/posd/internal/journal"
	"example.com/posd/internal/money"
)

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
