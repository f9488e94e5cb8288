// Package clock is posd's reading of time when the wall clock may be wrong.
//
// A store's box starts in 1970 on a flat CMOS battery, runs a year ahead
// after a technician's typo, and is set right later by NTP. Money must not
// follow it: a record dated in the future binds nothing, and nothing is
// deleted because the wall clock says it is old. The Clock keeps, beside
// the wall clock, the time posd has seen pass (Measured): the time the
// journal kept at posd's last save, plus the time the box was off as the
// wall clock tells it (up to a month), plus what the monotonic clock has
// measured since. A wall clock that disagrees with it at a start, a step
// while posd runs, or a payment's time from the gateway that disagrees
// with the wall clock is a fault: logged, counted and shown, and the
// measured time goes on as measured.
package clock

import (
	"fmt"
	"sync"
	"time"

	"example.com/posd/internal/defect"
)

const (
	// Tolerance: a record dated more than this after the wall clock is from
	// the future, and a step of the wall clock against the monotonic one
	// larger than this is a jump. NTP slews small errors and steps large
	// ones; a few minutes is far above a slew and far below any window.
	Tolerance = 5 * time.Minute
	// MaxOffline: a wall clock that moved further than this since posd's
	// last save is a clock fault at the next start, not a box that was
	// switched off. The measured time then goes on from the journal's.
	MaxOffline = 30 * 24 * time.Hour
)

// Fault is a clock fault: a start whose wall clock disagrees with the
// measured time or the journal's records, a step while running, or a
// payment's time from the gateway that disagrees with the wall clock.
type Fault struct {
	When   string        `json:"when"`      // "start", "running" or "gateway"
	Way    string        `json:"direction"` // "ahead" or "behind"
	Offset time.Duration `json:"-"`         // wall clock minus what posd expected
	At     time.Time     `json:"at"`        // the wall clock when it was seen
	Reason string        `json:"reason"`
	mono   time.Duration // the monotonic time since start when it was seen
}

// Clock is posd's clock. Its methods are safe for concurrent use.
type Clock struct {
	wall  func() time.Time
	start time.Time // a monotonic reading, at New

	mu       sync.Mutex
	base     time.Time     // the measured time at start (a gateway's answer may set it again)
	gwOff    time.Duration // the wall clock's offset from the gateway's time at the last fault it showed
	seenN    int           // faults seen since start
	sureN    int           // of which the gateway had confirmed the wall clock after
	lastWall time.Time     // the wall clock at the last Check (no monotonic reading)
	lastMono time.Duration
	faults   []Fault // every fault seen, oldest first (a few at most)
}

// New starts a clock from the journal's observed time (zero: none yet),
// for a journal that kept no reading of the wall clock beside it: the two
// agreed when it was written. wall is the wall clock (time.Now; the
// simulation moves its own); the monotonic clock is the runtime's.
func New(seen time.Time, wall func() time.Time) *Clock { return Resume(seen, time.Time{}, wall) }

// Resume starts a clock from what the journal kept at posd's last save
// (Saved): the measured time then, and the wall clock then. The wall
// clock's move since is taken as time the box was off, up to MaxOffline;
// the measured time goes on from there, and a wall clock that disagrees
// with it (it stepped while posd ran, or was set while the box was off)
// is a fault from the first second: a restart never makes a known-wrong
// wall clock right.
func Resume(seen, seenWall time.Time, wall func() time.Time) *Clock {
	if wall == nil {
		wall = time.Now
	}
	c := &Clock{wall: wall, start: time.Now()}
	c.mu.Lock() // the start's faults are recorded like any other
	defer c.mu.Unlock()
	now := wall().Round(0)
	c.lastWall, c.base = now, now
	if seen.IsZero() {
		return c
	}
	if seenWall.IsZero() {
		seenWall = seen
	}
	// How long the box was off, as the wall clock tells. One that went back
	// meanwhile, or moved more than a box is switched off (set right, or a
	// CMOS battery), tells nothing of it: it is judged against the
	// measured time alone.
	off := now.Sub(seenWall)
	if off < 0 || off > MaxOffline {
		off = max(now.Sub(seen), 0)
	}
	if off > MaxOffline {
		c.base = seen
		c.faultLocked(Fault{When: "start", Way: "ahead", Offset: now.Sub(seen), At: now,
			Reason: fmt.Sprintf("the wall clock (%s) is %s ahead of the time posd had measured at its last save (%s), more than a box is switched off (%s)",
				stamp(now), round(now.Sub(seen)), stamp(seen), round(MaxOffline))})
		return c
	}
	c.base = seen.Add(off)
	switch d := now.Sub(c.base); {
	case d.Abs() > Tolerance:
		c.faultLocked(Fault{When: "start", Way: direction(d), Offset: d, At: now,
			Reason: fmt.Sprintf("the wall clock (%s) is %s %s the time posd has measured (%s): it stepped while posd ran, or was set while the box was off",
				stamp(now), round(d.Abs()), relation(d), stamp(c.base))})
	case d > 0:
		c.base = now // agreeing: the wall clock, to the second (never backwards)
	}
	return c
}

