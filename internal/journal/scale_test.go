package journal

// The journal at the scale of years: what a damaged freelist, a schema
// upgrade of a long history and Trim under reads must not do.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// scaleOrder is shaped like a money.Order's JSON (the fields the index
// reads, and about the size of a real record).
type scaleOrder struct {
	MchTradeID string    `json:"mch_trade_id"`
	Phase      string    `json:"phase"`
	State      string    `json:"state"`
	Pad        string    `json:"pad"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// fillOrders writes n done orders through Put.
func fillOrders(t *testing.T, j *Journal, n int) {
	t.Helper()
	t0 := time.Unix(1_700_000_000, 0)
	pad := strings.Repeat("x", 900)
	require.NoError(t, j.Update(func(tx *Tx) error {
		for i := range n {
			id := fmt.Sprintf("S1_POS1_AAAAAA%06d", i)
			o := scaleOrder{MchTradeID: id, Phase: "done", State: "paid", Pad: pad,
				FinishedAt: t0.Add(time.Duration(i) * time.Second), UpdatedAt: t0}
			if err := tx.putJSON(orderBucket, id, o); err != nil {
				return err
			}
		}
		return nil
	}))
}

// ordersRoot is the page number of the orderBucket bucket's root (a branch page
// once the bucket spans several pages), and the file's page size.
func ordersRoot(t *testing.T, j *Journal) (pgid uint64, pageSize int) {
	t.Helper()
	require.NoError(t, j.db.View(func(tx *bolt.Tx) error {
		pgid = uint64(tx.Bucket([]byte(orderBucket)).Root())
		return nil
	}))
	require.NotZero(t, pgid, "orders bucket is not inline")
	return pgid, j.db.Info().PageSize
}

// fullCheck is bbolt's whole-file check, which Check no longer runs at every start.
func fullCheck(t *testing.T, path string) (errs []string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	require.NoError(t, err)
	defer db.Close()
	func() {
		defer func() {
			if r := recover(); r != nil {
				errs = append(errs, fmt.Sprint("panic: ", r))
			}
		}()
		_ = db.View(func(tx *bolt.Tx) error {
			for e := range tx.Check() {
				errs = append(errs, e.Error())
			}
			return nil
		})
	}()
	return errs
}

// metaFreelist reads the current meta page (the one with the higher txid)
// of a closed file and returns its freelist page id.
func metaFreelist(t *testing.T, path string, pageSize int) uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	best, fl := uint64(0), uint64(0)
	for _, off := range []int{0, pageSize} {
		m := b[off+16:] // past the page header
		freelist := binary.LittleEndian.Uint64(m[32:40])
		txid := binary.LittleEndian.Uint64(m[48:56])
		if txid >= best {
			best, fl = txid, freelist
		}
	}
	return fl
}

// The whole file is checked at every start, a clean one too: bbolt's
// freelist is read from the file, not rebuilt from the tree, and unchecked
// it would be trusted. One damaged freelist page that lists a page in use as
// free (media damage while posd is stopped) is trusted: the very first
// commit (Open's own) allocates that page and overwrites a leaf of the
// orders bucket with other data. orderBucket vanish silently, with no panic and
// no ErrDamaged: paid orders gone from the records, unfinished ones never
// driven again.
func TestStartChecksADamagedFreelist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	j, err := Open(path)
	require.NoError(t, err)
	fillOrders(t, j, 2000)
	root, ps := ordersRoot(t, j)
	require.NoError(t, j.Close()) // a clean stop

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	rp := b[int(root)*ps:]
	require.Equal(t, uint16(0x01), binary.LittleEndian.Uint16(rp[8:10]), "orders root is a branch page")
	leaf := binary.LittleEndian.Uint64(rp[16+8 : 16+16]) // first child
	fl := metaFreelist(t, path, ps)
	require.NotEqual(t, ^uint64(0), fl, "the freelist is kept in the file now")

	// The damage: the freelist page now says the orders leaf is free.
	page := make([]byte, ps)
	binary.LittleEndian.PutUint64(page[0:8], fl)
	binary.LittleEndian.PutUint16(page[8:10], 0x10) // freelist page
	binary.LittleEndian.PutUint16(page[10:12], 1)   // one free id
	binary.LittleEndian.PutUint64(page[16:24], leaf)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(page, int64(fl)*int64(ps))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.NotEmpty(t, fullCheck(t, path), "bbolt's whole-file check sees a page both reachable and free")

	cerr := Check(path)
	if cerr == nil {
		j, err := Open(path) // what posd does when the check passes
		require.NoError(t, err)
		n := 0
		verr := j.View(func(tx *Tx) error {
			return tx.forEach(orderBucket, func(k string, v []byte) error {
				if strings.HasPrefix(k, "S1_POS1_") && v != nil {
					n++
				}
				return nil
			})
		})
		t.Logf("after the first open: %d of 2000 orders readable, read error %v", n, verr)
		_ = j.db.Close()
		j.closeWitness()
	}
	require.ErrorIs(t, cerr, ErrDamaged, "a freelist that frees a page in use must not pass the start-up check")
}

// makeSchema1 writes n orders and n charges the way a schema-1 posd left
// them (no index buckets), straight through bbolt in large transactions.
func makeSchema1(t *testing.T, path string, n int) {
	t.Helper()
	j, err := Open(path)
	require.NoError(t, err)
	t0 := time.Unix(1_700_000_000, 0)
	pad := strings.Repeat("x", 900)
	const batch = 20000
	for i := 0; i < n; i += batch {
		require.NoError(t, j.db.Update(func(tx *bolt.Tx) error {
			ob, cb := tx.Bucket([]byte(orderBucket)), tx.Bucket([]byte(chargeBucket))
			for k := i; k < min(i+batch, n); k++ {
				at := t0.Add(time.Duration(k) * time.Second)
				id := "S001_POS01_G" + strconv.Itoa(10_000_000+k)
				ov := fmt.Appendf(nil, `{"mch_trade_id":%q,"charge_id":"CHG%s","state":"paid","phase":"done","pad":%q,"updated_at":%q,"finished_at":%q}`,
					id, id, pad, at.Format(time.RFC3339Nano), at.Format(time.RFC3339Nano))
				cv := fmt.Appendf(nil, `{"id":"CHG%s","state":"paid","attempt_ids":[%q],"updated_at":%q}`, id, id, at.Format(time.RFC3339Nano))
				if err := ob.Put([]byte(id), ov); err != nil {
					return err
				}
				if err := cb.Put([]byte("CHG"+id), cv); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	require.NoError(t, j.db.Update(func(tx *bolt.Tx) error {
		for _, b := range []string{liveIndex, doneIndex} {
			if err := tx.DeleteBucket([]byte(b)); err != nil {
				return err
			}
		}
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], 1)
		return tx.Bucket([]byte(meta)).Put(keySchema, v[:])
	}))
	require.NoError(t, j.db.Close())
	j.closeWitness()
}

// The schema 1 -> 2 migration (upgrade) builds the indexes in bounded
// transactions. Built for the whole history in the one transaction that
// opens the journal, bbolt splits nodes only at commit, so every index key of the
// history is inserted into one ever-growing in-memory leaf node, each
// insert shifting everything after it (runtime.memmove is 90% of the CPU
// profile): the upgrade's first start is quadratic in the history
// (measured here, no race detector: 10,000 orders + their charges 0.3 s,
// 20,000 5 s, 40,000 23 s, 100,000 123 s with 43 MB of Go heap; the same
// 100,000 indexed in transactions of 2,000 records: 1.3 s; so about half
// an hour for the documented 400,000) and holds the whole index in memory,
// all before READY. systemd's start timeout kills
// it, nothing is committed, and every restart does it again: a box with
// months of history never comes back up after the upgrade.
// TestJournalAtScale never measures this path (it writes a schema-2
// journal). POSD_MIGRATE_ORDERS sets the size (default 30,000, the
// size make test gives TestJournalAtScale, whose target is READY < 1 s).
func TestMigrationRunsInBoundedTransactions(t *testing.T) {
	n := 30_000
	if v, err := strconv.Atoi(os.Getenv("POSD_MIGRATE_ORDERS")); err == nil && v > 0 {
		n = v
	}
	path := filepath.Join(t.TempDir(), "j.db")
	gen := time.Now()
	makeSchema1(t, path, n)
	t.Logf("schema-1 journal written in %s", time.Since(gen).Round(time.Millisecond))
	st, err := os.Stat(path)
	require.NoError(t, err)

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	began := time.Now()
	j, err := Open(path)
	took := time.Since(began)
	close(stop)
	wg.Wait()
	require.NoError(t, err)
	defer j.Close()
	var done int
	require.NoError(t, j.View(func(tx *Tx) error {
		ids, _ := tx.doneBefore(orderBucket, time.Unix(1_700_000_000, 0).Add(1e6*time.Second), "", 1<<30)
		done = len(ids)
		return nil
	}))
	require.Equal(t, n, done)
	grew := int64(peak) - int64(base.HeapInuse)
	t.Logf("migration of %d orders + %d charges (%.0f MB file): Open took %s, Go heap in use grew by %d MB at peak (%.0f bytes per record)",
		n, n, float64(st.Size())/1e6, took.Round(time.Millisecond), grew>>20, float64(grew)/float64(2*n))
	// For reference, the same indexes built in bounded transactions (what
	// a batched migration would cost) on a second copy.
	path2 := filepath.Join(t.TempDir(), "j2.db")
	makeSchema1(t, path2, n)
	db, err := bolt.Open(path2, 0o600, &bolt.Options{NoSync: true})
	require.NoError(t, err)
	began = time.Now()
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		for _, name := range []string{liveIndex, doneIndex} {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	}))
	for _, bucket := range []string{orderBucket, chargeBucket} {
		after := []byte(nil)
		for {
			var last []byte
			require.NoError(t, db.Update(func(tx *bolt.Tx) error {
				c := tx.Bucket([]byte(bucket)).Cursor()
				k, v := c.First()
				if after != nil {
					if k, v = c.Seek(after); k != nil && string(k) == string(after) {
						k, v = c.Next()
					}
				}
				for i := 0; k != nil && i < 2000; i++ {
					if err := reindex(tx, entries{}, storedEntries(bucket, string(k), v)); err != nil {
						return err
					}
					last = append(last[:0], k...)
					k, v = c.Next()
				}
				return nil
			}))
			if last == nil {
				break
			}
			after = last
		}
	}
	batched := time.Since(began)
	t.Logf("the same indexes in transactions of 2,000 records: %s", batched.Round(time.Millisecond))
	require.NoError(t, db.Close())
	require.Less(t, took, 3*batched+time.Second,
		"the upgrade's first start costs what bounded transactions cost, not the square of the history")
}

// Trim is safe as far as data goes: MADV_DONTNEED on bbolt's read-only
// MAP_SHARED file mapping only drops page-table entries; a slice held by a
// read in flight is faulted in again from the page cache with the same
// bytes, and bbolt cannot remap while Trim's read transaction holds the
// mmap lock.
func TestTrimKeepsReadsInFlightIntact(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	j, err := Open(path)
	require.NoError(t, err)
	defer j.Close()
	fillOrders(t, j, 3000)
	want := map[string]string{}
	require.NoError(t, j.View(func(tx *Tx) error {
		return tx.forEach(orderBucket, func(k string, v []byte) error { want[k] = string(v); return nil })
	}))
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 50 {
			j.Trim()
		}
	}()
	for range 20 {
		require.NoError(t, j.View(func(tx *Tx) error {
			var held [][]byte
			var keys []string
			_ = tx.forEach(orderBucket, func(k string, v []byte) error { held = append(held, v); keys = append(keys, k); return nil })
			j.Trim() // also from inside a read: nested read transactions
			for i, v := range held {
				if string(v) != want[keys[i]] {
					select {
					case errc <- errors.New("a held slice changed after Trim: " + keys[i]):
					default:
					}
				}
			}
			return nil
		}))
	}
	wg.Wait()
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
}
