package journal

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: Batch
// hands writes to bbolt's group commit, which runs them on goroutines of
// its own.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
