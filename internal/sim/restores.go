package sim

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"example.com/posd/internal/clock"
	"example.com/posd/internal/journal"
	"example.com/posd/internal/lane"
	"example.com/posd/internal/money"
	"example.com/posd/internal/reconcile"
	"example.com/posd/payment"
	"example.com/posd/poller"
)

// What a restore brings back, and the refunds a till remembers across it.

// witnessPath is the journal's witness away from its folder (the cache
// directory on a box).
func (w *world) witnessPath() string { return filepath.Join(w.cfg.Dir, "cache", "journal.witness") }

// backup copies the journal and the witness beside it, as a backup of the
// state folder does.
func (w *world) backup() {
	path := filepath.Join(w.cfg.Dir, fmt.Sprintf("backup-%d.db", len(w.backups)))
	// What the head office holds before the copy: the copy holds the rest
	// in its outbox.
	w.publish()
	pub := w.pub.clone()
	if err := w.posd.j.Backup(path); err != nil {
		return
	}
	if b, err := os.ReadFile(w.journalPath() + ".seen"); err == nil {
		_ = os.WriteFile(path+".seen", b, 0o600)
	}
	w.backups = append(w.backups, path)
	w.backupPubs[path] = pub
	w.backupDigests[path] = w.orderDigest()
	w.log("backup " + filepath.Base(path))
}

// orderDigest sums up every order's id and version.
func (w *world) orderDigest() string {
	h := sha256.New()
	_ = w.posd.j.View(func(tx *journal.Tx) error {
		return tx.EachOrder(func(o money.Order) error {
			fmt.Fprintf(h, "%s %d\n", o.MchTradeID, o.Version)
			return nil
		})
	})
	return string(h.Sum(nil))
}

// How an older journal comes back.
var restoreKinds = []string{
	"the journal file put back in place",
	"the whole state folder put back (its witness with it)",
	"the journal alone on a new disk (no witness anywhere)",
}

// restore replaces the journal with an older copy, as an operator
// restoring a backup (or cloning a box) would. While the box was away,
// the merchant's back office may have refunded some payments.
func (w *world) restore(path string) {
	kind := w.rng.IntN(len(restoreKinds))
	w.log(fmt.Sprintf("RESTORE from %s: %s", filepath.Base(path), restoreKinds[kind]))
	w.report.Restores++
	// The back office can have refunded payments while the box was away.
	// A copy whose orders are the journal's lost nothing, and posd has no
	// reason to ask again (a reconciliation would tell).
	lost := kind == 2 || w.orderDigest() != w.backupDigests[path]
	w.crash()
	copyFile := func(from, to string) {
		b, err := os.ReadFile(from)
		if err != nil {
			panic(err)
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			panic(err)
		}
	}
	copyFile(path, w.journalPath())
	switch kind {
	case 1:
		if _, err := os.Stat(path + ".seen"); err == nil {
			copyFile(path+".seen", w.journalPath()+".seen")
		}
	case 2:
		_ = os.Remove(w.journalPath() + ".seen")
		_ = os.Remove(w.witnessPath())
	}
	if lost && w.rng.IntN(3) == 0 {
		w.backOffice()
	}
	w.gw.mu.Lock()
	w.gw.generation++ // codes shown before are the old lineage's
	w.gw.mu.Unlock()
	w.codes = nil
	clear(w.aborted) // the restored journal never heard of those stops
	w.pub = w.backupPubs[path].clone()
	w.restoring = true
	w.boot()
	w.restoring = false
}

// backOffice refunds some paid orders in the aggregator's back office,
// under ids posd never made: in part or in full.
func (w *world) backOffice() {
	w.gw.mu.Lock()
	defer w.gw.mu.Unlock()
	var paid []string
	for id, o := range w.gw.orders {
		if o.Charged > 0 {
			paid = append(paid, id)
		}
	}
	slices.Sort(paid)
	for range min(len(paid), 1+w.rng.IntN(3)) {
		o := w.gw.orders[paid[w.rng.IntN(len(paid))]]
		if o.Charged == 0 {
			continue
		}
		fee := o.Charged
		if w.rng.IntN(2) == 0 && fee > 1 {
			fee = 1 + w.rng.Int64N(fee-1)
		}
		w.log(w.gw.backOfficeRefund(o, fee))
	}
}

