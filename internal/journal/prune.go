package journal

import (
	"encoding/json"
	"time"

	"example.com/posd/internal/money"
)

// PruneBatch is how many records one pruning transaction looks at.
const PruneBatch = 100

// Prune deletes what was final before cutoff: orders (and their code's
// index entry) and charges whose every attempt is gone, with their
// idempotency keys. Unresolved orders and open charges are never pruned,
// nor a record the outbox still holds for the head office.
// It reads the index of final records, oldest first, and deletes in small
// transactions that hold no lane: a year of history to prune costs time,
// never a payment's wait. It returns how many orders and charges went.
func (j *Journal) Prune(cutoff time.Time) (orders, charges int, err error) {
	held, err := j.unpublished()
	if err != nil {
		return 0, 0, err
	}
	orders, err = j.pruneBucket(orderBucket, cutoff, held, pruneOrder)
	if err != nil {
		return orders, 0, err
	}
	charges, err = j.pruneBucket(chargeBucket, cutoff, held, pruneCharge)
	return orders, charges, err
}

// pruneBucket deletes, batch by batch, the records of bucket final before
// cutoff that one agrees to delete; the rest are stepped over.
func (j *Journal) pruneBucket(bucket string, cutoff time.Time, held map[string]bool, one func(*Tx, string) (bool, error)) (int, error) {
	total, after := 0, ""
	for {
		var ids []string
		err := j.Update(func(tx *Tx) error {
			var next string
			ids, next = tx.doneBefore(bucket, cutoff, after, PruneBatch)
			for _, id := range ids {
				if held[id] {
					continue
				}
				gone, err := one(tx, id)
				if err != nil {
					return err
				}
				if gone {
					total++
				}
			}
			if next != "" {
				after = next
			}
			return nil
		})
		j.Trim() // the batch's old pages leave posd's memory
		if err != nil || len(ids) < PruneBatch {
			return total, err
		}
	}
}

// pruneOrder deletes a final order and its code's index entry.
func pruneOrder(tx *Tx, id string) (bool, error) {
	o, ok, err := tx.Order(id)
	if err != nil || !ok {
		return false, err
	}
	if !o.Final() {
		return false, nil // the index is only a hint: the record decides
	}
	if err := tx.remove(orderBucket, id); err != nil {
		return false, err
	}
	return true, tx.freeCode(o.CodeSHA256, id)
}

// pruneCharge deletes a final charge none of whose attempts is kept.
func pruneCharge(tx *Tx, id string) (bool, error) {
	c, ok, err := tx.Charge(id)
	if err != nil || !ok {
		return false, err
	}
	if c.Open() || c.State == money.NeedsAttention {
		return false, nil
	}
	for _, a := range c.AttemptIDs {
		if _, ok, _ := tx.Order(a); ok {
			return false, nil // an attempt is still kept
		}
	}
	if err := tx.remove(chargeBucket, c.ID); err != nil {
		return false, err
	}
	for _, k := range []string{refKey(c.Lane, c.Reference), lastKey(c.Lane)} {
		if id, ok := tx.getString(refBucket, k); ok && id == c.ID {
			if err := tx.remove(refBucket, k); err != nil {
				return false, err
			}
		}
	}
	for _, r := range c.Refunds {
		if err := tx.remove(refundBucket, r); err != nil {
			return false, err
		}
	}
	// A key a later charge took over (this one was dated in the future)
	// stays that charge's.
	if id, ok := tx.getString(idemBucket, c.IdempotencyKey); c.IdempotencyKey != "" && ok && id == c.ID {
		return true, tx.remove(idemBucket, c.IdempotencyKey)
	}
	return true, nil
}

// unpublished are the ids of the records the outbox holds that the broker
// has not acknowledged: the head office has not got them yet.
func (j *Journal) unpublished() (map[string]bool, error) {
	held := map[string]bool{}
	acked := j.acked.Load()
	err := j.View(func(tx *Tx) error {
		b := tx.tx.Bucket([]byte(outboxBucket))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(u64(acked + 1)); k != nil; k, v = c.Next() {
			var e OutboxEntry
			if json.Unmarshal(v, &e) == nil && e.Kind != "device" {
				held[e.ID] = true
			}
		}
		return nil
	})
	return held, err
}
