package sim

import (
	"fmt"
	"strings"
	"time"

	"example.com/posd/display"
	"example.com/posd/internal/journal"
	"example.com/posd/internal/money"
)

// The money rules, checked after every event. The gateway model checks
// the ones it sees first-hand as the calls arrive: a pay is never sent
// twice, an id never names two orders, a code never goes out under two
// ids, no refund exceeds what was paid and none happens twice.

// check runs the rules on what changed since the last event.
func (w *world) check() {
	w.drain()
	w.chMu.Lock()
	ids := make([]string, 0, len(w.changed))
	for id := range w.changed {
		ids = append(ids, id)
	}
	clear(w.changed)
	w.chMu.Unlock()
	// A payment the till stopped ends canceled, or paid if it completed
	// first: never open for another scan.
	for id := range w.aborted {
		v, err := w.posd.svc.Get(id)
		if err != nil {
			continue
		}
		switch v.Charge.State {
		case money.AwaitingScan:
			w.violate("charge %s was stopped by the till while paying, and is open for a new scan", id)
		case money.Canceled, money.Paid, money.Refunded, money.PartiallyRefunded:
			delete(w.aborted, id)
		}
	}
	p := w.posd
	_ = p.j.View(func(tx *journal.Tx) error {
		for _, id := range ids {
			if o, ok, _ := tx.Order(id); ok {
				w.checkOrder(&o)
				w.checkCharge(tx, &o)
				w.checkRefunds(tx, &o)
			}
		}
		return nil
	})
	w.publish()
	w.tick()
}

// checkAll runs the rules on every order the journal holds.
func (w *world) checkAll() {
	_ = w.posd.j.View(func(tx *journal.Tx) error {
		return tx.EachOrder(func(o money.Order) error {
			w.checkOrder(&o)
			w.checkCharge(tx, &o)
			w.checkRefunds(tx, &o)
			return nil
		})
	})
}

// checkCharge: in the journal, at every moment, a charge agrees with its
// latest attempt — the rule that moves one with the other (money.Settle)
// has nothing left to do — so that no crash leaves a charge saying other
// than its payment.
func (w *world) checkCharge(tx *journal.Tx, o *money.Order) {
	c, ok, _ := tx.Charge(o.ChargeID)
	if !ok || len(c.AttemptIDs) == 0 || c.AttemptIDs[len(c.AttemptIDs)-1] != o.MchTradeID {
		return
	}
	w.report.Checks++
	before := c.State
	if money.Settle(&c, o, time.Now()) {
		w.violate("charge %s is %s in the journal while its attempt %s is %s/%s (it should be %s)", c.ID, before, o.MchTradeID, o.State, o.Phase, c.State)
	}
}

// checkOrder holds what posd says of an order against the ledger.
func (w *world) checkOrder(o *money.Order) {
	w.report.Checks++
	if !o.Final() || o.Phase == money.PhaseRefund || o.Phase == money.PhaseRefundQuery {
		return // still being confirmed: posd claims nothing yet
	}
	w.gw.mu.Lock()
	lo := w.gw.orders[o.MchTradeID]
	var l ledgerOrder
	var unseen int64
	if lo != nil {
		l, unseen = *lo, w.unseen(o, lo)
	}
	w.gw.mu.Unlock()
	ours := lo != nil && l.CodeHash == o.CodeSHA256
	id := o.MchTradeID
	switch o.State {
	case money.Paid:
		switch {
		case !ours:
			w.violate("posd says %s paid; the gateway has no such payment for this code", id)
		case o.TotalFee-o.RefundedFee < l.Charged || o.TotalFee-o.RefundedFee > l.Charged+unseen:
			// posd's refunded_fee is the gateway's, or the order needs
			// attention (it is not final then).
			w.violate("posd says %s paid %d fen (%d refunded; its refunds %v, the last %s, %q); the ledger holds %d charged (state %d, refunded %d under %v, %d of it under ids posd cannot know of)",
				id, o.TotalFee, o.RefundedFee, o.Refunds, o.RefundResult, o.ErrMsg, l.Charged, l.State, l.Refunded, l.refunds, unseen)
		}
	case money.Refunded:
		if !ours || !l.WasPaid || l.Charged != 0 {
			w.violate("posd says %s refunded; the ledger: %+v", id, l)
		}
	case money.Reversed, money.Closed, money.Declined:
		if ours && l.Charged != 0 {
			w.violate("posd says %s %s; the ledger holds %d fen charged", id, o.State, l.Charged)
		}
	case money.Failed:
		if ours {
			w.violate("posd says nothing was created for %s; the gateway has it (state %d, charged %d)", id, l.State, l.Charged)
		}
	}
}

