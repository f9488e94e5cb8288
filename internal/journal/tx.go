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
type Tx struct{ tx *bolt.Tx }

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
