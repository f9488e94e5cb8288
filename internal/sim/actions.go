package sim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"example.com/posd/display"
	"example.com/posd/internal/clock"
	"example.com/posd/internal/journal"
	"example.com/posd/internal/lane"
	"example.com/posd/internal/money"
	"example.com/posd/internal/reconcile"
	"example.com/posd/payment"
	"example.com/posd/poller"
	"example.com/posd/scanner"
)

// act does one random thing.
func (w *world) act() {
	p := w.posd
	r := w.rng.IntN(1000)
	switch {
	case r < 150:
		w.open(w.lane())
	case r < 400:
		w.scan(w.lane(), w.newCode())
	case r < 450:
		if len(w.codes) > 0 {
			w.scan(w.lane(), w.codes[w.rng.IntN(len(w.codes))])
		}
	case r < 490:
		// Cancel the lane's charge: an open one, or one being paid (the
		// till stops the payment: canceled, or paid if it completed first).
		l := w.lane()
		if lv, _ := p.svc.Lane(l); lv.Charge != nil {
			c := lv.Charge.Charge
			v, err := p.svc.Cancel(c.ID)
			w.log(fmt.Sprintf("cancel %s %s (%s): %s %v", l, c.ID, c.State, v.Charge.State, err))
			if err == nil && c.State == money.Paying {
				w.aborted[c.ID] = true
			}
		}
	case r < 540:
		w.refund()
	case r < 580:
		w.resolve()
	case r < 588:
		w.reconcile()
	case r < 594:
		w.startReconcile()
	case r < 605:
		if len(w.charges) > 0 {
			id := w.charges[w.rng.IntN(len(w.charges))]
			_, err := p.svc.Reprint(id)
			w.log(fmt.Sprintf("reprint %s: %v", id, err))
		}
	case r < 612:
		// SIGHUP: the lanes not in use take their (same) settings, the key is set again.
		p.client.SetKey(merchantKy)
		w.log(fmt.Sprintf("reload: busy lanes %v", p.svc.UpdateLanes(w.laneConfigs())))
	case r < 625:
		w.log("CRASH and restart")
		w.report.Crashes++
		w.crash()
		w.boot()
	case r < 635:
		w.backup()
	case r < 640:
		if len(w.backups) > 0 {
			w.restore(w.backups[w.rng.IntN(len(w.backups))])
		}
	case r < 670:
		w.gw.mu.Lock()
		w.gw.faulty = !w.gw.faulty
		w.log(fmt.Sprintf("gateway faults %v", w.gw.faulty))
		w.gw.mu.Unlock()
	case r < 690:
		w.gw.mu.Lock()
		w.gw.linkDown = !w.gw.linkDown
		w.log(fmt.Sprintf("link down %v", w.gw.linkDown))
		w.gw.mu.Unlock()
	case r < 698:
		w.jump()
	case r < 706:
		w.prune("now and then")
	case r < 716:
		w.retryKey()
	default:
		d := time.Duration(w.rng.IntN(20_000)) * time.Millisecond
		time.Sleep(d)
	}
}

func (w *world) lane() string { return lanes[w.rng.IntN(len(lanes))] }

func (w *world) laneConfigs() []lane.Config {
	var lcs []lane.Config
	for i, l := range lanes {
		lcs = append(lcs, lane.Config{ID: l, DeviceInfo: fmt.Sprintf("POS%d", i+1), ChargeTTL: 10 * time.Minute})
	}
	return lcs
}

func (w *world) newCode() string {
	prefix := "28"
	if w.rng.IntN(2) == 0 {
		prefix = "13"
	}
	return fmt.Sprintf("%s%016d", prefix, w.rng.Uint64()%10_000_000_000_000_000)
}

