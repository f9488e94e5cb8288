package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"testing"
)

// Build compiles the module's command pkg (such as "cmd/posd") into dir
// and returns the binary's path; race builds it with the race detector,
// as the suites run posd. Timings and footprints are taken of a build
// without it, as shipped.
func Build(dir, pkg string, race bool) (string, error) {
	out := filepath.Join(dir, path.Base(pkg))
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	if b, err := exec.Command("go", append(args, "example.com/posd/"+pkg)...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return out, nil
}

// Run runs a suite from its TestMain: build puts what the suite needs into
// a temporary folder, then the tests run, then [CheckSecrets]. It returns
// the exit code.
func Run(m *testing.M, build func(dir string) error) int {
	dir, err := os.MkdirTemp("", "posd-suite")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if build != nil {
		if err := build(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if code := m.Run(); code != 0 {
		return code
	}
	return max(CheckSecrets(), ContractKept())
}
