package clock

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// skewed is a wall clock off by *off from the true (monotonic) time, as
// a box's is; the test moves it.
func skewed(off *time.Duration) func() time.Time {
	return func() time.Time { return time.Now().Round(0).Add(*off) }
}

func TestStartAgreeingWithTheJournalTakesTheWallClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var off time.Duration
		// Switched off for a week: the wall clock is right.
		c := New(time.Now().Add(-7*24*time.Hour), skewed(&off))
		assert.Empty(t, c.Faults())
		assert.False(t, c.Status().Degraded)
		time.Sleep(time.Hour)
		assert.Equal(t, time.Now().Round(0), c.Observed())
		assert.Equal(t, time.Now().Add(-48*time.Hour).Round(0), c.Cutoff(48*time.Hour))
	})
}

func TestStartAYearAheadOfTheJournalPrunesByTheJournal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		off := 365 * 24 * time.Hour
		seen := time.Now().Add(-time.Minute)
		c := New(seen, skewed(&off))
		f := c.Faults()
		require.Len(t, f, 1)
		assert.Equal(t, "start", f[0].When)
		assert.Equal(t, "ahead", f[0].Way)
		time.Sleep(2 * time.Hour)
		// Nothing is older than what posd has seen pass.
		assert.Equal(t, seen.Add(2*time.Hour).Round(0), c.Observed())
		st := c.Status()
		assert.True(t, st.Degraded)
		assert.Contains(t, st.Reason, "ahead of")
		assert.InDelta(t, off.Seconds()+60, st.Offset, 1)
	})
}

func TestStartBehindTheJournalIsAFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		off := -26 * 365 * 24 * time.Hour // a flat CMOS battery
		c := New(time.Now(), skewed(&off))
		f := c.Faults()
		require.Len(t, f, 1)
		assert.Equal(t, "behind", f[0].Way)
		assert.True(t, strings.Contains(f[0].Reason, "behind"), f[0].Reason)
		// The wall clock is earlier: pruning by it removes less, never more.
		assert.Equal(t, time.Now().Round(0).Add(off), c.Observed())
		assert.True(t, c.Status().Degraded)
	})
}

func TestAStartWithinTheToleranceIsNoFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		off := -Tolerance + time.Second
		c := New(time.Now(), skewed(&off))
		assert.Empty(t, c.Faults())
		assert.False(t, c.Status().Degraded)
	})
}

func TestAStepWhileRunningIsAFaultAndMakesNothingOld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var off time.Duration
		c := New(time.Now(), skewed(&off))
		time.Sleep(10 * time.Second)
		_, ok := c.Check()
		assert.False(t, ok, "a steady clock is no fault")

		off = 365 * 24 * time.Hour
		time.Sleep(10 * time.Second)
		f, ok := c.Check()
		require.True(t, ok)
		assert.Equal(t, "running", f.When)
		assert.Equal(t, "ahead", f.Way)
		assert.Equal(t, off, f.Offset)
		assert.Equal(t, time.Now().Round(0), c.Observed(), "pruning goes by the time measured, not the wall clock")
		assert.Equal(t, time.Now().Add(-24*time.Hour).Round(0), c.Cutoff(24*time.Hour))
		_, again := c.Check()
		assert.False(t, again, "a step is seen once")
		assert.True(t, c.Status().Degraded, "the wall clock still disagrees with the measured time")

		off = 0 // NTP sets it right
		time.Sleep(10 * time.Second)
		f, ok = c.Check()
		require.True(t, ok)
		assert.Equal(t, "behind", f.Way)
		st := c.Status()
		assert.True(t, st.Degraded, "for a day after a fault")
		assert.Len(t, st.Faults, 2)
		time.Sleep(FaultHold)
		assert.False(t, c.Status().Degraded)
	})
}

func TestARecordFromTheFutureIsInNoWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var off time.Duration
		c := New(time.Time{}, skewed(&off))
		now := time.Now()
		assert.True(t, c.Within(now.Add(-time.Hour), 2*time.Hour))
		assert.False(t, c.Within(now.Add(-3*time.Hour), 2*time.Hour))
		assert.True(t, c.Within(now.Add(Tolerance), 2*time.Hour), "a little ahead is drift")
		assert.False(t, c.Within(now.Add(Tolerance+time.Second), 2*time.Hour))
		assert.True(t, c.Future(now.AddDate(12, 0, 0)))
		assert.False(t, c.Within(now.AddDate(12, 0, 0), 100*365*24*time.Hour), "however long the window")
	})
}

func TestTheFaultsKeptAreBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var off time.Duration
		c := New(time.Now(), skewed(&off))
		for i := range 3 * MaxFaults {
			off = time.Duration(i%2) * time.Hour
			time.Sleep(time.Second)
			c.Check()
		}
		f := c.Faults()
		assert.Len(t, f, MaxFaults)
		assert.Equal(t, "ahead", f[0].Way, "the first fault is kept: it says how it began")
	})
}

// The journal was dated by a clock twelve years ahead; the wall clock is
// right. The first payment's time from the gateway agrees with the wall
// clock: it is believed, and the clock is no longer at fault.
func TestTheGatewayConfirmsARightWallClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var off time.Duration
		c := New(time.Now().AddDate(12, 0, 0), skewed(&off))
		require.Len(t, c.Faults(), 1)
		require.True(t, c.Status().Degraded)
		f, bad := c.Gateway(time.Now().Add(-3 * time.Second))
		assert.False(t, bad, "%+v", f)
		assert.Equal(t, time.Now().Round(0), c.Measured().Round(0))
		st := c.Status()
		assert.False(t, st.Degraded, st.Reason)
		assert.Len(t, st.Faults, 1, "the start's fault stays in the history")
	})
}

