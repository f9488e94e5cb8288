package journal

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func put(t *testing.T, j *Journal, v string) {
	t.Helper()
	require.NoError(t, j.Update(func(tx *Tx) error { return tx.putString(codeBucket, "k", v) }))
}

// A journal put back from an older copy is told from the one the last run
// left, whether the copy was made in an earlier run or in the last one.
func TestRestoredCopyIsDetected(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "journal.db")
	copyTo := func(j *Journal, name string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, j.Backup(p))
		return p
	}
	restore := func(from string) {
		b, err := os.ReadFile(from)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, b, 0o600))
	}

	j, err := Open(path)
	require.NoError(t, err)
	assert.False(t, j.Restored(), "a new journal")
	put(t, j, "1")
	earlier := copyTo(j, "run1.db")
	require.NoError(t, j.Close())

	j, err = Open(path)
	require.NoError(t, err)
	assert.False(t, j.Restored(), "a plain restart")
	firstEpoch := j.Epoch()
	put(t, j, "2")
	sameRun := copyTo(j, "run2.db")
	put(t, j, "3")
	require.NoError(t, j.Close())

	restore(sameRun)
	j, err = Open(path)
	require.NoError(t, err)
	assert.True(t, j.Restored(), "a copy made in the last run, behind it")
	assert.NotEqual(t, firstEpoch, j.Epoch(), "a new epoch at every start")
	put(t, j, "4")
	put(t, j, "5")
	put(t, j, "6")
	require.NoError(t, j.Close())

	j, err = Open(path)
	require.NoError(t, err)
	assert.False(t, j.Restored(), "restarting after a restore is a plain restart")
	require.NoError(t, j.Close())

	restore(earlier) // from before the restore: its transaction count may be higher than the lineage's now
	j, err = Open(path)
	require.NoError(t, err)
	assert.True(t, j.Restored(), "a copy of an earlier run")
	require.NoError(t, j.Close())
}
