package journal

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Tx is one transaction.
type Tx struct {
	tx    *bolt.Tx
	out   bool   // changes go to the outbox too (outbox.go)
	floor uint64 // every version written is above it (set at a restore)
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

// Put stores v as JSON (not an order nor a charge: putRecord).
func (t *Tx) put(bucket, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return t.writeBucket(bucket).Put([]byte(key), b)
}

var kindOf = map[string]string{orderBucket: "order", chargeBucket: "charge"}

// putRecord stores an order or a charge and moves its index entries from
// old's to its own. A record that is done is stored compressed (codec.go);
// one still being driven, rewritten at every step, is left plain, so that
// the steps of thousands of unresolved orders do not each deflate inside
// bbolt's single writer.
func (t *Tx) putRecord(bucket, key string, v any, old, now entries, done bool, lane string, version uint64) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := reindex(t.tx, old, now); err != nil {
		return err
	}
	if err := t.addOutbox(kindOf[bucket], key, lane, version, nil); err != nil {
		return err
	}
	if done {
		b = encode(b)
	}
	return t.writeBucket(bucket).Put([]byte(key), b)
}

// appendFill is how full bbolt fills a page before it starts the next, for
// the buckets whose keys grow (orders: a lane numbers them; the done index:
// times). Appended keys only land in the last page, so the pages split off
// behind it are not written again, and bbolt's default (half full; with an
// order's 714 bytes of JSON, a third) wastes the rest. Random keys keep the
// default (codes; charges, whose ids the lane draws at random): at 90% an
// insert into a full page splits it into a full one and an almost empty
// one (charges' pages were 40% full instead of 69%). bbolt does not store
// the setting: it is set on the handle in each transaction that writes.
const appendFill = 0.9

// writeBucket returns bucket's handle for a write.
func (t *Tx) writeBucket(bucket string) *bolt.Bucket {
	bk := t.tx.Bucket([]byte(bucket))
	if bucket == orderBucket {
		bk.FillPercent = appendFill
	}
	return bk
}

// PutString stores a plain value (an index entry).
func (t *Tx) putString(bucket, key, v string) error {
	return t.tx.Bucket([]byte(bucket)).Put([]byte(key), []byte(v))
}

// GetString reads a plain value.
func (t *Tx) getString(bucket, key string) (string, bool) {
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return "", false // a bucket a newer posd added, in a journal opened read-only
	}
	v := b.Get([]byte(key))
	return string(v), v != nil
}

// Get decodes the JSON at key into v; false when absent.
func (t *Tx) get(bucket, key string, v any) (bool, error) {
	bk := t.tx.Bucket([]byte(bucket))
	if bk == nil {
		return false, nil // a bucket a newer posd added, in a journal opened read-only
	}
	b := bk.Get([]byte(key))
	if b == nil {
		return false, nil
	}
	b, err := jsonOf(bucket, key, b)
	if err != nil {
		return true, err
	}
	return true, json.Unmarshal(b, v)
}

// jsonOf returns the JSON of a value stored in bucket.
func jsonOf(bucket, key string, v []byte) ([]byte, error) {
	if v == nil || !compressed(bucket) {
		return v, nil
	}
	js, err := decode(v)
	if err != nil {
		return nil, fmt.Errorf("journal: %s %s: %w", bucket, key, err)
	}
	return js, nil
}

// Delete removes key (and its index entries).
func (t *Tx) remove(bucket, key string) error {
	bk := t.writeBucket(bucket)
	if indexed(bucket) {
		if err := reindex(t.tx, storedEntries(bucket, key, bk.Get([]byte(key))), entries{}); err != nil {
			return err
		}
	}
	return bk.Delete([]byte(key))
}

// ForEachPrefix calls fn with the JSON of every value whose key starts
// with prefix.
func (t *Tx) forEachPrefix(bucket, prefix string, fn func(key string, v []byte) error) error {
	c := t.tx.Bucket([]byte(bucket)).Cursor()
	p := []byte(prefix)
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		if err := each(bucket, k, v, fn); err != nil {
			return err
		}
	}
	return nil
}

// ForEach calls fn with the JSON of every value of a bucket in key order.
func (t *Tx) forEach(bucket string, fn func(key string, v []byte) error) error {
	return t.tx.Bucket([]byte(bucket)).ForEach(func(k, v []byte) error { return each(bucket, k, v, fn) })
}

// each calls fn with the JSON of one stored value.
func each(bucket string, k, v []byte, fn func(key string, v []byte) error) error {
	key := string(k)
	js, err := jsonOf(bucket, key, v)
	if err != nil {
		return err
	}
	return fn(key, js)
}
