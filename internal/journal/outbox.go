package journal

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"
)

// The outbox is what the fleet publisher (internal/fleet) sends to the
// head office. With the outbox on (SetOutbox), every write of an order, a
// charge or a refund adds an entry in the same transaction as the record:
// nothing is published that did not happen, and nothing that happened is
// lost, whatever crashes between the commit and the publish. Entries are
// keyed by the bucket's own sequence, so they are read back in the order
// they were written; the publisher removes them once the broker has
// acknowledged them. Money records are never dropped; device entries are
// not added past MaxDeviceBacklog entries waiting (a box offline for
// months keeps its money, not every flap of a scanner).
//
// An entry names its record (kind, id, version); the publisher reads the
// record as it is when it publishes, so versions made before a publish
// go as the latest (in order, never backwards). Entries are small and
// acknowledged ones are removed by the next write of the payment path
// (OutboxAcked): while the broker keeps up, the outbox is a few entries,
// kept inline in the page every commit writes anyway — the scan's
// transaction writes no page more for it (docs/performance.md).

// OutboxEntry is one change waiting to be published.
type OutboxEntry struct {
	Seq     uint64          `json:"-"`
	Kind    string          `json:"kind"` // order, charge, refund, device
	ID      string          `json:"id"`
	Lane    string          `json:"lane,omitempty"`
	Version uint64          `json:"version"`
	At      time.Time       `json:"at"`
	Record  json.RawMessage `json:"record,omitempty"` // a device's state; a money record is read when published
}

// MaxDeviceBacklog: past this many entries waiting, device changes are not
// added to the outbox.
const MaxDeviceBacklog = 100_000

// SetOutbox turns the outbox on or off for the writes that follow.
func (j *Journal) SetOutbox(on bool) { j.outbox.Store(on) }

// OutboxAcked says the stream acknowledged every entry up to seq: the next
// write removes them, in its own transaction.
func (j *Journal) OutboxAcked(seq uint64) {
	for {
		old := j.acked.Load()
		if seq <= old || j.acked.CompareAndSwap(old, seq) {
			return
		}
	}
}

// trimOutbox removes the acknowledged entries (a write's first step).
func (t *Tx) trimOutbox(acked uint64) error {
	if acked == 0 {
		return nil
	}
	b := t.tx.Bucket([]byte(outboxBucket))
	if b == nil {
		return nil
	}
	c := b.Cursor()
	if k, _ := c.First(); k == nil || binary.BigEndian.Uint64(k) > acked {
		return nil // nothing to remove: the bucket is not touched
	}
	return t.Acked(acked)
}

// addOutbox adds an entry, when the outbox is on.
func (t *Tx) addOutbox(kind, id, lane string, version uint64, record []byte) error {
	if !t.out {
		return nil
	}
	b := t.tx.Bucket([]byte(outboxBucket))
	if b == nil {
		return nil // a journal opened read-only, from an older posd
	}
	b.FillPercent = appendFill // keys only grow
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	v, err := json.Marshal(OutboxEntry{Kind: kind, ID: id, Lane: lane, Version: version, At: time.Now(), Record: record})
	if err != nil {
		return err
	}
	return b.Put(u64(seq), v)
}

// AddDevice records a device's change (its lane, name and state as JSON)
// in the outbox, when it is on. Its version is the entry's sequence (above
// the restore floor).
func (t *Tx) AddDevice(lane, name string, state any) error {
	if !t.out {
		return nil
	}
	b := t.tx.Bucket([]byte(outboxBucket))
	if b == nil {
		return nil
	}
	if t.OutboxStats().Pending >= MaxDeviceBacklog {
		return nil
	}
	rec, err := json.Marshal(state)
	if err != nil {
		return err
	}
	return t.addOutbox("device", lane+"/"+name, lane, t.floor+b.Sequence()+1, rec)
}

// Outbox returns up to max entries waiting, oldest first.
func (t *Tx) Outbox(max int) ([]OutboxEntry, error) { return t.OutboxAfter(0, max) }

// OutboxAfter returns up to max entries waiting after seq, oldest first.
func (t *Tx) OutboxAfter(seq uint64, max int) ([]OutboxEntry, error) {
	b := t.tx.Bucket([]byte(outboxBucket))
	if b == nil {
		return nil, nil
	}
	var out []OutboxEntry
	c := b.Cursor()
	for k, v := c.Seek(u64(seq + 1)); k != nil && len(out) < max; k, v = c.Next() {
		var e OutboxEntry
		if err := json.Unmarshal(v, &e); err != nil {
			return out, fmt.Errorf("%w: outbox entry %d: %v", ErrDamaged, binary.BigEndian.Uint64(k), err)
		}
		e.Seq = binary.BigEndian.Uint64(k)
		out = append(out, e)
	}
	return out, nil
}

// Acked removes the entries up to and including seq: the broker has them.
func (t *Tx) Acked(seq uint64) error {
	b := t.tx.Bucket([]byte(outboxBucket))
	c := b.Cursor()
	for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= seq; k, _ = c.First() {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// OutboxStats is what waits in the outbox.
type OutboxStats struct {
	Pending uint64    `json:"pending"`
	Oldest  time.Time `json:"oldest,omitzero"` // when the oldest waiting change was made
}

// OutboxStats says how many entries wait and since when, without reading
// them all (entries leave from the front, in order).
func (t *Tx) OutboxStats() OutboxStats { return t.OutboxStatsAfter(0) }

// OutboxStatsAfter is OutboxStats of the entries after seq.
func (t *Tx) OutboxStatsAfter(seq uint64) OutboxStats {
	b := t.tx.Bucket([]byte(outboxBucket))
	if b == nil {
		return OutboxStats{}
	}
	c := b.Cursor()
	fk, fv := c.Seek(u64(seq + 1))
	if fk == nil {
		return OutboxStats{}
	}
	lk, _ := c.Last()
	st := OutboxStats{Pending: binary.BigEndian.Uint64(lk) - binary.BigEndian.Uint64(fk) + 1}
	var e OutboxEntry
	if json.Unmarshal(fv, &e) == nil {
		st.Oldest = e.At
	}
	return st
}

// Current fills an entry with its record as the journal holds it now, and
// that record's version (never below the entry's); false when the record
// is gone (pruned): nothing is left to send.
func (t *Tx) Current(e *OutboxEntry) (bool, error) {
	if e.Record != nil {
		return true, nil
	}
	var rec any
	var version uint64
	switch e.Kind {
	case "order":
		o, ok, err := t.Order(e.ID)
		if !ok || err != nil {
			return ok, err
		}
		rec, version = o, o.Version
	case "charge":
		c, ok, err := t.Charge(e.ID)
		if !ok || err != nil {
			return ok, err
		}
		rec, version = c, c.Version
	case "refund":
		r, ok, err := t.Refund(e.ID)
		if !ok || err != nil {
			return ok, err
		}
		rec, version = r, r.Version
	default:
		return false, nil
	}
	b, err := json.Marshal(rec)
	e.Record, e.Version = b, max(e.Version, version)
	return true, err
}
