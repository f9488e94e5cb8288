package journal

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/money"
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
	require.NoError(t, j.Verified()) // what the poller's Resume records once it marked the orders
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

// A restored copy's records never take again a version the lineage it
// replaced gave them (the head office keeps a record's first copy of a
// version): versions continue above a floor set at each restore, which
// plain restarts keep.
func TestVersionsAboveARestore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "j.db")
	step := func(j *Journal) uint64 {
		var v uint64
		require.NoError(t, j.Update(func(tx *Tx) error {
			o, ok, err := tx.Order("X")
			if !ok || err != nil {
				o = money.Order{MchTradeID: "X", Phase: money.PhaseQuery}
			}
			o.Queries++
			_, err = tx.SaveStep(&o, time.Now())
			v = o.Version
			return err
		}))
		return v
	}
	j, err := Open(path)
	require.NoError(t, err)
	step(j)
	require.NoError(t, j.Backup(filepath.Join(dir, "copy.db")))
	step(j)
	highest := step(j)
	require.NoError(t, j.Close())
	restore := func() {
		b, err := os.ReadFile(filepath.Join(dir, "copy.db"))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, b, 0o600))
	}

	restore()
	j, err = Open(path)
	require.NoError(t, err)
	require.True(t, j.Restored())
	v := step(j)
	assert.Greater(t, v, highest, "above what the replaced lineage wrote")
	require.NoError(t, j.Close())
	j, err = Open(path)
	require.NoError(t, err)
	assert.Greater(t, step(j), v, "a plain restart keeps the floor")
	highest = step(j)
	require.NoError(t, j.Close())

	time.Sleep(2 * time.Millisecond)
	restore() // the same old copy again
	j, err = Open(path)
	require.NoError(t, err)
	assert.Greater(t, step(j), highest, "a second restore of the same copy too")
	require.NoError(t, j.Close())
}
