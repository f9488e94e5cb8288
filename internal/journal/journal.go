package journal

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"example.com/posd/internal/defect"
)

// SchemaVersion is written into a new journal and checked on open.
const SchemaVersion = 2

// Buckets.
const (
	Orders   = "orders"   // mch_trade_id -> order JSON
	Codes    = "codes"    // SHA-256 of a payment code -> mch_trade_id
	Charges  = "charges"  // charge id -> charge JSON
	Idem     = "idem"     // Idempotency-Key -> charge id
	Receipts = "receipts" // printer \x00 receipt id -> receipt JSON, until printed
	meta     = "meta"
)

var (
	keySchema  = []byte("schema")
	keyEpoch   = []byte("epoch")
	keyCounter = []byte("counter")
	keyRun     = []byte("run")
)

// ErrUnwritable wraps every write failure: the caller must stop taking
// payments rather than take money without a record.
var ErrUnwritable = errors.New("journal: not writable")

// Journal is the open store. Its methods are safe for concurrent use.
type Journal struct {
	db    *bolt.DB
	epoch string
	// updateNanos adds up the time spent in Update (the commit and its
	// fsyncs), so the scan path's own cost can be told from the disk's.
	updateNanos atomic.Int64
	lastUpdate  atomic.Int64 // when the last Update returned, Unix nanoseconds
	readOnly    bool
	newEpoch    func() string
	restored    bool
	seen        *os.File // the witness
	wRun        uint64   // the witness's run, then this run
	wTx         int      // the witness's last transaction
	wFound      bool
	dead        atomic.Bool // Kill: nothing more is written
}

// Options are for the simulation, which runs many journals in one process.
type Options struct {
	// NoSync skips fsync: a simulated crash is a process crash, and the
	// page cache keeps what was committed.
	NoSync bool
	// NoGroupCommit: each Batch commits at once. A group commit waits for
	// a timer, which on a virtual clock waits for every goroutine to block,
	// and one blocked on a lock the waiter holds never does.
	NoGroupCommit bool
	// Epoch names each run (crypto/rand when nil): a seeded one replays.
	Epoch func() string
}

// ErrDamaged: the file failed its check, or a read met a damaged page.
var ErrDamaged = errors.New("journal: damaged")

func options() *bolt.Options {
	// The freelist is written with every commit (a page or a few), not
	// rebuilt on open: rebuilding reads every page of the file, which for
	// a year of orders took a start past systemd's timeout and filled the
	// box's memory with the file (docs/performance.md, the journal at
	// scale).
	return &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType}
}

// Open opens or creates the journal at path, creating its directory. A file
// held by another process (after a second) or from a newer schema is an
// error. Check it first (Check, in a process of its own: bbolt panics on
// some damage in goroutines of its own).
func Open(path string) (*Journal, error) { return OpenWith(path, Options{}) }

// OpenWith is Open with options.
func OpenWith(path string, o Options) (*Journal, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	db, err := bolt.Open(path, 0o600, options())
	if err != nil {
		return nil, fmt.Errorf("journal: open %s: %w", path, err)
	}
	// Short batches: group commit for the poller without slowing a pay.
	db.MaxBatchDelay = 2 * time.Millisecond
	db.NoSync = o.NoSync
	if o.NoGroupCommit {
		db.MaxBatchSize = 1
	}
	j := &Journal{db: db, newEpoch: o.Epoch}
	if j.newEpoch == nil {
		j.newEpoch = newEpoch
	}
	if err := j.openWitness(path); err != nil {
		db.Close()
		return nil, fmt.Errorf("journal: %w", err)
	}
	if err := j.protect(func() error { return upgrade(db) }); err != nil {
		db.Close()
		j.seen.Close()
		return nil, fmt.Errorf("journal: %s: upgrade: %w", path, err)
	}
	if err := j.protect(func() error { return db.Update(j.init) }); err != nil {
		db.Close()
		j.seen.Close()
		return nil, fmt.Errorf("journal: %s: %w", path, err)
	}
	return j, nil
}