// Saved is what the journal keeps for the next start (Resume): the
// measured time and the wall clock, now.
func (c *Clock) Saved() (observed, wall time.Time) {
	return c.Measured(), c.wall().Round(0)
}

// Gateway is the time a gateway's signed answer to a pay just made says
// the payment completed (its time_end): a witness of the true time,
// within the call's latency. When the wall clock agrees with it, the wall
// clock is believed, whatever the journal said (a journal dated by a
// clock that ran ahead, a box stored for months). When they disagree, it
// is a fault, and the measured time may move back to the gateway's, never
// forward: two sources must agree before anything becomes older.
func (c *Clock) Gateway(g time.Time) (Fault, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now, since := c.wall().Round(0), time.Since(c.start)
	off := now.Sub(g)
	if off.Abs() <= Tolerance {
		c.base, c.gwOff, c.sureN = now.Add(-since), 0, c.seenN
		return Fault{}, false
	}
	if m := c.base.Add(since); g.Before(m) {
		c.base = g.Add(-since)
	}
	if c.gwOff != 0 && (off-c.gwOff).Abs() <= Tolerance {
		return Fault{}, false // the same fault, told again by each payment
	}
	c.gwOff = off
	f := Fault{When: "gateway", Way: direction(off), Offset: off, At: now, mono: since,
		Reason: fmt.Sprintf("the wall clock (%s) is %s %s the gateway's time of a payment just made (%s)", stamp(now), round(off.Abs()), relation(off), stamp(g))}
	c.faultLocked(f)
	return f, true
}

// Records tells the clock the newest time the journal's records hold: one
// later than the wall clock is a start's fault (a clock that ran ahead
// wrote them, or this one is behind), though the journal's observed time
// agreed.
func (c *Clock) Records(newest time.Time) (Fault, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.wall().Round(0)
	if !newest.After(now.Add(Tolerance)) {
		return Fault{}, false
	}
	off := now.Sub(newest)
	f := Fault{When: "start", Way: "behind", Offset: off, At: now,
		Reason: fmt.Sprintf("the journal holds records dated up to %s, %s after the wall clock (%s): written under a clock that ran ahead, or this one is behind",
			stamp(newest), round(-off), stamp(now))}
	c.faultLocked(f)
	return f, true
}

// Now is the wall clock: what records are dated with.
func (c *Clock) Now() time.Time { return c.wall() }

// Measured is what posd has seen pass, whatever the wall clock says: the
// measured time at start (or as a payment's time reset it) plus the
// monotonic time since.
func (c *Clock) Measured() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.measuredLocked()
}

func (c *Clock) measuredLocked() time.Time { return c.base.Add(time.Since(c.start)).Round(0) }

// Observed is the wall clock, but never ahead of Measured: pruning's
// cutoff is taken from it, so that a clock run ahead makes nothing old.
func (c *Clock) Observed() time.Time { return earlier(c.wall().Round(0), c.Measured()) }

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// Cutoff is the time before which a record final that long ago (keep) may
// be pruned: by the observed time, so that a clock run ahead makes nothing
// old.
func (c *Clock) Cutoff(keep time.Duration) time.Time {
	if defect.On(defect.PruneByWallClock) {
		return c.wall().Add(-keep)
	}
	return c.Observed().Add(-keep)
}