func (w *world) open(laneID string) {
	p := w.posd
	req := lane.OpenRequest{Lane: laneID, TotalFee: fees[w.rng.IntN(len(fees))], Subject: "goods", Body: "sim"}
	valid := true
	switch w.rng.IntN(20) {
	case 0:
		req.Subject, valid = "", false
	case 1:
		req.Body, valid = "", false
	case 2:
		req.TotalFee, valid = 0, false
	}
	prev := w.sale(&req, valid)
	if valid && req.Reference == "" && w.rng.IntN(8) == 0 {
		w.seq++
		req.IdempotencyKey = fmt.Sprintf("K%d", w.seq)
	}
	before, _ := p.svc.Lane(laneID)
	v, created, err := p.svc.Open(req)
	w.log(fmt.Sprintf("open %s ¥%s valid=%v ref=%q key=%q -> %s created=%v %v", laneID, display.Yuan(req.TotalFee), valid, req.Reference, req.IdempotencyKey, v.Charge.ID, created, err))
	w.answered(req, v, created, err)
	if err == nil && prev.ID != "" {
		w.report.Checks++
		switch prev.State {
		case money.Canceled:
			if !created || v.Charge.ID == prev.ID {
				w.violate("sale %q of lane %s: its charge %s ended canceled, and opening it again answered that charge", req.Reference, laneID, prev.ID)
			}
		case money.Paid, money.PartiallyRefunded, money.Refunded:
			// A charge dated in the future binds nothing (the wall clock
			// is behind now, or was ahead when it was dated); nor one the
			// reference window left behind. A window is judged by the wall
			// clock that dated it: one that ran ahead since, or was behind
			// then, closes it early (counted apart, never answered with
			// another sale's charge).
			age := time.Since(w.created[prev.ID])
			if (created || v.Charge.ID != prev.ID) && !w.future(prev.CreatedAt) && age <= lane.DefaultReferenceWindow &&
				!(w.wall().Sub(prev.CreatedAt) > lane.DefaultReferenceWindow && w.backdated(fmt.Sprintf("sale %q of lane %s, paid %s ago (charge %s, dated %s), opened again made charge %s: the wall clock, %s off, closed its window early",
					req.Reference, laneID, age.Round(time.Second), prev.ID, prev.CreatedAt.Format(time.RFC3339), v.Charge.ID, time.Duration(w.offset.Load())))) {
				w.violate("sale %q of lane %s was paid (charge %s, dated %s, opened %s ago), and opening it again made charge %s (wall clock %s off)",
					req.Reference, laneID, prev.ID, prev.CreatedAt.Format(time.RFC3339), time.Since(w.created[prev.ID]).Round(time.Second), v.Charge.ID, time.Duration(w.offset.Load()))
			}
		}
	}
	if err == nil {
		if created {
			w.opened(req, v.Charge.ID)
		}
		return
	}
	inService, _ := p.svc.InService()
	// A wall clock before 2020 refuses every payment, rightly.
	if valid && before.Charge == nil && inService && w.wall().Year() >= 2020 {
		w.violate("lane %s has no charge in flight but refused a valid new charge: %v", laneID, err)
	}
}

// opened records a charge the till opened.
func (w *world) opened(req lane.OpenRequest, id string) {
	w.current[req.Lane] = id
	w.charges = append(w.charges, id)
	w.created[id] = time.Now()
	if req.Reference != "" {
		w.sales[req.Lane+"/"+req.Reference] = id
		w.saleOf[id] = req.Lane + "/" + req.Reference
	}
	if req.IdempotencyKey != "" {
		if _, ok := w.keys[req.IdempotencyKey]; !ok {
			w.keyList = append(w.keyList, req.IdempotencyKey)
		}
		req.Reference = id // the key's last charge
		w.keys[req.IdempotencyKey] = req
		w.keyOf[id] = req.IdempotencyKey
	}
}

// future says whether a record dated t is from the future by posd's wall
// clock now.
func (w *world) future(t time.Time) bool { return t.After(w.wall().Add(clock.Tolerance)) }

// answered holds an open that gave back an existing charge against the
// sale or the key it was asked for: never a charge dated in the future
// (a clock that ran ahead wrote it: another sale), never another sale's or
// another key's charge.
func (w *world) answered(req lane.OpenRequest, v lane.View, created bool, err error) {
	if err != nil || created {
		return
	}
	c := v.Charge
	w.report.Checks++
	if w.future(c.CreatedAt) {
		w.violate("lane %s's open (reference %q, key %q) answered with charge %s, dated %s: later than the wall clock (%s) by more than %s",
			req.Lane, req.Reference, req.IdempotencyKey, c.ID, c.CreatedAt.Format(time.RFC3339), w.wall().Format(time.RFC3339), clock.Tolerance)
	}
	switch {
	case req.IdempotencyKey != "":
		if k := w.keyOf[c.ID]; k != req.IdempotencyKey {
			w.violate("lane %s's open with Idempotency-Key %q answered with charge %s, opened with key %q", req.Lane, req.IdempotencyKey, c.ID, k)
		}
	case req.Reference != "":
		if s := w.saleOf[c.ID]; s != req.Lane+"/"+req.Reference {
			w.violate("sale %q of lane %s answered with charge %s, opened for sale %q", req.Reference, req.Lane, c.ID, s)
		}
	}
}

// retryKey is the till opening again, with its Idempotency-Key, a charge
// whose reply it lost: it gets that charge back, unless posd no longer
// has it or it is dated in the future (a clock that ran ahead wrote it).
func (w *world) retryKey() {
	if len(w.keyList) == 0 {
		return
	}
	key := w.keyList[w.rng.IntN(len(w.keyList))]
	k := w.keys[key]
	last := k.Reference
	req := k
	req.Reference = ""
	prev, perr := w.posd.svc.Get(last)
	v, created, err := w.posd.svc.Open(req)
	w.log(fmt.Sprintf("open %s again with key %q (its charge %s) -> %s created=%v %v", req.Lane, key, last, v.Charge.ID, created, err))
	w.answered(req, v, created, err)
	if err != nil {
		return
	}
	if created {
		w.opened(req, v.Charge.ID)
		w.report.Checks++
		if perr == nil && !w.future(prev.Charge.CreatedAt) {
			w.violate("Idempotency-Key %q opened charge %s, though its charge %s (dated %s) is still in the journal", key, v.Charge.ID, last, prev.Charge.CreatedAt.Format(time.RFC3339))
		}
	}
}