// The witness, beside the journal (path.seen), holds the number of the
// last run that opened it and of the last transaction committed: "RUN
// TXID". The journal holds its run too. A journal of another run, or of
// this run but behind the witness, is an older copy put back (a backup
// restored): what it says was paid may since have been refunded, and
// Restored says so. The witness is written after each commit without an
// fsync of its own: after a power cut it may lag the journal, never lead
// it, so it never says "restored" wrongly.
func (j *Journal) openWitness(path string) error {
	f, err := os.OpenFile(path+".seen", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	var buf [64]byte
	n, _ := f.ReadAt(buf[:], 0)
	if fields := strings.Fields(string(buf[:n])); len(fields) == 2 {
		j.wRun, _ = strconv.ParseUint(fields[0], 10, 64)
		j.wTx, _ = strconv.Atoi(fields[1])
		j.wFound = true
	}
	j.seen = f
	return nil
}

// checkWitness runs in the opening transaction: it compares the journal
// with the witness and starts a new run in both.
func (j *Journal) checkWitness(tx *bolt.Tx, m *bolt.Bucket) error {
	var run uint64
	if v := m.Get(keyRun); v != nil {
		run = binary.BigEndian.Uint64(v)
	}
	j.restored = j.wFound && (run != j.wRun || tx.ID()-1 < j.wTx)
	j.wRun = max(j.wRun, run) + 1
	if err := m.Put(keyRun, u64(j.wRun)); err != nil {
		return err
	}
	id := tx.ID()
	tx.OnCommit(func() { j.mark(id) })
	return nil
}

// mark records txid as the last committed transaction of this run.
func (j *Journal) mark(txid int) {
	if j.seen == nil {
		return
	}
	b := fmt.Appendf(nil, "%-20d %-20d", j.wRun, txid)
	_, _ = j.seen.WriteAt(b, 0)
}

// Restored reports whether the journal is an older copy of itself: a run
// after the one it last recorded had used it.
func (j *Journal) Restored() bool { return j.restored }

// OpenReadOnly opens a damaged journal so that what can still be read is
// served and exported. Every write fails with ErrUnwritable.
func OpenReadOnly(path string) (*Journal, error) {
	o := options()
	o.ReadOnly = true
	db, err := bolt.Open(path, 0o600, o)
	if err != nil {
		return nil, fmt.Errorf("journal: open %s read-only: %w", path, err)
	}
	j := &Journal{db: db, readOnly: true}
	_ = j.View(func(tx *Tx) error {
		if m := tx.tx.Bucket([]byte(meta)); m != nil {
			j.epoch = string(m.Get(keyEpoch))
		}
		return nil
	})
	return j, nil
}

// Check walks every page of the file (bbolt's consistency check): a power
// cut at any byte leaves the old or the new meta page valid, and anything
// else is damage. It may panic on a damaged file: run it in a process of
// its own (posd journal-check).
func Check(path string) error {
	o := options()
	o.ReadOnly = true
	db, err := bolt.Open(path, 0o600, o)
	if err != nil {
		if errors.Is(err, bolterrors.ErrInvalid) || errors.Is(err, bolterrors.ErrChecksum) || errors.Is(err, bolterrors.ErrVersionMismatch) {
			return fmt.Errorf("%w: %v", ErrDamaged, err)
		}
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		var first error
		for cerr := range tx.Check() { // drained whole: the checker must finish
			if first == nil {
				first = fmt.Errorf("%w: %v", ErrDamaged, cerr)
			}
		}
		return first
	})
}

// protect turns a panic of bbolt on a damaged page into ErrDamaged.
func (j *Journal) protect(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrDamaged, r)
		}
	}()
	return fn()
}

// ReadOnly reports whether the journal was opened read-only (damaged).
func (j *Journal) ReadOnly() bool { return j.readOnly }

// migrations bring an older schema up to SchemaVersion, one step each, in
// the transaction that opens the journal. Schema 1 is the first.
var migrations = map[uint64]func(*bolt.Tx) error{}

