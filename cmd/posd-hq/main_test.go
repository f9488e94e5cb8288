package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The fleet view shows every store's takings: off loopback it needs a
// token, read from a file only its owner can read.
func TestViewToken(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	require.NoError(t, os.WriteFile(good, []byte(strings.Repeat("k", 32)+"\n"), 0o600))
	short := filepath.Join(dir, "short")
	require.NoError(t, os.WriteFile(short, []byte("k"), 0o600))
	shared := filepath.Join(dir, "shared")
	require.NoError(t, os.WriteFile(shared, []byte(strings.Repeat("k", 32)), 0o644))

	for _, listen := range []string{"127.0.0.1:8322", "localhost:8322", "[::1]:8322"} {
		tok, err := viewToken(listen, "")
		assert.NoError(t, err, listen)
		assert.Empty(t, tok)
	}
	for _, listen := range []string{"0.0.0.0:8322", ":8322", "10.0.0.5:8322", "hq.example:8322"} {
		_, err := viewToken(listen, "")
		assert.ErrorContains(t, err, "-token-file", listen)
	}
	tok, err := viewToken("0.0.0.0:8322", good)
	require.NoError(t, err)
	assert.Equal(t, strings.Repeat("k", 32), tok)
	_, err = viewToken("0.0.0.0:8322", short)
	assert.ErrorContains(t, err, "at least 32")
	_, err = viewToken("0.0.0.0:8322", shared)
	assert.Error(t, err, "a token others can read")
	_, err = viewToken("0.0.0.0:8322", filepath.Join(dir, "absent"))
	assert.Error(t, err)
}

// -prefix is the boxes' subjects' first tokens: nothing a subject gives a
// meaning to.
func TestPrefixIsSubjectTokens(t *testing.T) {
	for _, p := range []string{"posd", "acme.posd", "a-b_c"} {
		assert.NoError(t, checkPrefix(p), p)
	}
	for _, p := range []string{"", ".", "posd.", ".posd", "a..b", "posd.*", "posd.>", "po sd", "posd\t"} {
		assert.Error(t, checkPrefix(p), p)
	}
}
