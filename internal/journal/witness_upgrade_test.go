package journal

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Last night's backup of /var/lib/posd was taken by an older posd (the
// witness beside the journal only). The box dies; a new box gets this
// posd and the folder from the backup. Its journal ran before, its witness
// beside it agrees with it, and it never had a witness away: from the
// files alone it is the first start after an upgrade on the same box, a
// plain restart (taking every upgrade for a copy would ask every box's
// paid orders of half a year again at once). So the operator's procedure
// (docs/reliability.md, "Backups") removes the witness beside such a
// backup's journal before the first start; then it is a copy.
func TestOlderPosdsFolderIsACopyOnceItsWitnessIsRemoved(t *testing.T) {
	old := t.TempDir()
	j, err := OpenWith(filepath.Join(old, "journal.db"), Options{})
	require.NoError(t, err)
	put(t, j, "1")
	require.NoError(t, j.Close())
	backup := t.TempDir()
	for _, name := range []string{"journal.db", "journal.db.seen"} {
		b, err := os.ReadFile(filepath.Join(old, name))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(backup, name), b, 0o600))
	}
	away := filepath.Join(t.TempDir(), "journal.witness")
	j, err = OpenWith(filepath.Join(backup, "journal.db"), Options{Witness: away})
	require.NoError(t, err)
	assert.False(t, j.Restored(), "indistinguishable from an upgrade in place")
	require.NoError(t, j.Close())

	backup = t.TempDir()
	b, err := os.ReadFile(filepath.Join(old, "journal.db"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(backup, "journal.db"), b, 0o600))
	j, err = OpenWith(filepath.Join(backup, "journal.db"), Options{Witness: filepath.Join(t.TempDir(), "journal.witness")})
	require.NoError(t, err)
	defer j.Close()
	assert.True(t, j.Restored(), "without its witness, the backup's journal is a copy")
}