func (j *Journal) init(tx *bolt.Tx) error {
	for _, b := range []string{meta, Orders, Codes, Charges, Idem, Receipts, Live, Done} {
		if _, err := tx.CreateBucketIfNotExists([]byte(b)); err != nil {
			return err
		}
	}
	m := tx.Bucket([]byte(meta))
	if v := m.Get(keySchema); v != nil {
		n := binary.BigEndian.Uint64(v)
		if n > SchemaVersion {
			return fmt.Errorf("schema %d is newer than this posd's %d: install a newer posd", n, SchemaVersion)
		}
		for ; n < SchemaVersion; n++ {
			if err := migrations[n](tx); err != nil {
				return fmt.Errorf("migrate schema %d to %d: %w", n, n+1, err)
			}
		}
	}
	if err := m.Put(keySchema, u64(SchemaVersion)); err != nil {
		return err
	}
	if err := j.checkWitness(tx, m); err != nil {
		return err
	}
	// A fresh epoch at every open: a journal restored from a backup, or a
	// disk image cloned to a second box, holds a counter that was already
	// used, and ids made from it would name orders the gateway has.
	prev := m.Get(keyEpoch)
	if prev != nil && defect.On(3) {
		j.epoch = string(prev)
		return nil
	}
	j.epoch = j.newEpoch()
	for prev != nil && string(prev) == j.epoch {
		j.epoch = j.newEpoch()
	}
	return m.Put(keyEpoch, []byte(j.epoch))
}

// newEpoch names this run of the journal among all runs of all journals
// the merchant will ever have: ids stay unique when a box is reinstalled,
// restored, cloned or its clock is reset.
func newEpoch() string {
	const chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	var b [6]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b[:])
}

func u64(n uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return b[:]
}

// Epoch is this run's random name, part of every mch_trade_id.
func (j *Journal) Epoch() string { return j.epoch }

// Close closes the file.
func (j *Journal) Close() error {
	err := j.db.Close()
	if j.seen != nil {
		j.seen.Close()
	}
	return err
}

// Trim gives back the file's pages posd's memory maps: after work that
// read old records once (pruning), so that the resident set stays small
// whatever the size of the history. The mapping is shared and read-only,
// so nothing is lost; inside a read transaction, bbolt cannot remap.
func (j *Journal) Trim() {
	_ = j.db.View(func(tx *bolt.Tx) error {
		dropPages(j.db.Info().Data, tx.Size())
		return nil
	})
}

// Path is the file's path.
func (j *Journal) Path() string { return j.db.Path() }

// Size is the file's size in bytes.
func (j *Journal) Size() int64 {
	var n int64
	_ = j.db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n
}

// Tx is one transaction.
type Tx struct{ tx *bolt.Tx }

// Update runs fn in a write transaction committed and fsync'd on its own:
// the latency-critical path (a new order before its pay).
func (j *Journal) Update(fn func(*Tx) error) error {
	start := time.Now()
	defer func() {
		now := time.Now()
		j.updateNanos.Add(int64(now.Sub(start)))
		j.lastUpdate.Store(now.UnixNano())
	}()
	return wrapWrite(j.db.Update(func(tx *bolt.Tx) error { return j.write(tx, fn) }))
}

// Kill makes every write from now on fail, as if the process had died:
// what committed before it stays, nothing after it is written. The
// simulation's crash.
func (j *Journal) Kill() { j.dead.Store(true) }

var errKilled = errors.New("killed")

func (j *Journal) write(tx *bolt.Tx, fn func(*Tx) error) error {
	if j.dead.Load() {
		return errKilled
	}
	id := tx.ID() // gone once the transaction is closed
	tx.OnCommit(func() { j.mark(id) })
	return fn(&Tx{tx})
}

// Backup writes a consistent copy of the journal to path (while it is in
// use): what an operator's backup, restored later, would hold.
func (j *Journal) Backup(path string) error {
	return j.db.View(func(tx *bolt.Tx) error { return tx.CopyFile(path, 0o600) })
}

