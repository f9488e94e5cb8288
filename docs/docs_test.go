package docs_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/display"
	"example.com/posd/docs"
	"example.com/posd/internal/httpguard"
	"example.com/posd/internal/money"
)

func load(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(docs.OpenAPI)
	require.NoError(t, err)
	require.NoError(t, doc.Validate(t.Context()), "docs/openapi.yaml is a valid OpenAPI document")
	return doc
}

// readmeRoutes are the routes the README's API section lists, as METHOD
// /path (optional segments both ways, queries left out).
func readmeRoutes(t *testing.T) []string {
	b, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	s := string(b)
	start, end := strings.Index(s, "## The local API"), strings.Index(s, "### Integrating a till")
	require.True(t, start >= 0 && end > start, "the README's API section")
	route := regexp.MustCompile("`(GET|POST|DELETE) (/[^`]*)`")
	query := regexp.MustCompile(`\[?[?&].*$`)
	optional := regexp.MustCompile(`\[(/[^\]]*)\]`)
	var out []string
	for _, line := range strings.Split(s[start:end], "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cell, _, _ := strings.Cut(line, " | ")
		for _, m := range route.FindAllStringSubmatch(cell, -1) {
			path := query.ReplaceAllString(m[2], "")
			out = append(out, m[1]+" "+optional.ReplaceAllString(path, ""))
			if o := optional.FindStringSubmatch(path); o != nil {
				out = append(out, m[1]+" "+optional.ReplaceAllString(path, "")+o[1])
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// The README's API table and the document list the same routes, and the
// document's enums are posd's own lists: error kinds, charge states,
// event kinds.
func TestREADMEAndDocumentAgree(t *testing.T) {
	doc := load(t)
	var routes []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			routes = append(routes, method+" "+path)
		}
	}
	slices.Sort(routes)
	assert.Equal(t, routes, readmeRoutes(t), "README's API table (left: the document)")

	enum := func(name string) []string {
		s := doc.Components.Schemas[name]
		require.NotNil(t, s, "schema %s", name)
		var out []string
		for _, v := range s.Value.Enum {
			out = append(out, v.(string))
		}
		slices.Sort(out)
		return out
	}
	sorted := func(in []string) []string { slices.Sort(in); return in }
	assert.Equal(t, sorted(slices.Clone(httpguard.Kinds)), enum("ErrorKind"))
	var states, kinds []string
	for _, s := range money.ChargeStates {
		states = append(states, string(s))
	}
	for _, k := range display.Kinds {
		kinds = append(kinds, string(k))
	}
	assert.Equal(t, sorted(states), enum("ChargeState"))
	assert.Equal(t, sorted(kinds), enum("EventKind"))

	b, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	for _, k := range httpguard.Kinds {
		assert.Contains(t, string(b), "| `"+k+"` |", "the README's error table names %s", k)
	}
}
