package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A witness in a folder under the journal's is in every copy of the
// journal's folder (tar, rsync, a backup of /var/lib/posd): a folder put
// back brings it back agreeing, and the restore is not recognised. Only
// the journal's own folder is refused today.
func TestWitnessUnderTheJournalsFolderIsRefused(t *testing.T) {
	c, err := Parse([]byte(`
journal: {path: /var/lib/posd/journal.db, witness_path: /var/lib/posd/cache/journal.witness}
lanes: [{id: L1, device_info: POS01}]
`))
	require.NoError(t, err)
	_, err = c.Validate()
	require.Error(t, err, "a witness inside the state folder is backed up with it")
	assert.Contains(t, err.Error(), "journal.witness_path")
}
