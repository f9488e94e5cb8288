package deps

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// repoFiles are the repository's tracked files (paths from its root).
func repoFiles(t *testing.T) []string {
	cmd := exec.Command("git", "ls-files")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Skip("not a git checkout: " + err.Error())
	}
	return strings.Fields(string(out))
}

// History belongs in git and CHANGELOG.md: no file, test or comment is
// named after a review round or an issue, and a defect is switched on by
// its name.
func TestNoHistoryInNames(t *testing.T) {
	issue := regexp.MustCompile(`(?i)\b(issue|review|round)[ -]?#?\d+`)
	testName := regexp.MustCompile(`func ((Test|Fuzz|Benchmark)\w*(Review|Issue|Round)\d\w*)\(`)
	for _, f := range repoFiles(t) {
		base := strings.ToLower(filepath.Base(f))
		if strings.Contains(base, "review") || regexp.MustCompile(`issue\d|round\d`).MatchString(base) {
			t.Errorf("%s: a file named for a round of work", f)
		}
		if f == "CHANGELOG.md" || !(strings.HasSuffix(f, ".go") || strings.HasSuffix(f, ".md") || strings.HasSuffix(f, ".yaml") || strings.HasSuffix(f, ".conf") || f == "Makefile" || strings.HasPrefix(f, ".ci/")) {
			continue
		}
		b, err := os.ReadFile(filepath.Join("../..", f))
		require.NoError(t, err)
		s := string(b)
		for _, m := range issue.FindAllString(s, -1) {
			t.Errorf("%s: %q: history goes to git and CHANGELOG.md", f, m)
		}
		for _, m := range testName.FindAllStringSubmatch(s, -1) {
			t.Errorf("%s: %s is named for a round of work, not a behaviour", f, m[1])
		}
		if regexp.MustCompile(`defect\.On\(\d`).MatchString(s) {
			t.Errorf("%s: a defect switched on by number, not by name", f)
		}
	}
}

// The docs name what exists: every path a doc, a README or a package's
// comment names under the module's folders is there.
func TestDocsNameWhatExists(t *testing.T) {
	path := regexp.MustCompile("`((?:cmd|internal|payment|poller|scanner|display|test|docs|packaging|systemd|\\.ci)/[A-Za-z0-9_./-]*)`")
	for _, f := range repoFiles(t) {
		if f == "CHANGELOG.md" || !(strings.HasSuffix(f, ".md") || strings.HasSuffix(f, "doc.go")) {
			continue
		}
		b, err := os.ReadFile(filepath.Join("../..", f))
		require.NoError(t, err)
		for _, m := range path.FindAllStringSubmatch(string(b), -1) {
			p := strings.TrimSuffix(m[1], "/")
			if sym := regexp.MustCompile(`^(.*)\.[A-Z]\w*$`).FindStringSubmatch(p); sym != nil {
				p = sym[1] // a package's identifier: the package is what must exist
			}
			if _, err := os.Stat(filepath.Join("../..", p)); err != nil {
				t.Errorf("%s names %s, which does not exist", f, m[1])
			}
		}
	}
}

// Every package says what it is for, and every fuzz target runs in make
// fuzz.
func TestEveryPackageDocumentedEveryFuzzRun(t *testing.T) {
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}}\t{{.Doc}}", Module+"/...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	require.NoError(t, err)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, doc, _ := strings.Cut(line, "\t")
		if strings.HasPrefix(pkg, Module+"/test/") && !strings.HasSuffix(pkg, "/harness") && !strings.HasSuffix(pkg, "/tillclient") {
			continue // a room of system tests: test files only
		}
		assert.NotEmpty(t, doc, "%s has no package doc", pkg)
	}
	mk, err := os.ReadFile("../../Makefile")
	require.NoError(t, err)
	fuzz := regexp.MustCompile(`func (Fuzz\w+)\(`)
	require.NoError(t, filepath.WalkDir("../..", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() && (d.Name() == ".git" || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range fuzz.FindAllStringSubmatch(string(b), -1) {
			assert.Contains(t, string(mk), "'^"+m[1]+"$$'", "%s: %s is not in make fuzz", p, m[1])
		}
		return nil
	}))
}
