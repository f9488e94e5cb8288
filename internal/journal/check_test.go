package journal

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// A journal closed after concurrent commits: the witness holds the last
// transaction and its freelist's CRC, and the start checks only that.
func TestCheckStartBoundedAfterCleanStop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	j, err := Open(path)
	require.NoError(t, err)
	fillOrders(t, j, 500)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				id := fmt.Sprintf("G%d-%d", g, i)
				require.NoError(t, j.Batch(func(tx *Tx) error { return tx.putString(codeBucket, id, id) }))
				require.NoError(t, j.Update(func(tx *Tx) error { return tx.remove(codeBucket, id) }))
			}
		})
	}
	wg.Wait()
	require.NoError(t, j.Close())

	how, err := CheckStart(path)
	require.NoError(t, err)
	require.Equal(t, CheckedBounded, how)
}

// Whatever the witness cannot vouch for takes the whole check.
func TestCheckStartWholeWhenInDoubt(t *testing.T) {
	for name, spoil := range map[string]func(t *testing.T, path string){
		"no witness": func(t *testing.T, path string) { require.NoError(t, os.Remove(path+".seen")) },
		"witness behind (a power cut)": func(t *testing.T, path string) {
			f := readWitness(t, path)
			n, err := strconv.Atoi(f[1])
			require.NoError(t, err)
			writeWitness(t, path, fmt.Sprintf("%s %d %s", f[0], n-1, f[2]))
		},
		"witness without a CRC (an older posd)": func(t *testing.T, path string) {
			f := readWitness(t, path)
			writeWitness(t, path, f[0]+" "+f[1])
		},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "j.db")
			j, err := Open(path)
			require.NoError(t, err)
			fillOrders(t, j, 50)
			require.NoError(t, j.Close())
			spoil(t, path)
			how, err := CheckStart(path)
			require.NoError(t, err)
			require.Equal(t, CheckedWhole, how)
		})
	}
}

// A damaged freelist (one that frees an orders leaf, while posd is
// stopped) is found by the bounded start too: the CRC no longer matches.
func TestCheckStartFindsDamagedFreelist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	j, err := Open(path)
	require.NoError(t, err)
	fillOrders(t, j, 2000)
	root, ps := ordersRoot(t, j)
	require.NoError(t, j.Close())
	how, err := CheckStart(path)
	require.NoError(t, err)
	require.Equal(t, CheckedBounded, how, "undamaged: bounded")

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	leaf := binary.LittleEndian.Uint64(b[int(root)*ps+16+8:])
	fl := metaFreelist(t, path, ps)
	page := make([]byte, ps)
	binary.LittleEndian.PutUint64(page[0:8], fl)
	binary.LittleEndian.PutUint16(page[8:10], 0x10)
	binary.LittleEndian.PutUint16(page[10:12], 1)
	binary.LittleEndian.PutUint64(page[16:24], leaf)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(page, int64(fl)*int64(ps))
	require.NoError(t, err)
	require.NoError(t, f.Close())

	how, err = CheckStart(path)
	require.ErrorIs(t, err, ErrDamaged)
	require.Equal(t, CheckedWhole, how)
}

// Damage in a small bucket is found by the bounded check itself.
func TestCheckStartChecksSmallBuckets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	j, err := Open(path)
	require.NoError(t, err)
	require.NoError(t, j.Update(func(tx *Tx) error {
		for i := range 400 {
			if err := tx.putString(idemBucket, fmt.Sprintf("key-%04d", i), strings.Repeat("c", 40)); err != nil {
				return err
			}
		}
		return nil
	}))
	var idemRoot uint64
	require.NoError(t, j.View(func(tx *Tx) error { idemRoot = uint64(tx.tx.Bucket([]byte(idemBucket)).Root()); return nil }))
	ps := j.db.Info().PageSize
	require.NoError(t, j.Close())
	require.GreaterOrEqual(t, idemRoot, uint64(2), "idem spans pages")

	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	var typ [2]byte
	binary.LittleEndian.PutUint16(typ[:], 0x10) // the root now claims to be a freelist
	_, err = f.WriteAt(typ[:], int64(idemRoot)*int64(ps)+8)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	how, err := CheckStart(path)
	require.ErrorIs(t, err, ErrDamaged)
	require.Equal(t, CheckedBounded, how)
}

func readWitness(t *testing.T, path string) []string {
	b, err := os.ReadFile(path + ".seen")
	require.NoError(t, err)
	f := strings.Fields(string(b))
	require.Len(t, f, 3)
	return f
}

func writeWitness(t *testing.T, path, s string) {
	require.NoError(t, os.WriteFile(path+".seen", []byte(s), 0o600))
}
