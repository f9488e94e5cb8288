package journal

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The witness, beside the journal (path.seen), holds the number of the
// last run that opened it and of the last transaction committed: "RUN
// TXID CRC", CRC that of the freelist this transaction wrote (check.go).
// The journal holds its run too. A journal of another run, or of
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
	if fields := strings.Fields(string(buf[:n])); len(fields) >= 2 {
		j.wRun, _ = strconv.ParseUint(fields[0], 10, 64)
		j.wTx, _ = strconv.Atoi(fields[1])
		j.wFound = true
	}
	j.seen = f
	if j.file, err = os.Open(path); err != nil {
		f.Close()
		return err
	}
	return nil
}

func (j *Journal) closeWitness() {
	if j.seen != nil {
		j.seen.Close()
		j.file.Close()
	}
}

// checkWitness runs in the opening transaction: it compares the journal
// with the witness and starts a new run in both.
func (j *Journal) checkWitness(tx *bolt.Tx, m *bolt.Bucket) error {
	var run uint64
	if v := m.Get(keyRun); v != nil {
		run = binary.BigEndian.Uint64(v)
	}
	j.restored = j.wFound && (run != j.wRun || tx.ID()-1 < j.wTx)
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
	j.wRun = max(j.wRun, run) + 1
	if err := m.Put(keyRun, u64(j.wRun)); err != nil {
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
	if j.seen == nil {
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
	b := fmt.Appendf(nil, "%-20d %-20d %-8s", j.wRun, txid, crc)
	_, _ = j.seen.WriteAt(b, 0)
}

// Restored reports whether the journal is an older copy of itself: a run
// after the one it last recorded had used it.
func (j *Journal) Restored() bool { return j.restored }
