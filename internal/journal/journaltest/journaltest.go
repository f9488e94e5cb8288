// Package journaltest gives a test or benchmark a fresh journal of its own
// when the journal is a fixture rather than what is under test: a test of
// opening, reopening or restoring a journal opens the file itself, since
// how that goes is what it checks.
package journaltest

import (
	"path/filepath"
	"testing"

	"example.com/posd/internal/journal"
)

// Open is a new, empty journal in tb.TempDir(), failing the test if it
// cannot be opened. It is closed when the test ends, after the cleanups
// registered later: what the test started on it stops first.
func Open(tb testing.TB) *journal.Journal {
	tb.Helper()
	return OpenWith(tb, journal.Options{})
}

// OpenWith is Open with options, for the tests that want a journal that
// is fast rather than durable (NoSync) and the like.
func OpenWith(tb testing.TB, o journal.Options) *journal.Journal {
	tb.Helper()
	j, err := journal.OpenWith(filepath.Join(tb.TempDir(), "journal.db"), o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		// A test may close it itself (to make every write fail): a second
		// Close is harmless and returns nil.
		if err := j.Close(); err != nil {
			tb.Errorf("journaltest: close: %v", err)
		}
	})
	return j
}