// Future says whether t is later than the wall clock by more than the
// tolerance: a record written under a clock that ran ahead.
func (c *Clock) Future(t time.Time) bool { return t.After(c.wall().Add(Tolerance)) }

// Within says whether a record dated t is inside a window of length d,
// judged by the clock that dated it: not from the future, and not older
// than d by the wall clock. A wall clock run ahead closes a window early
// (a till's retry opens a new charge, which the cashier sees); it never
// keeps one open for another sale. (Pruning, which can only err one way,
// goes by the observed time instead: Cutoff.)
func (c *Clock) Within(t time.Time, d time.Duration) bool {
	if defect.On(defect.OneSidedWindow) {
		return c.wall().Sub(t) <= d
	}
	return !c.Future(t) && c.wall().Sub(t) <= d
}

// Check compares how far the wall clock moved since the last Check with
// what the monotonic clock measured; a step larger than the tolerance is a
// fault, returned (and kept). Call it every few seconds.
func (c *Clock) Check() (Fault, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now, mono := c.wall().Round(0), time.Since(c.start)
	step := now.Sub(c.lastWall) - (mono - c.lastMono)
	c.lastWall, c.lastMono = now, mono
	if step.Abs() <= Tolerance {
		return Fault{}, false
	}
	way := "forward"
	if step < 0 {
		way = "back"
	}
	f := Fault{When: "running", Way: direction(step), Offset: step, At: now, mono: mono,
		Reason: fmt.Sprintf("the wall clock stepped %s %s while posd ran (now %s)", round(step.Abs()), way, stamp(now))}
	c.faultLocked(f)
	return f, true
}

// MaxFaults bounds the faults kept: the first ones say how it began.
const MaxFaults = 16

func (c *Clock) faultLocked(f Fault) {
	c.seenN++
	if len(c.faults) == MaxFaults {
		c.faults = append(c.faults[:1], c.faults[2:]...)
	}
	c.faults = append(c.faults, f)
}

// Faults are the faults seen since start, oldest first.
func (c *Clock) Faults() []Fault {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Fault(nil), c.faults...)
}

// Status is the clock as /healthz shows it. The clock is degraded while
// the wall clock and the measured time disagree by more than the
// tolerance, or for a day after a fault: long enough for a monitor that
// polls to see a step NTP corrected at once.
type Status struct {
	Degraded bool      `json:"degraded"`
	Reason   string    `json:"reason,omitempty"`
	Wall     time.Time `json:"wall"`
	Observed time.Time `json:"observed"`
	Offset   float64   `json:"offset_seconds"` // wall clock minus measured time
	Faults   []Fault   `json:"faults,omitempty"`
}

// FaultHold is how long a fault keeps the clock degraded after it is seen.
const FaultHold = 24 * time.Hour

// Status is the clock's state now.
func (c *Clock) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	now, m := c.wall().Round(0), c.measuredLocked()
	off := now.Sub(m)
	st := Status{Wall: now, Observed: earlier(now, m), Offset: off.Seconds(), Faults: append([]Fault(nil), c.faults...)}
	switch {
	case off.Abs() > Tolerance:
		st.Degraded, st.Reason = true, fmt.Sprintf("clock: the wall clock is %s %s the time posd has measured (%s)", round(off.Abs()), relation(off), stamp(m))
	case len(c.faults) > 0 && c.seenN > c.sureN && time.Since(c.start)-c.faults[len(c.faults)-1].mono < FaultHold:
		st.Degraded, st.Reason = true, "clock: "+c.faults[len(c.faults)-1].Reason
	}
	return st
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func round(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%.0f days", d.Hours()/24)
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	}
	return d.Round(time.Second).String()
}

// direction and relation name which way the wall clock is off by d.
func direction(d time.Duration) string {
	if d < 0 {
		return "behind"
	}
	return "ahead"
}

func relation(d time.Duration) string {
	if d < 0 {
		return "behind"
	}
	return "ahead of"
}
