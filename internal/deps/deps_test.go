package deps

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// graph is the module's package graph as go list tells it: each package
// (not its tests) and everything it depends on, under Module.
func graph(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, Module+"/...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	require.NoError(t, err, "go list")
	g := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg, ok := strings.CutPrefix(f[0], Module+"/")
		if !ok {
			continue
		}
		for _, d := range f[1:] {
			if d, ok := strings.CutPrefix(d, Module+"/"); ok {
				g[pkg] = append(g[pkg], d)
			}
		}
		if g[pkg] == nil {
			g[pkg] = []string{}
		}
	}
	require.Contains(t, g, "internal/hq", "the module's packages listed")
	return g
}

// The package graph keeps docs/architecture.md's rules.
func TestImportRules(t *testing.T) {
	for _, b := range Check(graph(t)) {
		t.Error(b)
	}
}

// A rule broken is named with its reason: a scanner that imports the
// protocol, head office that takes in the box's journal.
func TestABrokenRuleIsNamed(t *testing.T) {
	got := Check(map[string][]string{
		"scanner":     {"internal/device", "payment"},
		"internal/hq": {"internal/csvsafe", "internal/fleet", "internal/journal"},
		"cmd/posd":    {"internal/daemon", "test/harness"},
		"payment":     {"payment/sandbox"},
	})
	assert.Equal(t, []string{
		"cmd/posd depends on test/harness: what ships never depends on the system tests' harness",
		"internal/hq depends on internal/fleet: head office imports nothing of the box's money path: it trusts no box, and a change there must not move it",
		"internal/hq depends on internal/journal: head office imports nothing of the box's money path: it trusts no box, and a change there must not move it",
		"scanner depends on payment: a reader knows nothing of money: it turns a device's bytes into a code and hands it on",
	}, got)
}
