package journal

import (
	"encoding/json"
	"slices"
	"time"

	"example.com/posd/internal/defect"
	"example.com/posd/internal/money"
)

// The journal owns its schema: the house's records (internal/money) and
// the indexes kept with them are written only through the operations of
// this file, each one change of the records in the caller's transaction.
// An order's step and its charge change together (SaveStep), so that no
// start has to square one with the other after a crash; every write of a
// record gives it the next version.

// Order reads an order; false when there is none.
func (t *Tx) Order(id string) (money.Order, bool, error) {
	var o money.Order
	ok, err := t.get(orderBucket, id, &o)
	return o, ok, err
}

// Charge reads a charge; false when there is none.
func (t *Tx) Charge(id string) (money.Charge, bool, error) {
	var c money.Charge
	ok, err := t.get(chargeBucket, id, &c)
	return c, ok, err
}

// ChargeByKey reads the charge opened with an Idempotency-Key.
func (t *Tx) ChargeByKey(key string) (money.Charge, bool, error) {
	id, ok := t.getString(idemBucket, key)
	if !ok {
		return money.Charge{}, false, nil
	}
	return t.Charge(id)
}

// CodeUsedBy names the order that used a payment code (by its hash).
func (t *Tx) CodeUsedBy(hash string) (string, bool) { return t.getString(codeBucket, hash) }

// OpenCharge records a new charge, and its Idempotency-Key and the till's
// reference if it has them.
func (t *Tx) OpenCharge(c *money.Charge) error {
	if c.IdempotencyKey != "" {
		if err := t.putString(idemBucket, c.IdempotencyKey, c.ID); err != nil {
			return err
		}
	}
	if c.Reference != "" {
		if err := t.putString(refBucket, refKey(c.Lane, c.Reference), c.ID); err != nil {
			return err
		}
	}
	return t.putCharge(c)
}

// The till's references and each lane's last charge: what finds a charge
// again after the till lost the reply.
func refKey(lane, ref string) string { return lane + "\x00" + ref }
func lastKey(lane string) string     { return "\x01last\x00" + lane }

// ChargeByReference reads the latest charge a lane opened with a till's
// reference.
func (t *Tx) ChargeByReference(lane, ref string) (money.Charge, bool, error) {
	id, ok := t.getString(refBucket, refKey(lane, ref))
	if !ok {
		return money.Charge{}, false, nil
	}
	return t.Charge(id)
}

// LastCharge reads the charge a lane opened last.
func (t *Tx) LastCharge(lane string) (money.Charge, bool, error) {
	id, ok := t.getString(refBucket, lastKey(lane))
	if !ok {
		return money.Charge{}, false, nil
	}
	return t.Charge(id)
}

// RecordAttempt records a new attempt before its pay is sent: its code
// claimed, the order, and its charge (naming the attempt).
func (t *Tx) RecordAttempt(o *money.Order, c *money.Charge) error {
	if err := t.putString(codeBucket, o.CodeSHA256, o.MchTradeID); err != nil {
		return err
	}
	if err := t.putOrder(o); err != nil {
		return err
	}
	return t.putCharge(c)
}

// SaveStep records an order's step and moves its charge with it
// (money.Settle) in the same transaction. A final pay that never left the
// box gives its code back: nothing was created with it.
func (t *Tx) SaveStep(o *money.Order, now time.Time) (money.Settled, error) {
	var st money.Settled
	if err := t.putOrder(o); err != nil {
		return st, err
	}
	if o.Final() && o.NotSent {
		if err := t.freeCode(o.CodeSHA256, o.MchTradeID); err != nil {
			return st, err
		}
	}
	if o.RefundID != "" {
		if err := t.settleRefund(o, now, &st); err != nil {
			return st, err
		}
	}
	if o.ChargeID == "" {
		return st, nil
	}
	c, ok, err := t.Charge(o.ChargeID)
	if err != nil || !ok {
		// The order is the record of the money: it is kept whatever its
		// charge (unreadable: damage), and the lane hears it has none.
		return st, nil
	}
	st.Found, st.Prev = true, c.State
	prev := c
	if money.Settle(&c, o, now) {
		st.Changed = true
		if defect.On(defect.ChargeStepApart) { // the charge left to a write of its own, which a crash may never make
			st.Charge = c
			return st, nil
		}
		if err := t.putChargeOver(&c, &prev); err != nil {
			return st, err
		}
	}
	st.Charge = c
	return st, nil
}

