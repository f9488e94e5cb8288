// Command testsum reads `go test -json` on stdin and prints what go test
// prints without -json: a line per package, and the output of what failed.
// It ends by naming the tests that skipped, with their reason: a test that
// needs a tool this machine lacks skips, and a green run should say what it
// did not test.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

type pkg struct {
	out   []string            // the package's own lines
	tests map[string][]string // each running test's lines
	kids  map[string]string   // failed subtests, printed under their parent
}

func main() {
	pkgs := map[string]*pkg{}
	var skipped []string
	failed := false
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 64<<10), 16<<20)
	for in.Scan() {
		var e event
		if err := json.Unmarshal(in.Bytes(), &e); err != nil || e.Action == "" {
			fmt.Println(in.Text())
			continue
		}
		p := pkgs[e.Package]
		if p == nil {
			p = &pkg{tests: map[string][]string{}, kids: map[string]string{}}
			pkgs[e.Package] = p
		}
		switch {
		case e.Action == "build-output":
			fmt.Print(e.Output)
		case e.Action == "output" && e.Test != "":
			if !strings.HasPrefix(e.Output, "=== ") {
				p.tests[e.Test] = append(p.tests[e.Test], e.Output)
			}
		case e.Action == "output":
			p.out = append(p.out, e.Output)
		case e.Test != "" && e.Action == "skip":
			skipped = append(skipped, fmt.Sprintf("  %s %s%s", e.Package, e.Test, reason(p.tests[e.Test])))
			delete(p.tests, e.Test)
		case e.Test != "" && e.Action == "fail":
			block := p.failed(e.Test)
			if i := strings.LastIndexByte(e.Test, '/'); i > 0 {
				p.kids[e.Test[:i]] += block
			} else {
				fmt.Print(block)
			}
		case e.Test != "" && e.Action == "pass":
			delete(p.tests, e.Test)
			delete(p.kids, e.Test)
		case e.Test != "":
			// run, pause, cont: the test goes on
		case e.Action == "fail":
			failed = true
			// Tests that never ended (a panic, a timeout) show what they said.
			for _, lines := range p.tests {
				fmt.Print(strings.Join(lines, ""))
			}
			fmt.Print(strings.Join(p.out, ""))
			delete(pkgs, e.Package)
		case e.Action == "pass" || e.Action == "skip":
			if len(p.out) > 0 {
				fmt.Print(p.out[len(p.out)-1]) // "ok ..." or "? ... [no test files]"
			}
			delete(pkgs, e.Package)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "testsum:", err)
		os.Exit(1)
	}
	if failed {
		fmt.Println("FAIL")
	}
	if len(skipped) == 0 {
		fmt.Println("skipped: none")
		return
	}
	fmt.Println("skipped:")
	fmt.Println(strings.Join(skipped, "\n"))
}

// failed lays a failed test out as go test does without -v: its "--- FAIL"
// line, then what it said, then its failed subtests, indented by depth
// (test2json takes the indentation off).
func (p *pkg) failed(test string) string {
	indent := strings.Repeat("    ", strings.Count(test, "/"))
	var head, body strings.Builder
	for _, l := range p.tests[test] {
		if strings.HasPrefix(l, "--- ") {
			head.WriteString(indent + l)
		} else {
			body.WriteString(indent + l)
		}
	}
	s := head.String() + body.String() + p.kids[test]
	delete(p.tests, test)
	delete(p.kids, test)
	return s
}

// reason is the last line a skipped test logged (t.Skip's message).
// Unindented lines are raw stderr, which test2json may pin on a parallel
// sibling.
func reason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "    ") {
			return ": " + strings.TrimSpace(lines[i])
		}
	}
	return ""
}
