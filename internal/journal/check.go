package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// The dangerous damage is a freelist that lists a page in use as free: the
// next commit writes over it, and orders vanish without a trace. Finding it
// by walking the tree reads the whole file — 14 s for a year of a busy
// lane with a cold cache. Instead, the witness (witness.go) keeps a CRC of
// the freelist as the last commit wrote it, and a start whose journal and
// witness agree checks only that and the small buckets. Any doubt (no
// witness, a witness behind the journal after a power cut or a restore, a
// CRC that differs) takes the whole-file check, as before.

// Checked says how a journal was checked.
type Checked string

const (
	CheckedWhole   Checked = "whole file"
	CheckedBounded Checked = "bounded: freelist as last committed, small buckets"
)

// smallBuckets are checked page by page on every start; the history
// (orders, charges, their done index, the code index) only by the whole
// check.
var smallBuckets = []string{meta, liveIndex, idemBucket, receiptBucket}

// Check walks every page of the file (bbolt's consistency check): a power
// cut at any byte leaves the old or the new meta page valid, and anything
// else is damage. It may panic on a damaged file: run it in a process of
// its own (posd journal-check).
func Check(path string) error {
	db, err := openChecked(path)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error { return drain(tx.Check()) })
}

// CheckStart is the start's check: bounded when the witness vouches for the
// freelist, the whole file otherwise. Like Check, run it in a process of its
// own.
func CheckStart(path string) (Checked, error) {
	db, err := openChecked(path)
	if err != nil {
		return CheckedWhole, err
	}
	defer db.Close()
	var how Checked
	err = db.View(func(tx *bolt.Tx) error {
		if !freelistAsCommitted(path, db, tx) {
			how = CheckedWhole
			return drain(tx.Check())
		}
		how = CheckedBounded
		for _, name := range smallBuckets {
			if b := tx.Bucket([]byte(name)); b != nil && b.Root() >= 2 {
				if err := drain(tx.Check(bolt.WithPageId(uint64(b.Root())))); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return how, err
}

func openChecked(path string) (*bolt.DB, error) {
	o := options()
	o.ReadOnly = true
	db, err := bolt.Open(path, 0o600, o)
	if err != nil {
		if errors.Is(err, bolterrors.ErrInvalid) || errors.Is(err, bolterrors.ErrChecksum) || errors.Is(err, bolterrors.ErrVersionMismatch) {
			return nil, fmt.Errorf("%w: %v", ErrDamaged, err)
		}
		return nil, err
	}
	return db, nil
}

// drain reads a check's errors to the end (the checker must finish) and
// returns the first.
func drain(errs <-chan error) error {
	var first error
	for cerr := range errs {
		if first == nil {
			first = fmt.Errorf("%w: %v", ErrDamaged, cerr)
		}
	}
	return first
}

// freelistAsCommitted reports whether the witness names tx as the last
// transaction committed and holds the CRC of tx's freelist.
func freelistAsCommitted(path string, db *bolt.DB, tx *bolt.Tx) bool {
	b, err := os.ReadFile(path + ".seen")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return false
	}
	txid, err1 := strconv.Atoi(f[1])
	sum, err2 := strconv.ParseUint(f[2], 16, 32)
	if err1 != nil || err2 != nil || txid != tx.ID() {
		return false
	}
	file, err := os.Open(path)
	if err != nil {
		return false
	}
	defer file.Close()
	got, ok := freelistCRC(file, db.Info().PageSize, tx.ID())
	return ok && got == uint32(sum)
}

// The layout of bbolt's pages that freelistCRC reads (bbolt's
// internal/common): a 16-byte page header (id, flags, count, overflow);
// in a meta page, the freelist's page at 48 and the txid at 64.
const (
	pageHeader      = 16
	metaFreelistOff = pageHeader + 32
	metaTxidOff     = pageHeader + 48
	freelistFlag    = 0x10
)

// freelistCRC is the CRC-32C of the free page ids in the freelist written
// by transaction txid; false when that transaction's meta page or its
// freelist is not found (a later commit wrote over the meta).
func freelistCRC(f io.ReaderAt, ps, txid int) (uint32, bool) {
	ne := binary.NativeEndian
	m := make([]byte, pageHeader+64)
	for _, off := range []int64{0, int64(ps)} {
		if _, err := f.ReadAt(m, off); err != nil || ne.Uint64(m[metaTxidOff:]) != uint64(txid) {
			continue
		}
		fl := int64(ne.Uint64(m[metaFreelistOff:]))
		h := make([]byte, pageHeader+8)
		if fl < 2 || fl > 1<<40 {
			return 0, false
		}
		if _, err := f.ReadAt(h, fl*int64(ps)); err != nil || ne.Uint16(h[8:]) != freelistFlag {
			return 0, false
		}
		n, at := int64(ne.Uint16(h[10:])), fl*int64(ps)+pageHeader
		if n == 0xFFFF { // a long list: its length is the first element
			n, at = int64(ne.Uint64(h[pageHeader:])), at+8
		}
		if size := (1 + int64(ne.Uint32(h[12:]))) * int64(ps); at-fl*int64(ps)+8*n > size {
			return 0, false
		}
		ids := make([]byte, 8*n)
		if _, err := f.ReadAt(ids, at); err != nil {
			return 0, false
		}
		return crc32.Checksum(ids, castagnoli), true
	}
	return 0, false
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)