// LastUpdate is when the last Update returned: for a scan, the moment its
// pay is dispatched.
func (j *Journal) LastUpdate() time.Time { return time.Unix(0, j.lastUpdate.Load()) }

// UpdateTime is the total time spent in Update since Open.
func (j *Journal) UpdateTime() time.Duration { return time.Duration(j.updateNanos.Load()) }

// Batch is Update with group commit: concurrent callers share one fsync.
// fn may run more than once and must not have side effects outside tx.
func (j *Journal) Batch(fn func(*Tx) error) error {
	return wrapWrite(j.protect(func() error { return j.db.Batch(func(tx *bolt.Tx) error { return j.write(tx, fn) }) }))
}

// View runs fn in a read transaction.
func (j *Journal) View(fn func(*Tx) error) error {
	return j.protect(func() error { return j.db.View(func(tx *bolt.Tx) error { return fn(&Tx{tx}) }) })
}

type appError struct{ error }

func wrapWrite(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrDamaged) {
		return fmt.Errorf("%w: %v", ErrUnwritable, err)
	}
	if errors.Is(err, bolterrors.ErrDatabaseReadOnly) {
		return fmt.Errorf("%w: opened read-only (damaged)", ErrUnwritable)
	}
	var ae appError
	if errors.As(err, &ae) {
		return ae.error
	}
	return fmt.Errorf("%w: %v", ErrUnwritable, err)
}

// Fail marks an error as the caller's decision (a conflict, a refusal), not
// a storage failure, so that Update returns it as it is.
func Fail(err error) error { return appError{err} }

// NextSeq returns the next value of the journal's counter.
func (t *Tx) NextSeq() (uint64, error) {
	m := t.tx.Bucket([]byte(meta))
	var n uint64
	if v := m.Get(keyCounter); v != nil {
		n = binary.BigEndian.Uint64(v)
	}
	n++
	return n, m.Put(keyCounter, u64(n))
}

// Put stores v as JSON (and, for an order or a charge, its index entries).
func (t *Tx) Put(bucket, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	bk := t.tx.Bucket([]byte(bucket))
	if indexed(bucket) {
		if err := reindex(t.tx, bucket, key, bk.Get([]byte(key)), b); err != nil {
			return err
		}
	}
	return bk.Put([]byte(key), b)
}

// PutString stores a plain value (an index entry).
func (t *Tx) PutString(bucket, key, v string) error {
	return t.tx.Bucket([]byte(bucket)).Put([]byte(key), []byte(v))
}

// GetString reads a plain value.
func (t *Tx) GetString(bucket, key string) (string, bool) {
	v := t.tx.Bucket([]byte(bucket)).Get([]byte(key))
	return string(v), v != nil
}

// Get decodes the JSON at key into v; false when absent.
func (t *Tx) Get(bucket, key string, v any) (bool, error) {
	b := t.tx.Bucket([]byte(bucket)).Get([]byte(key))
	if b == nil {
		return false, nil
	}
	return true, json.Unmarshal(b, v)
}

// Delete removes key (and its index entries).
func (t *Tx) Delete(bucket, key string) error {
	bk := t.tx.Bucket([]byte(bucket))
	if indexed(bucket) {
		if err := reindex(t.tx, bucket, key, bk.Get([]byte(key)), nil); err != nil {
			return err
		}
	}
	return bk.Delete([]byte(key))
}

// ForEachPrefix calls fn with every raw value whose key starts with prefix.
func (t *Tx) ForEachPrefix(bucket, prefix string, fn func(key string, v []byte) error) error {
	c := t.tx.Bucket([]byte(bucket)).Cursor()
	p := []byte(prefix)
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		if err := fn(string(k), v); err != nil {
			return err
		}
	}
	return nil
}

// ForEach calls fn with every raw value of a bucket in key order.
func (t *Tx) ForEach(bucket string, fn func(key string, v []byte) error) error {
	return t.tx.Bucket([]byte(bucket)).ForEach(func(k, v []byte) error { return fn(string(k), v) })
}
