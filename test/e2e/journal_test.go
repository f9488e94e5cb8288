package e2e

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/test/harness"
)

// A journal damaged on disk (a power cut on a bad SD card): posd does not
// crash; it says so, takes no payment, and still serves its records.
func TestDamagedJournalRunsReadOnly(t *testing.T) {
	t.Parallel()
	g := startSandbox(t)
	d := newDaemon(t, g, opts{})
	d.start()
	c := d.openCharge("L1", 100)
	d.scan(harness.AlipayCode(42))
	d.settle(c.ID, 10*time.Second)
	d.kill()

	path := d.dir + "/journal.db"
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	st, _ := f.Stat()
	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = 0xA5
	}
	// Every page past the two meta pages: the data is gone, the file opens.
	for off := int64(2 * 4096); off < st.Size(); off += 4096 {
		_, err = f.WriteAt(garbage, off)
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())

	d.start()
	code, body := d.do("GET", "/healthz", nil)
	assert.Equal(t, 503, code)
	assert.Contains(t, string(body), "damaged")
	code, body = d.do("POST", "/v1/charges", map[string]any{"lane": "L1", "total_fee": 100, "subject": "s", "body": "b"})
	assert.Equal(t, 503, code, "no payment without a journal: %s", body)
	assert.Contains(t, d.out.String(), "JOURNAL DAMAGED")
}