// backOfficeRefund refunds fee of o under an id posd never made.
func (g *Gateway) backOfficeRefund(o *ledgerOrder, fee int64) string {
	g.seq++
	rid := fmt.Sprintf("BO%08d", g.seq)
	g.refunds[rid] = &ledgerRefund{ID: rid, Order: o.ID, RefundID: rid, Fee: fee}
	o.refunds = append(o.refunds, rid)
	o.Charged -= fee
	o.Refunded += fee
	o.State, o.refundedByRefund = payment.StateRefunding, true
	return fmt.Sprintf("BACK OFFICE refunds %d of %s's %d fen", fee, o.ID, o.TotalFee)
}

// tillRefund is one refund as the till knows it: its charge, its id for
// it, the amount, and the mch_refund_id posd gave it.
type tillRefund struct {
	charge, id string
	fee        int64
	mch        string
}

// refund is the till refunding a paid charge — part of it under an id of
// its own, or all that is left — or asking again for a refund it asked
// for before (a retry after a crash, a timeout, a restore).
func (w *world) refund() {
	p := w.posd
	if len(w.tillRefunds) > 0 && w.rng.IntN(4) == 0 {
		tr := w.tillRefunds[w.rng.IntN(len(w.tillRefunds))]
		r, made, err := p.svc.RefundCharge(tr.charge, lane.RefundRequest{RefundFee: tr.fee, RefundID: tr.id, Rest: tr.id == ""})
		w.log(fmt.Sprintf("refund %s again (%q, %d fen): %s %s %v", tr.charge, tr.id, tr.fee, r.MchRefundID, r.State, err))
		w.refundMade(r, made, err)
		w.heard(tr, r, err)
		return
	}
	if len(w.charges) == 0 {
		return
	}
	id := w.charges[w.rng.IntN(len(w.charges))]
	v, err := p.svc.Get(id)
	if err != nil || (v.Charge.State != money.Paid && v.Charge.State != money.PartiallyRefunded) {
		return
	}
	left := v.Charge.TotalFee - v.Charge.RefundedFee
	tr := tillRefund{charge: id}
	if w.rng.IntN(2) == 1 && left >= 2 {
		// Returning one item: part of what is left, under the till's own id.
		w.seq++
		tr.id, tr.fee = fmt.Sprintf("T%d", w.seq), 1+w.rng.Int64N(left-1)
	}
	r, made, err := p.svc.RefundCharge(id, lane.RefundRequest{RefundFee: tr.fee, RefundID: tr.id, Rest: tr.id == ""})
	w.log(fmt.Sprintf("refund %s %q %d of %d fen left: %s %v", id, tr.id, tr.fee, left, r.MchRefundID, err))
	w.refundMade(r, made, err)
	if err == nil {
		tr.fee = r.RefundFee
		w.tillRefunds = append(w.tillRefunds, tr)
	}
	w.heard(tr, r, err)
}

// refundMade: a refund posd starts belongs to a payment dated no later
// than its wall clock: one dated in the future (a clock that ran ahead
// wrote it) cannot be judged against the gateway's refund window.
func (w *world) refundMade(r money.Refund, made bool, err error) {
	if err != nil || !made {
		return
	}
	var o money.Order
	_ = w.posd.j.View(func(tx *journal.Tx) error { o, _, _ = tx.Order(r.MchTradeID); return nil })
	w.report.Checks++
	if w.future(o.CreatedAt) {
		w.violate("refund %s of %s started, though the payment is dated %s, later than the wall clock (%s) by more than %s",
			r.MchRefundID, r.MchTradeID, o.CreatedAt.Format(time.RFC3339), w.wall().Format(time.RFC3339), clock.Tolerance)
	}
}

