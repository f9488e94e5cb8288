package journal

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"example.com/posd/internal/defect"
)

// SchemaVersion is written into a new journal and checked on open.
const SchemaVersion = 2

// Buckets.
const (
	orderBucket   = "orders"    // mch_trade_id -> order JSON
	codeBucket    = "codes"     // SHA-256 of a payment code -> mch_trade_id
	chargeBucket  = "charges"   // charge id -> charge JSON
	idemBucket    = "idem"      // Idempotency-Key -> charge id
	receiptBucket = "receipts"  // printer \x00 receipt id -> receipt JSON, until printed
	refundBucket  = "refunds"   // mch_refund_id -> refund JSON
	reconBucket   = "reconcile" // date -> reconciliation run JSON
	refBucket     = "refs"      // lane \x00 the till's reference -> charge id; \x01last\x00 lane -> its last charge
	outboxBucket  = "outbox"    // 8-byte sequence -> an entry for the fleet (outbox.go)
	meta          = "meta"
)

var (
	keySchema  = []byte("schema")
	keyEpoch   = []byte("epoch")
	keyCounter = []byte("counter")
	keyRun     = []byte("run")
	// keyAway: this journal has had a witness away from its folder.
	keyAway = []byte("witness_away")
	// keyUnverified: a restored copy whose paid orders are not yet all
	// marked to be asked again.
	keyUnverified = []byte("restored_unverified")
	// keyVersionFloor: every version written after a restore is above it.
	keyVersionFloor = []byte("version_floor")
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
	seen        witness  // beside the journal
	away        witness  // outside the state folder (Options.Witness)
	file        *os.File // the journal, read for the freelist's CRC
	markMu      sync.Mutex
	marked      int           // the last transaction marked in the witness
	pageSize    int           // read once: bbolt's Info races with a commit's remap
	run         uint64        // this run
	dead        atomic.Bool   // Kill: nothing more is written
	outbox      atomic.Bool   // SetOutbox: changes are written to the outbox too
	floor       uint64        // versions are above it (witness.go), set at open
	acked       atomic.Uint64 // OutboxAcked: entries up to it go with the next write
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
	// Witness is the second witness's path, outside the journal's folder
	// (witness.go); "" for none.
	Witness string
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
	j := &Journal{db: db, newEpoch: o.Epoch, pageSize: db.Info().PageSize}
	if j.newEpoch == nil {
		j.newEpoch = newEpoch
	}
	if err := j.openWitness(path, o.Witness); err != nil {
		db.Close()
		return nil, fmt.Errorf("journal: %w", err)
	}
	if err := j.protect(func() error { return upgrade(db) }); err != nil {
		db.Close()
		j.closeWitness()
		return nil, fmt.Errorf("journal: %s: upgrade: %w", path, err)
	}
	if err := j.protect(func() error { return db.Update(j.init) }); err != nil {
		db.Close()
		j.closeWitness()
		return nil, fmt.Errorf("journal: %s: %w", path, err)
	}
	return j, nil
}

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
	for _, b := range []string{meta, orderBucket, codeBucket, chargeBucket, idemBucket, receiptBucket, refundBucket, refBucket, reconBucket, liveIndex, doneIndex, outboxBucket} {
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
	if prev != nil && defect.On(defect.ReusedIDsAdopted) {
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
	j.closeWitness()
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
	t := &Tx{tx: tx, out: j.outbox.Load(), floor: j.floor}
	if t.out {
		if err := t.trimOutbox(j.acked.Load()); err != nil {
			return err
		}
	}
	return fn(t)
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
	return j.protect(func() error { return j.db.View(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) }) })
}
