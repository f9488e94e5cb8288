package clock

import (
	"cmp"
	"time"

	"example.com/posd/internal/journal"
)

// Open starts a clock from what the journal saved at posd's last save (or,
// in a journal of a posd that saved nothing, the newest time its records
// hold): a wall clock that disagrees, or records dated after it, are
// faults from the first second. On an error reading the journal the clock
// still starts, from the wall clock, and the error is returned.
func Open(j *journal.Journal, wall func() time.Time) (*Clock, error) {
	seen, seenWall, err := j.Observed()
	newest, nerr := j.Newest()
	if seen.IsZero() {
		seen = newest
	}
	c := Resume(seen, seenWall, wall)
	if newest.After(seen) {
		c.Records(newest)
	}
	return c, cmp.Or(err, nerr)
}

// Save writes to the journal what the next start resumes from.
func (c *Clock) Save(j *journal.Journal) error { return j.SetObserved(c.Saved()) }
