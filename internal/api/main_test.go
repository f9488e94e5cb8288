package api_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"example.com/posd/test/harness"
)

// TestMain fails the package's tests if any exchange broke the contract
// (docs/openapi.yaml) or any goroutine outlives them.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		code = harness.ContractKept()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