// heard holds posd's answer to a till's refund: the same till refund
// always goes out under the same mch_refund_id, and two never share one
// (the gateway would take the second for the first, and no money moves).
func (w *world) heard(tr tillRefund, r money.Refund, err error) {
	if err != nil || r.MchRefundID == "" {
		return
	}
	// A till refund is one of a payment: after a restore that lost the
	// payment, the charge may be paid again by another attempt.
	key := r.MchTradeID + "/" + tr.id
	if prev, ok := w.refundIDs[key]; ok && prev != r.MchRefundID {
		w.violate("the till's refund %q of %s (%s) went out as %s, and now as %s", tr.id, tr.charge, r.MchTradeID, prev, r.MchRefundID)
	}
	if prev, ok := w.refundOf[r.MchRefundID]; ok && prev != key {
		w.violate("mch_refund_id %s names two of the till's refunds: %s and %s", r.MchRefundID, prev, key)
	}
	w.refundIDs[key], w.refundOf[r.MchRefundID] = r.MchRefundID, key
	for i := range w.tillRefunds {
		if w.tillRefunds[i].charge == tr.charge && w.tillRefunds[i].id == tr.id {
			w.tillRefunds[i].mch = r.MchRefundID
		}
	}
}

// checkRefunds: a refund posd reports refunded is one the gateway made,
// of that order and that amount.
func (w *world) checkRefunds(tx *journal.Tx, o *money.Order) {
	c, ok, _ := tx.Charge(o.ChargeID)
	if !ok {
		return
	}
	refunds, _ := tx.RefundsOf(&c)
	w.gw.mu.Lock()
	defer w.gw.mu.Unlock()
	for _, r := range refunds {
		if r.State != money.Refunded {
			continue
		}
		w.report.Checks++
		if lr := w.gw.refunds[r.MchRefundID]; lr == nil || lr.Order != r.MchTradeID || lr.Fee != r.RefundFee {
			w.violate("posd reports refund %s of %s refunded, %d fen; the gateway: %+v", r.MchRefundID, r.MchTradeID, r.RefundFee, lr)
		}
	}
}

// unseen is what the gateway refunded of an order under ids posd does not
// know, when the gateway keeps trade_state 0 after a refund: nothing
// shows posd those refunds (a till's retry would), so its figure may
// lack them (and never exceed the gateway's). On a gateway that shows
// trade_state 1 there is no excuse.
func (w *world) unseen(o *money.Order, l *ledgerOrder) int64 {
	if !w.gw.keepsTS0 {
		return 0
	}
	known := poller.KnownRefunds(o)
	var fee int64
	for _, id := range l.refunds {
		if rf := w.gw.refunds[id]; rf != nil && !slices.Contains(known, id) {
			fee += rf.Fee
		}
	}
	return fee
}

// startReconcile starts the reconciliation of today's orders, as the back
// office does, slowly: refunds go on meanwhile.
func (w *world) startReconcile() {
	p := w.posd
	if p.recon == nil {
		p.recon = &reconcile.Reconciler{Ctx: p.ctx, Journal: p.j, Gateway: p.client, Rate: 1, Log: w.zlog,
			Reopen:     func(id, why string) error { _, err := p.pol.Reopen(id, why, time.Now()); return err },
			OnDisagree: func(d money.Disagreement) { w.disagreed(d) }}
	}
	run, err := p.recon.Start(time.Now())
	w.log(fmt.Sprintf("reconciliation of %s: %s, %d checked, %v", run.Date, run.State, run.Checked, err))
	if err == nil {
		w.refund() // a till's refund while the run goes on: compared as the journal has it then
	}
}

// disagreed: a reconciliation says the gateway refunded an order the
// journal does not show refunded only when the gateway holds a refund of
// it the journal does not know.
func (w *world) disagreed(d money.Disagreement) {
	w.log(fmt.Sprintf("reconciliation: %s %s", d.MchTradeID, d.What))
	if d.What != "refunded at the gateway, not in the journal" {
		return
	}
	var o money.Order
	_ = w.posd.j.View(func(tx *journal.Tx) error { o, _, _ = tx.Order(d.MchTradeID); return nil })
	known := poller.KnownRefunds(&o)
	w.gw.mu.Lock()
	defer w.gw.mu.Unlock()
	w.report.Checks++
	if lo := w.gw.orders[d.MchTradeID]; lo != nil && !slices.ContainsFunc(lo.refunds, func(id string) bool { return !slices.Contains(known, id) }) {
		w.violate("a reconciliation lists %s as %q, though the journal knows every refund the gateway made of it (%v)", d.MchTradeID, d.What, lo.refunds)
	}
}
