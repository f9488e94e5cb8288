package journal

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"example.com/posd/internal/defect"
)

// A witness holds the number of the last run that opened the journal and
// of the last transaction committed: "RUN TXID CRC", CRC that of the
// freelist this transaction wrote (check.go). The journal holds its run
// too. A journal of another run, or of this run but behind a witness, is
// an older copy put back (a backup restored): what it says was paid may
// since have been refunded, and Restored says so. A witness is written
// after each commit without an fsync of its own: after a power cut it may
// lag the journal, never lead it, so it never says "restored" wrongly.
//
// There are two. The first lives beside the journal (path.seen) and
// catches the journal file alone put back. A copy of the whole folder
// brings its witness back with it, so the second lives where backups of
// the state folder do not look (Options.Witness: the cache directory): a
// folder put back meets a witness that has seen later runs, and a journal
// on a new disk meets none. A journal that has run before and finds no
// witness at all is a copy too. What neither can see — a disk image or a
// VM snapshot that brings every file back together — is in
// docs/reliability.md, with what an operator backs up.
type witness struct {
	f     *os.File
	run   uint64
	tx    int
	found bool
}

func openWitness(path string) (witness, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return witness{}, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return witness{}, err
	}
	w := witness{f: f}
	var buf [64]byte
	n, _ := f.ReadAt(buf[:], 0)
	if fields := strings.Fields(string(buf[:n])); len(fields) >= 2 {
		w.run, _ = strconv.ParseUint(fields[0], 10, 64)
		w.tx, _ = strconv.Atoi(fields[1])
		w.found = true
	}
	return w, nil
}

// behind reports whether the journal, at run and its next transaction
// txid, is older than what the witness saw.
func (w *witness) behind(run uint64, txid int) bool {
	return w.found && (run != w.run || txid-1 < w.tx)
}

func (j *Journal) openWitness(path, away string) error {
	var err error
	if j.seen, err = openWitness(path + ".seen"); err != nil {
		return err
	}
	if away != "" {
		if j.away, err = openWitness(away); err != nil {
			j.seen.f.Close()
			return fmt.Errorf("witness %s: %w", away, err)
		}
	}
	if j.file, err = os.Open(path); err != nil {
		j.closeWitness()
		return err
	}
	return nil
}

func (j *Journal) closeWitness() {
	for _, w := range []witness{j.seen, j.away} {
		if w.f != nil {
			w.f.Close()
		}
	}
	if j.file != nil {
		j.file.Close()
	}
}

// checkWitness runs in the opening transaction: it compares the journal
// with the witness and starts a new run in both.
func (j *Journal) checkWitness(tx *bolt.Tx, m *bolt.Bucket) error {
	var run uint64
	used := m.Get(keyRun) != nil
	if used {
		run = binary.BigEndian.Uint64(m.Get(keyRun))
	}
	txid := tx.ID()
	j.restored = j.seen.behind(run, txid) || j.away.behind(run, txid) ||
		used && !j.seen.found && !j.away.found || // a journal that ran before, and no witness
		used && j.away.f != nil && !j.away.found && m.Get(keyAway) != nil // the witness away was kept, and is not here
	if defect.On(defect.WitnessBesideJournal) { // the witness beside the journal only, as before
		j.restored = j.seen.behind(run, txid)
	}
	// A copy stays one until its paid orders are marked to be asked again
	// (Verified): a first start cut short would otherwise leave the next
	// one a plain restart, the witnesses marked with its run.
	if j.restored {
		if err := m.Put(keyUnverified, []byte{1}); err != nil {
			return err
		}
	}
	j.restored = j.restored || m.Get(keyUnverified) != nil
	if j.away.f != nil && m.Get(keyAway) == nil {
		// From now on, this journal without its witness away is a copy.
		if err := m.Put(keyAway, []byte{1}); err != nil {
			return err
		}
	}
	// Versions continue above a floor set at each restore: the copy's
	// records would otherwise take again versions the lineage it replaced
	// already gave them, with other contents, and the head office keeps
	// a record's first copy of a version. A time in milliseconds is above
	// anything a lineage counted since an earlier floor.
	if v := m.Get(keyVersionFloor); len(v) == 8 {
		j.floor = binary.BigEndian.Uint64(v)
	}
	if j.restored {
		j.floor = max(j.floor, uint64(time.Now().UnixMilli()))
		if err := m.Put(keyVersionFloor, u64(j.floor)); err != nil {
			return err
		}
	}
	j.run = max(j.seen.run, j.away.run, run) + 1
	if j.restored {
		// A copy on a new disk finds no witness: its runs would count
		// again from the copy's, and a copy of a later run of the lineage
		// it replaced, put back in turn, would look current.
		j.run = max(j.run, uint64(time.Now().UnixMilli()))
	}
	if err := m.Put(keyRun, u64(j.run)); err != nil {
		return err
	}
	id := tx.ID()
	tx.OnCommit(func() { j.mark(id) })
	return nil
}

// mark records txid as the last committed transaction of this run, with
// the CRC of its freelist. Commit handlers run after bbolt let the next
// writer in, so marks may come out of order: an older one is dropped, and
// a CRC not found (a later commit wrote over the meta) leaves the witness
// without one, which costs the next start the whole check, never a wrong
// pass.
func (j *Journal) mark(txid int) {
	if j.seen.f == nil {
		return
	}
	j.markMu.Lock()
	defer j.markMu.Unlock()
	if txid <= j.marked {
		return
	}
	j.marked = txid
	crc := "-"
	if sum, ok := freelistCRC(j.file, j.pageSize, txid); ok {
		crc = fmt.Sprintf("%08x", sum)
	}
	b := fmt.Appendf(nil, "%-20d %-20d %-8s", j.run, txid, crc)
	for _, w := range []witness{j.seen, j.away} {
		if w.f != nil {
			_, _ = w.f.WriteAt(b, 0)
		}
	}
}

// Restored reports whether the journal is an older copy of itself: a run
// after the one it last recorded had used it, and what it says was paid
// has not yet all been marked to be asked again (Verified).
func (j *Journal) Restored() bool { return j.restored }

// Verified records that every order of a restored journal was marked to
// be asked at the gateway again: the next start is a plain one.
func (j *Journal) Verified() error {
	return j.Update(func(tx *Tx) error { return tx.tx.Bucket([]byte(meta)).Delete(keyUnverified) })
}
