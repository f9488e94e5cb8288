package journal

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strconv"
	"time"

	"example.com/posd/internal/money"
)

// keyObserved: the time posd had seen pass when it last wrote it, and the
// wall clock then (Unix nanoseconds each): never the wall clock alone,
// which may have run ahead.
var keyObserved = []byte("observed")

// Observed is the time posd had seen pass at its last save and the wall
// clock then (SetObserved); zero in a journal no posd saved them in.
func (j *Journal) Observed() (observed, wall time.Time, err error) {
	err = j.View(func(tx *Tx) error {
		if v := tx.tx.Bucket([]byte(meta)).Get(keyObserved); len(v) == 16 {
			observed = time.Unix(0, int64(binary.BigEndian.Uint64(v)))
			wall = time.Unix(0, int64(binary.BigEndian.Uint64(v[8:])))
		}
		return nil
	})
	return observed, wall, err
}

// Newest is the newest time the journal's records hold (an order's or a
// charge's): later than the wall clock, a clock that ran ahead wrote them.
func (j *Journal) Newest() (time.Time, error) {
	var t time.Time
	err := j.View(func(tx *Tx) error { t = tx.newest(); return nil })
	return t, err
}

// SetObserved records the time posd has seen pass, and the wall clock now.
func (j *Journal) SetObserved(observed, wall time.Time) error {
	return j.Update(func(tx *Tx) error {
		return tx.tx.Bucket([]byte(meta)).Put(keyObserved, append(u64(uint64(observed.UnixNano())), u64(uint64(wall.UnixNano()))...))
	})
}

// newest is the newest time the records hold: the last final order and
// charge by the index, and every unfinished order.
func (t *Tx) newest() time.Time {
	var n time.Time
	c := t.tx.Bucket([]byte(doneIndex)).Cursor()
	for _, bucket := range []string{orderBucket, chargeBucket} {
		p := []byte(bucket + "/")
		k, _ := c.Seek(append(bytes.Clone(p), 0xff))
		if k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		if k == nil || !bytes.HasPrefix(k, p) || len(k) < len(p)+16 {
			continue
		}
		if ns, err := strconv.ParseUint(string(k[len(p):len(p)+16]), 16, 64); err == nil {
			n = later(n, time.Unix(0, int64(ns)))
		}
	}
	_ = t.forEachLive(orderBucket, func(_ string, v []byte) error {
		var o money.Order
		if json.Unmarshal(v, &o) == nil {
			n = later(n, o.UpdatedAt)
		}
		return nil
	})
	return n
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