// settleRefund moves the refund an order's step is about.
func (t *Tx) settleRefund(o *money.Order, now time.Time, st *money.Settled) error {
	r, ok, err := t.Refund(o.RefundID)
	if err != nil || !ok {
		return nil // a refund an older posd started has no record of its own
	}
	changed, done := money.SettleRefund(&r, o, now)
	if changed {
		if err := t.putRefund(&r); err != nil {
			return err
		}
	}
	st.Refund, st.RefundDone = &r, done
	return nil
}

// Refund reads a refund by its mch_refund_id.
func (t *Tx) Refund(mchRefundID string) (money.Refund, bool, error) {
	var r money.Refund
	ok, err := t.get(refundBucket, mchRefundID, &r)
	return r, ok, err
}

// RefundsOf lists a charge's refunds, oldest first.
func (t *Tx) RefundsOf(c *money.Charge) ([]money.Refund, error) {
	out := make([]money.Refund, 0, len(c.Refunds))
	for _, id := range c.Refunds {
		r, ok, err := t.Refund(id)
		if err != nil {
			return out, err
		}
		if ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// RecordRefund records a refund asked for, before it is sent, and names it
// on its charge.
func (t *Tx) RecordRefund(r *money.Refund) error {
	c, ok, err := t.Charge(r.ChargeID)
	if err != nil {
		return err
	}
	if err := t.putRefund(r); err != nil {
		return err
	}
	if !ok {
		return nil
	}
	prev := c
	c.Refunds = append(slices.Clip(c.Refunds), r.MchRefundID)
	return t.putChargeOver(&c, &prev)
}

func (t *Tx) putRefund(r *money.Refund) error {
	prev, _, _ := t.Refund(r.MchRefundID)
	r.Version = max(r.Version, prev.Version, t.floor) + 1
	if err := t.addOutbox("refund", r.MchRefundID, r.Lane, r.Version, nil); err != nil {
		return err
	}
	return t.put(refundBucket, r.MchRefundID, r)
}

// UpdateCharge changes a charge as it is stored: fn sees the committed
// charge, not a copy that may be behind a step, and returns false to leave
// it as it is. It returns the charge as it is now.
func (t *Tx) UpdateCharge(id string, fn func(*money.Charge) bool) (money.Charge, bool, error) {
	c, ok, err := t.Charge(id)
	if err != nil || !ok {
		return c, ok, err
	}
	prev := c
	if fn(&c) {
		err = t.putChargeOver(&c, &prev)
	}
	return c, true, err
}

// EachLiveOrder calls fn with every unfinished order, from the live index.
func (t *Tx) EachLiveOrder(fn func(money.Order) error) error {
	return t.forEachLive(orderBucket, func(_ string, v []byte) error { return decodeTo(v, fn) })
}

// EachLiveCharge calls fn with every charge that is open or needs
// attention, from the live index.
func (t *Tx) EachLiveCharge(fn func(money.Charge) error) error {
	return t.forEachLive(chargeBucket, func(_ string, v []byte) error { return decodeTo(v, fn) })
}

// EachRefund calls fn with every refund the journal holds.
func (t *Tx) EachRefund(fn func(money.Refund) error) error {
	return t.forEach(refundBucket, func(_ string, v []byte) error { return decodeTo(v, fn) })
}

// EachOrder calls fn with every order the journal holds, in id order: the
// whole history (export, reports, a restored journal).
func (t *Tx) EachOrder(fn func(money.Order) error) error {
	return t.forEach(orderBucket, func(_ string, v []byte) error { return decodeTo(v, fn) })
}

func decodeTo[T any](v []byte, fn func(T) error) error {
	var r T
	if err := json.Unmarshal(v, &r); err != nil {
		return err
	}
	return fn(r)
}

func (t *Tx) putOrder(o *money.Order) error {
	var old entries
	prev, found, err := t.Order(o.MchTradeID)
	if found && err == nil { // unreadable: its version and entries are lost, not the write
		old = orderEntries(o.MchTradeID, &prev)
	}
	o.Version = max(o.Version, prev.Version, t.floor) + 1
	return t.putRecord(orderBucket, o.MchTradeID, o, old, orderEntries(o.MchTradeID, o), !o.Active(), o.Lane, o.Version)
}

// putCharge stores a charge over what is stored; putChargeOver over prev,
// the stored charge the caller has already read.
func (t *Tx) putCharge(c *money.Charge) error {
	prev, found, err := t.Charge(c.ID)
	if !found && c.Lane != "" {
		if err := t.putString(refBucket, lastKey(c.Lane), c.ID); err != nil {
			return err
		}
	}
	if !found || err != nil {
		return t.putChargeOver(c, nil) // unreadable: its entries are lost, not the write
	}
	return t.putChargeOver(c, &prev)
}

// putChargeOver: prev is nil when nothing (readable) is stored.
func (t *Tx) putChargeOver(c, prev *money.Charge) error {
	var old entries
	if prev != nil {
		old = chargeEntries(c.ID, prev)
	} else {
		prev = &money.Charge{}
	}
	c.Version = max(c.Version, prev.Version, t.floor) + 1
	return t.putRecord(chargeBucket, c.ID, c, old, chargeEntries(c.ID, c), !c.Open(), c.Lane, c.Version)
}

// freeCode forgets that order id used a code, if it did.
func (t *Tx) freeCode(hash, id string) error {
	if by, ok := t.getString(codeBucket, hash); ok && by == id {
		return t.remove(codeBucket, hash)
	}
	return nil
}

// The printers' durable queue: a receipt stays until it is printed.

func receiptKey(printer, id string) string { return printer + "\x00" + id }

// PutReceipt queues a receipt (any JSON value) for a printer.
func (t *Tx) PutReceipt(printer, id string, r any) error {
	return t.put(receiptBucket, receiptKey(printer, id), r)
}

// EachReceipt calls fn with the JSON of every receipt queued for printer.
func (t *Tx) EachReceipt(printer string, fn func(v []byte) error) error {
	return t.forEachPrefix(receiptBucket, printer+"\x00", func(_ string, v []byte) error { return fn(v) })
}

// DeleteReceipt takes a printed receipt off the queue.
func (t *Tx) DeleteReceipt(printer, id string) error {
	return t.remove(receiptBucket, receiptKey(printer, id))
}

// Probe writes a transaction that changes nothing the house reads: after a
// write failure, it tells whether the journal can be written again.
func (j *Journal) Probe() error {
	return j.Update(func(tx *Tx) error { return tx.putString(meta, "probe", time.Now().UTC().Format(time.RFC3339Nano)) })
}

// ReconcileRun reads the reconciliation of a day (YYYY-MM-DD).
func (t *Tx) ReconcileRun(date string) (money.ReconcileRun, bool, error) {
	var r money.ReconcileRun
	ok, err := t.get(reconBucket, date, &r)
	return r, ok, err
}

// PutReconcileRun records a reconciliation's progress: a run that stops
// (posd restarted) resumes from it.
func (t *Tx) PutReconcileRun(r *money.ReconcileRun) error { return t.put(reconBucket, r.Date, r) }

// EachReconcileRun calls fn with every day's reconciliation, by date.
func (t *Tx) EachReconcileRun(fn func(money.ReconcileRun) error) error {
	return t.forEach(reconBucket, func(_ string, v []byte) error { return decodeTo(v, fn) })
}