// A wall clock a year ahead after a typo, on a box whose journal is right:
// the gateway shows it wrong (once, not at every payment), and nothing
// becomes older for it.
func TestTheGatewayShowsAWallClockAhead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		off := 365 * 24 * time.Hour
		c := New(time.Now().Add(-time.Minute), skewed(&off))
		f, bad := c.Gateway(time.Now())
		require.True(t, bad)
		assert.Equal(t, "gateway", f.When)
		assert.Equal(t, "ahead", f.Way)
		assert.Contains(t, f.Reason, "ahead of the gateway")
		_, again := c.Gateway(time.Now().Add(time.Second))
		assert.False(t, again, "the same fault is told once")
		assert.Equal(t, time.Now().Add(-time.Minute).Round(0), c.Observed().Round(0), "the journal's, as measured since")
		assert.True(t, c.Status().Degraded)
	})
}

// A gateway's time earlier than what posd measured moves the measured time
// back (pruning then removes less); a later one, with the wall clock
// disagreeing, never moves it forward.
func TestTheGatewayNeverMakesAnythingOlderAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		off := -26 * 365 * 24 * time.Hour // the wall clock in 2000
		seen := time.Now().Add(-40 * 24 * time.Hour)
		c := New(seen, skewed(&off))
		_, bad := c.Gateway(time.Now()) // the gateway's true time, 40 days after the journal
		require.True(t, bad)
		assert.Equal(t, seen.Round(0), c.Measured().Round(0), "not forward on the gateway's word alone")
		_, bad = c.Gateway(seen.Add(-time.Hour))
		require.True(t, bad)
		assert.Equal(t, seen.Add(-time.Hour).Round(0), c.Measured().Round(0), "back is safe")
	})
}

// A journal whose observed time agreed with the wall clock, but whose
// records were dated by a clock that ran ahead: a start's fault too.
func TestRecordsFromTheFutureAreAStartFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var off time.Duration
		c := New(time.Now().Add(-time.Hour), skewed(&off))
		_, bad := c.Records(time.Now().Add(Tolerance))
		assert.False(t, bad, "within the tolerance")
		f, bad := c.Records(time.Now().AddDate(12, 0, 0))
		require.True(t, bad)
		assert.Equal(t, "start", f.When)
		assert.Contains(t, f.Reason, "records dated up to")
		assert.True(t, c.Status().Degraded)
		c.Gateway(time.Now()) // the first payment shows the wall clock right
		assert.False(t, c.Status().Degraded)
	})
}

// The wall clock steps 20 days ahead while posd runs; posd restarts a
// second later (a crash, an upgrade, an operator clearing /healthz). The
// box was off for a second: the restart keeps the fault, and pruning's
// cutoff stays with the true time.
func TestARestartKeepsAStepSeenWhileRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var off time.Duration
		c := New(time.Now().Add(-time.Minute), skewed(&off))
		time.Sleep(10 * time.Second)
		off = 20 * 24 * time.Hour
		time.Sleep(10 * time.Second)
		_, ok := c.Check()
		require.True(t, ok)
		seen, seenWall := c.Saved() // written at the stop

		time.Sleep(time.Second)
		c2 := Resume(seen, seenWall, skewed(&off))
		require.NotEmpty(t, c2.Faults(), "a known-wrong wall clock is not taken as right after a restart")
		assert.Equal(t, "ahead", c2.Faults()[0].Way)
		assert.True(t, c2.Status().Degraded)
		assert.Equal(t, time.Now().Round(0), c2.Observed().Round(0))
	})
}

// Each run the wall clock steps 25 days ahead and posd restarts a second
// later: no restart takes the step for time the box was off, so the
// observed time never ratchets ahead of the true time.
func TestRestartsNeverRatchetTheObservedTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var off time.Duration
		c := New(time.Now().Add(-time.Minute), skewed(&off))
		for range 3 {
			time.Sleep(10 * time.Second)
			off += 25 * 24 * time.Hour
			time.Sleep(10 * time.Second)
			c.Check()
			seen, seenWall := c.Saved()
			time.Sleep(time.Second)
			c = Resume(seen, seenWall, skewed(&off))
		}
		assert.LessOrEqual(t, c.Observed().Sub(time.Now().Round(0)), time.Second)
	})
}

// Switched off for three days with a right clock: the wall clock's account
// of the time off is taken; set right while the box was off (it had run
// ahead), the wall clock agrees with the measured time again.
func TestResumeTakesTheTimeTheBoxWasOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var off time.Duration
		c := New(time.Now(), skewed(&off))
		seen, seenWall := c.Saved()
		time.Sleep(3 * 24 * time.Hour) // off: the monotonic clock starts again at the next start
		c2 := Resume(seen, seenWall, skewed(&off))
		assert.Empty(t, c2.Faults())
		assert.Equal(t, time.Now().Round(0), c2.Measured().Round(0))

		off = 20 * 24 * time.Hour
		time.Sleep(time.Minute)
		c2.Check()
		seen, seenWall = c2.Saved()
		off = 0 // set right while the box was off
		time.Sleep(time.Hour)
		c3 := Resume(seen, seenWall, skewed(&off))
		assert.Empty(t, c3.Faults(), "the wall clock agrees with the measured time again")
		assert.LessOrEqual(t, time.Now().Round(0).Sub(c3.Measured()), time.Hour+time.Second, "the hour off is not known: never ahead")
	})
}
