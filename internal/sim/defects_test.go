//go:build posd_defects

package sim

import (
	"testing"

	"example.com/posd/internal/defect"
)

// TestSimulationCatchesDefects proves the simulator: each money-path defect
// put back on purpose, must make some seed fail within the
// budget CI gives the simulation. Run with -tags posd_defects (make sim
// does, after the plain run).
func TestSimulationCatchesDefects(t *testing.T) {
	seeds := envInt("POSD_SIM_DEFECT_SEEDS", 200)
	events := envInt("POSD_SIM_DEFECT_EVENTS", 5000)
	only := envInt("POSD_SIM_DEFECT", 0) // one defect alone (its number in defect.All), to study it
	for _, n := range defect.All {
		if only != 0 && int(n) != only {
			continue
		}
		defect.Set(n)
		caught := false
		var s uint64
		for s = 1; s <= uint64(seeds) && !caught; s++ {
			r := runSeed(t, s, events)
			if r.Failed() {
				caught = true
				t.Logf("defect %s caught by seed %d after %d events: %s", n, s, r.Events, r.Violations[0])
			}
		}
		if !caught {
			t.Errorf("defect %s put back, and %d seeds × %d events did not catch it", n, seeds, events)
		}
	}
	defect.Set(0)
}