// subDepth holds every event one step can show: the queue is read after
// every step, and one that overflows is a violation, not a silent gap.
const subDepth = 256

// drain reads what the lanes' customer displays were sent and holds each
// result against the till and the ledger.
func (w *world) drain() {
	p := w.posd
	for _, lane := range lanes {
		s := p.subs[lane]
		for {
			var e display.Event
			select {
			case e = <-s.C():
			default:
			}
			if e.Lane == "" {
				break
			}
			w.checkShown(lane, e)
		}
		if n := s.Dropped(); n > 0 {
			w.violate("lane %s's display queue dropped %d events between two checks: the simulation no longer sees all it shows (raise subDepth)", lane, n)
		}
	}
}

// checkShown: a customer display (pole, web, printer) shows "paid" only
// for the lane's current charge, and only when the ledger has it paid.
func (w *world) checkShown(lane string, e display.Event) {
	if e.Kind == display.LateResult {
		w.log(fmt.Sprintf("till hears: %s", e.Reason))
	}
	if !e.ForCustomer() || e.Kind != display.Paid {
		return
	}
	w.report.Checks++
	if cur := w.current[lane]; e.ChargeID != cur {
		w.violate("lane %s's customer display shows charge %s paid while the lane's charge is %q", lane, e.ChargeID, cur)
	}
	var o money.Order
	_ = w.posd.j.View(func(tx *journal.Tx) error { o, _, _ = tx.Order(e.MchTradeID); return nil })
	w.gw.mu.Lock()
	lo := w.gw.orders[e.MchTradeID]
	paid := lo != nil && lo.Charged+w.unseen(&o, lo) > 0 // refunded since, unseen: the payment was made
	w.gw.mu.Unlock()
	if !paid {
		w.violate("lane %s's customer display shows %s paid; the gateway never charged it", lane, e.MchTradeID)
	}
}

// checkOutbox: the outbox and what the head office acknowledged (publish)
// hold every change of every order, charge and refund: for each record,
// an entry with the version the journal holds (nothing that happened is
// lost), and none with a higher one (nothing is published that did not
// happen: a crash took the entry with its transaction). Entries of one
// record come in the order of their versions.
func (w *world) checkOutbox() {
	p := w.posd
	type key struct{ kind, id string }
	last := map[key]uint64{}
	_ = p.j.View(func(tx *journal.Tx) error {
		var after uint64
		for {
			es, err := tx.OutboxAfter(after, 1000)
			if err != nil || len(es) == 0 {
				return err
			}
			for _, e := range es {
				k := key{e.Kind, e.ID}
				if e.Kind != "device" && e.Version <= last[k] {
					w.violate("outbox: %s %s version %d after version %d", e.Kind, e.ID, e.Version, last[k])
				}
				last[k] = max(last[k], e.Version)
				after = e.Seq
			}
		}
	})
	for k, r := range w.pub.recs {
		kind, id, _ := strings.Cut(k, "/")
		last[key{kind, id}] = max(last[key{kind, id}], r.version)
	}
	w.report.Checks++
	_ = p.j.View(func(tx *journal.Tx) error {
		return tx.EachOrder(func(o money.Order) error {
			if v := last[key{"order", o.MchTradeID}]; v != o.Version {
				w.violate("outbox: order %s is version %d in the journal, %d in the outbox", o.MchTradeID, o.Version, v)
			}
			if c, ok, _ := tx.Charge(o.ChargeID); ok {
				if v := last[key{"charge", c.ID}]; v != c.Version {
					w.violate("outbox: charge %s is version %d in the journal, %d in the outbox", c.ID, c.Version, v)
				}
			}
			return nil
		})
	})
}
