package journal

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A copy of the journal's whole folder (the journal and the witness beside
// it, as tar, rsync or a backup of the state folder bring them back) and a
// journal put on a new disk (no witness at all) are both recognised as
// restored; an upgrade that adds the witness away is a plain restart.
func TestRestoredFolderAndNewDiskAreRecognised(t *testing.T) {
	state, cache := t.TempDir(), t.TempDir()
	path := filepath.Join(state, "journal.db")
	away := filepath.Join(cache, "journal.witness")
	open := func(path, away string) *Journal {
		j, err := OpenWith(path, Options{Witness: away})
		require.NoError(t, err)
		return j
	}
	copyDir := func(from, to string) {
		require.NoError(t, os.MkdirAll(to, 0o700))
		for _, name := range []string{"journal.db", "journal.db.seen"} {
			b, err := os.ReadFile(filepath.Join(from, name))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(to, name), b, 0o600))
		}
	}

	j := open(path, "") // an older posd: the witness beside only
	put(t, j, "1")
	require.NoError(t, j.Close())
	j = open(path, away)
	assert.False(t, j.Restored(), "the first start with a witness away is a plain restart")
	put(t, j, "2")
	require.NoError(t, j.Close())
	backup := filepath.Join(t.TempDir(), "backup")
	copyDir(state, backup)

	j = open(path, away)
	assert.False(t, j.Restored(), "a plain restart")
	put(t, j, "3")
	require.NoError(t, j.Close())

	copyDir(backup, state)
	j = open(path, away)
	assert.True(t, j.Restored(), "the folder put back, its witness with it")
	require.NoError(t, j.Close())
	j = open(path, away)
	assert.True(t, j.Restored(), "until its orders are marked to be asked again, a copy stays one")
	require.NoError(t, j.Verified())
	require.NoError(t, j.Close())
	j = open(path, away)
	assert.False(t, j.Restored(), "restarting after a restore is a plain restart")
	require.NoError(t, j.Close())

	disk := filepath.Join(t.TempDir(), "new")
	copyDir(backup, disk)
	require.NoError(t, os.Remove(filepath.Join(disk, "journal.db.seen")))
	j = open(filepath.Join(disk, "journal.db"), filepath.Join(t.TempDir(), "journal.witness"))
	assert.True(t, j.Restored(), "a journal on a new disk, no witness anywhere")
	require.NoError(t, j.Close())

	disk = filepath.Join(t.TempDir(), "new")
	copyDir(backup, disk)
	j = open(filepath.Join(disk, "journal.db"), filepath.Join(t.TempDir(), "journal.witness"))
	assert.True(t, j.Restored(), "the folder copied to a new box: its witness away is missing")
	require.NoError(t, j.Close())

	j = open(filepath.Join(t.TempDir(), "journal.db"), filepath.Join(t.TempDir(), "journal.witness"))
	assert.False(t, j.Restored(), "a new journal")
	require.NoError(t, j.Close())
}

// A journal on a new disk counts its runs from above every run its lineage
// counted: otherwise a copy of the lineage it replaced, put back in turn,
// could carry the run the witness saw last and look current.
func TestRestoreOfTheReplacedLineageIsRecognised(t *testing.T) {
	state := t.TempDir()
	path, away := filepath.Join(state, "journal.db"), filepath.Join(t.TempDir(), "journal.witness")
	j, err := OpenWith(path, Options{Witness: away})
	require.NoError(t, err)
	put(t, j, "1")
	early := filepath.Join(t.TempDir(), "early.db")
	require.NoError(t, j.Backup(early))
	require.NoError(t, j.Close())
	for range 3 { // runs of the lineage that will be replaced, busy ones
		j, err = OpenWith(path, Options{Witness: away})
		require.NoError(t, err)
		for range 10 {
			put(t, j, "2")
		}
		require.NoError(t, j.Close())
	}
	late := filepath.Join(t.TempDir(), "late.db")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(late, b, 0o600))

	// The early copy on a new disk: no witness anywhere.
	b, err = os.ReadFile(early)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o600))
	require.NoError(t, os.Remove(path+".seen"))
	require.NoError(t, os.Remove(away))
	j, err = OpenWith(path, Options{Witness: away})
	require.NoError(t, err)
	require.True(t, j.Restored())
	require.NoError(t, j.Verified())
	require.NoError(t, j.Close())
	for range 2 { // quiet runs of the new lineage, as many as the old one had
		j, err = OpenWith(path, Options{Witness: away})
		require.NoError(t, err)
		require.NoError(t, j.Close())
	}

	b, err = os.ReadFile(late)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o600))
	j, err = OpenWith(path, Options{Witness: away})
	require.NoError(t, err)
	assert.True(t, j.Restored(), "a copy of the replaced lineage is a copy too")
	require.NoError(t, j.Close())
}