// sale gives now and then the till's own sale id to a valid open: a new
// one, or one opened before on the lane (the till opening its sale again).
// It returns the charge the sale had, as the journal holds it.
func (w *world) sale(req *lane.OpenRequest, valid bool) money.Charge {
	if !valid || w.rng.IntN(4) != 0 {
		return money.Charge{}
	}
	var known []string
	for k := range w.sales {
		if strings.HasPrefix(k, req.Lane+"/") {
			known = append(known, k)
		}
	}
	slices.Sort(known)
	if len(known) == 0 || w.rng.IntN(2) == 0 {
		w.seq++
		req.Reference = fmt.Sprintf("SALE%d", w.seq)
		return money.Charge{}
	}
	k := known[w.rng.IntN(len(known))]
	prev := w.sales[k]
	v, err := w.posd.svc.Get(prev)
	if err != nil {
		return money.Charge{} // a restored journal that never saw it, or pruned
	}
	req.Reference, req.TotalFee = strings.TrimPrefix(k, req.Lane+"/"), v.Charge.TotalFee
	return v.Charge
}

func (w *world) scan(laneID, code string) {
	p := w.posd
	err := p.svc.Scan(laneID, scanner.Scan{Code: code, Source: "sim"})
	w.log(fmt.Sprintf("scan %s …%s: %v", laneID, code[len(code)-4:], err))
	if err == nil {
		w.codes = append(w.codes, code)
		if len(w.codes) > 50 {
			w.codes = w.codes[1:]
		}
		return
	}
	if errors.Is(err, lane.ErrCodeUsed) {
		h := payment.CodeHash(code)
		w.gw.mu.Lock()
		written := w.gw.written[h]
		w.gw.mu.Unlock()
		if !written && !w.inFlight[h] {
			w.violate("code …%s refused as used, but its pay never left the box (a burned code)", code[len(code)-4:])
		}
	}
}

// resolve is an operator: honest, deciding from what the gateway shows,
// but not always waiting for posd to ask.
func (w *world) resolve() {
	p := w.posd
	pick := w.pickOrder(func(o *money.Order) bool { return !o.Final() })
	if pick == nil {
		return
	}
	w.gw.mu.Lock()
	lo := w.gw.orders[pick.MchTradeID]
	// Paid: charged, or refunded since (not reversed).
	d := poller.Decision{Paid: lo != nil && (lo.Charged > 0 || lo.refundedByRefund) && lo.CodeHash == pick.CodeSHA256, By: "sim-operator", Why: "checked the gateway"}
	final := lo == nil || lo.State != payment.StatePaying
	if d.Paid {
		d.RefundedFee = lo.Refunded // paid, and partly refunded since (a restored journal's order)
	}
	w.gw.mu.Unlock()
	if !final {
		return // the customer's phone still says "paying": the operator waits
	}
	_, err := p.svc.Resolve(pick.MchTradeID, d)
	w.log(fmt.Sprintf("resolve %s paid=%v refunded=%d (phase %s): %v", pick.MchTradeID, d.Paid, d.RefundedFee, pick.Phase, err))
	if err == nil && !pick.NeedsAttention() {
		w.violate("resolve accepted for %s in phase %s: only an order that needs attention is resolved", pick.MchTradeID, pick.Phase)
	}
}

// pickOrder is one of the journal's orders that match, each as likely.
func (w *world) pickOrder(match func(*money.Order) bool) *money.Order {
	var pick *money.Order
	var n int
	_ = w.posd.j.View(func(tx *journal.Tx) error {
		return tx.EachOrder(func(o money.Order) error {
			if match(&o) {
				if n++; w.rng.IntN(n) == 0 {
					pick = &o
				}
			}
			return nil
		})
	})
	return pick
}

// reconcile is a reconciliation of one final order, as
// internal/reconcile makes it: asked at the gateway, compared, and handed
// back to the machinery (poller.Reopen) when the gateway still has it
// open. Now and then it reopens an unpaid one the gateway has final (a
// reconciliation misled by a lagging replica): that too must leave every
// money rule standing.
func (w *world) reconcile() {
	p := w.posd
	pick := w.reconcilePick()
	if pick == nil {
		return
	}
	q := p.client.Query(context.Background(), payment.OrderRef{MchTradeID: pick.MchTradeID}, pick.TotalFee)
	what := reconcile.Compare(pick, q)
	w.reconciled(pick, q, what)
	w.log(fmt.Sprintf("reconcile %s (%s): gateway %s %q", pick.MchTradeID, pick.State, reconcile.GatewayWord(q), what))
	if what != reconcile.OpenThere && (w.rng.IntN(4) != 0 || !w.gw.has(pick.MchTradeID)) {
		return // misled, a reconciliation still had a signed answer: the gateway has the order
	}
	o, err := p.pol.Reopen(pick.MchTradeID, "sim reconciliation", time.Now())
	w.reopened(pick, o, err)
	w.log(fmt.Sprintf("reopen %s: %s %v", pick.MchTradeID, o.Phase, err))
	if err == nil && (pick.State == money.Paid || pick.State == money.Refunded) {
		w.violate("order %s reopened while %s in the journal", pick.MchTradeID, pick.State)
	}
}
