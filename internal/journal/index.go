package journal

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"example.com/posd/internal/money"
	bolt "go.etcd.io/bbolt"
)

// The journal keeps two indexes of its orders and charges, written by put
// and remove in the same transaction as the record, so that no caller can
// forget them and the work of a start or a prune does not grow with the
// years of history a box keeps:
//
//   - liveIndex: "<bucket>/<key>" while the record is unfinished work (an order
//     not done nor waiting for an operator; a charge open or needing
//     attention). A start reads these records only.
//   - doneIndex: "<bucket>/<16 hex digits of unix nanoseconds>/<key>" for a
//     final record, by when it became final (an order's finished_at, a
//     charge's updated_at). Pruning reads the oldest first and stops at the
//     cutoff.
//
// Both are derived from the record by the vocabulary's own predicates
// (money.Order.Active, money.Charge.Open).
const (
	liveIndex = "live"
	doneIndex = "done"
)

func indexed(bucket string) bool { return bucket == orderBucket || bucket == chargeBucket }

// entries are a record's index keys (nil: none).
type entries struct{ live, done []byte }

// orderEntries and chargeEntries derive a record's entries from the
// vocabulary's predicates.
func orderEntries(key string, o *money.Order) entries {
	switch {
	case o.Active():
		return entries{live: []byte(orderBucket + "/" + key)}
	case !o.Final():
		return entries{} // waiting for an operator: neither driven nor final, never pruned
	}
	return doneEntry(orderBucket, key, o.FinishedAt)
}

func chargeEntries(key string, c *money.Charge) entries {
	if c.Open() || c.State == money.NeedsAttention {
		return entries{live: []byte(chargeBucket + "/" + key)}
	}
	return doneEntry(chargeBucket, key, c.UpdatedAt)
}

func doneEntry(bucket, key string, final time.Time) entries {
	if final.IsZero() {
		return entries{} // a final record without a time is never pruned
	}
	return entries{done: fmt.Appendf(nil, "%s/%016x/%s", bucket, final.UnixNano(), key)}
}

// storedEntries returns the entries of a stored record, plain or
// compressed (none for one that cannot be read).
func storedEntries(bucket, key string, v []byte) entries {
	if v == nil {
		return entries{}
	}
	v, err := decode(v)
	if err != nil {
		return entries{}
	}
	switch bucket {
	case orderBucket:
		var o money.Order
		if json.Unmarshal(v, &o) == nil {
			return orderEntries(key, &o)
		}
	case chargeBucket:
		var c money.Charge
		if json.Unmarshal(v, &c) == nil {
			return chargeEntries(key, &c)
		}
	}
	return entries{}
}

// reindex moves a record's index entries from old to now.
func reindex(tx *bolt.Tx, old, now entries) error {
	for _, ix := range []struct {
		name     string
		old, new []byte
	}{{liveIndex, old.live, now.live}, {doneIndex, old.done, now.done}} {
		if bytes.Equal(ix.old, ix.new) {
			continue
		}
		b := tx.Bucket([]byte(ix.name))
		if ix.name == doneIndex {
			b.FillPercent = appendFill // keys are times
		}
		if ix.old != nil {
			if err := b.Delete(ix.old); err != nil {
				return err
			}
		}
		if ix.new != nil {
			if err := b.Put(ix.new, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// ForEachLive calls fn with every live record of bucket (orderBucket or
// chargeBucket), in key order.
func (t *Tx) forEachLive(bucket string, fn func(key string, v []byte) error) error {
	p := []byte(bucket + "/")
	c := t.tx.Bucket([]byte(liveIndex)).Cursor()
	data := t.tx.Bucket([]byte(bucket))
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		if v := data.Get(k[len(p):]); v != nil {
			if err := each(bucket, k[len(p):], v, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// DoneBefore returns the keys of up to max records of bucket that became
// final before cutoff, oldest first, starting after the index position
// after ("" for the start), and the position to continue from.
func (t *Tx) doneBefore(bucket string, cutoff time.Time, after string, max int) (keys []string, next string) {
	p := []byte(bucket + "/")
	end := fmt.Appendf(nil, "%s/%016x", bucket, cutoff.UnixNano())
	c := t.tx.Bucket([]byte(doneIndex)).Cursor()
	k, _ := c.Seek(p)
	if after != "" {
		if k, _ = c.Seek([]byte(after)); k != nil && string(k) == after {
			k, _ = c.Next()
		}
	}
	for ; k != nil && bytes.HasPrefix(k, p) && bytes.Compare(k, end) < 0 && len(keys) < max; k, _ = c.Next() {
		rest := k[len(p):]
		if i := bytes.IndexByte(rest, '/'); i >= 0 {
			keys = append(keys, string(rest[i+1:]))
			next = string(k)
		}
	}
	return keys, next
}

// IndexBatch is how many records one transaction of the upgrade indexes.
const IndexBatch = 2000

// upgrade brings a schema-1 journal to schema 2 before it is opened: the
// indexes of its whole history, IndexBatch records a transaction (in one
// transaction bbolt's leaves grow without splitting until the commit, and
// the work grows with the square of the history: half an hour for a year
// of a busy lane). The schema is written last, so an upgrade cut short
// starts over at the next open; writing an index entry twice is harmless.
func upgrade(db *bolt.DB) error {
	var schema uint64
	_ = db.View(func(tx *bolt.Tx) error {
		if m := tx.Bucket([]byte(meta)); m != nil {
			if v := m.Get(keySchema); len(v) == 8 {
				schema = binary.BigEndian.Uint64(v)
			}
		}
		return nil
	})
	if schema != 1 {
		return nil // new, or already there
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, name := range []string{liveIndex, doneIndex} {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	for _, bucket := range []string{orderBucket, chargeBucket} {
		var after []byte
		for done := false; !done; {
			err := db.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket([]byte(bucket))
				if b == nil {
					done = true
					return nil
				}
				c := b.Cursor()
				k, v := c.First()
				if after != nil {
					if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
						k, v = c.Next()
					}
				}
				n := 0
				for ; k != nil && n < IndexBatch; k, v = c.Next() {
					if err := reindex(tx, entries{}, storedEntries(bucket, string(k), v)); err != nil {
						return err
					}
					after, n = append(after[:0], k...), n+1
				}
				done = n < IndexBatch
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
	return db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte(meta)).Put(keySchema, u64(2)) })
}
