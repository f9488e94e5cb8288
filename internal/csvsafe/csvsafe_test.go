package csvsafe

import (
	"bytes"
	"encoding/csv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFormulasAreWrittenAsText(t *testing.T) {
	in := []string{"=HYPERLINK(\"http://x\",\"y\")", "+1", "-2", "@SUM(A1)", "\tx", "\rx", "=cmd|' /C calc'!A0", "S001_POS1_A", "", "1-2", "'=already"}
	var b bytes.Buffer
	w := NewWriter(&b)
	require.NoError(t, w.WriteAll([][]string{in}))
	got, err := csv.NewReader(&b).Read()
	require.NoError(t, err)
	want := []string{"'=HYPERLINK(\"http://x\",\"y\")", "'+1", "'-2", "'@SUM(A1)", "'\tx", "'\rx", "'=cmd|' /C calc'!A0", "S001_POS1_A", "", "1-2", "'=already"}
	assert.Equal(t, want, got)
	assert.Equal(t, "+1", in[1], "the caller's row is not changed")
}
