package poller

import (
	"cmp"
	"container/heap"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"example.com/posd/internal/defect"
	"example.com/posd/internal/journal"
	"example.com/posd/internal/money"
	"example.com/posd/payment"
)

// ErrBusy: the order is being driven already.
var ErrBusy = errors.New("poller: order is in progress")

// ErrNoOrder: the journal holds no order of that id.
var ErrNoOrder = errors.New("poller: no such order")

// StartRefund refunds r.RefundFee of a paid, final order (0: all that is
// left) under r.MchRefundID (RefundIDFor the till's id, or RestRefundID),
// one refund at a time. The refund is journaled with the order before
// anything is sent; r is filled in as recorded. A refund already recorded
// under that id is ErrRefundExists: it is the same refund.
func (p *Poller) StartRefund(id string, r *money.Refund, now time.Time) (money.Order, error) {
	return p.takeUp(id, now, func(tx *journal.Tx, o *money.Order) error {
		if o.State != money.Paid || o.Phase != money.PhaseDone {
			return journal.Fail(fmt.Errorf("poller: order %s is %s, only a paid order is refunded", id, o.State))
		}
		if _, ok, err := tx.Refund(r.MchRefundID); err != nil || ok {
			return cmp.Or(err, journal.Fail(ErrRefundExists))
		}
		left := o.TotalFee - o.RefundedFee
		fee := r.RefundFee
		if fee <= 0 {
			fee = left
		}
		if fee > left+o.RefundedElsewhere {
			// (Up to what an operator's figure counts, it may be one of
			// those refunds asked again: the gateway is asked first.)
			return journal.Fail(fmt.Errorf("%w: %d fen asked, %d of %d left to refund", ErrRefundExceeds, fee, left, o.TotalFee))
		}
		if !payment.ValidTradeID(r.MchRefundID) {
			return journal.Fail(fmt.Errorf("poller: %q is not a mch_refund_id", r.MchRefundID))
		}
		startRefundOf(o, "operator", fee, r.MchRefundID, now)
		o.UpdatedAt, o.ErrMsg = now, ""
		rr := *r // the function may run again
		rr.MchTradeID, rr.ChargeID, rr.Lane = o.MchTradeID, o.ChargeID, o.Lane
		rr.RefundFee, rr.State, rr.CreatedAt, rr.UpdatedAt = fee, money.Pending, now, now
		if err := tx.RecordRefund(&rr); err != nil {
			return err
		}
		*r = rr
		return nil
	})
}

// ErrRefundExists: a refund is recorded under that mch_refund_id already.
var ErrRefundExists = errors.New("poller: refund exists")

// Reopen drives an order the journal holds final but the gateway reports
// still open (paying or reversing: what a reconciliation found) to a final
// state the gateway agrees with, by the normal machinery: it is reversed,
// as an order that stays unresolved is, and confirmed. A reverse also
// gives back a payment the customer completed meanwhile, so no one pays
// for an attempt posd ended unpaid. A paid or refunded order is refused:
// reversing it would take back money for goods the customer has; that is
// an operator's decision.
func (p *Poller) Reopen(id, why string, now time.Time) (money.Order, error) {
	o, err := p.takeUp(id, now, func(tx *journal.Tx, o *money.Order) error {
		switch {
		case o.Phase != money.PhaseDone:
			return journal.Fail(fmt.Errorf("%w: order %s is still driven (%s)", ErrBusy, id, doing(o.Phase)))
		case o.State == money.Paid || o.State == money.Refunded:
			return journal.Fail(fmt.Errorf("%w: order %s is %s in the journal; an operator decides", ErrNotReopenable, id, o.State))
		}
		if why := reopenable(tx, o); why != "" {
			return journal.Fail(fmt.Errorf("%w: order %s: %s; an operator decides", ErrNotReopenable, id, why))
		}
		toReverse(o, now)
		// The gateway showed the order (a signed answer, still open): a
		// 301 now is a lagging replica, never "nothing was created".
		o.Tries, o.Seen, o.FinishedAt, o.UpdatedAt = 0, true, time.Time{}, now
		o.Reopened = why
		return nil
	})
	if err == nil {
		p.log.Warn("final order reopened: reversing it", zap.String("mch_trade_id", id), zap.String("was", string(o.State)), zap.String("why", why))
	}
	return o, err
}

// ErrNotReopenable: the order is paid or refunded in the journal, or its
// charge has moved on.
var ErrNotReopenable = errors.New("poller: order is not reopened")

// reopenable says why an order's charge forbids taking it up again (""
// when nothing does). Only the charge's latest attempt is, once the charge
// ended canceled: whatever the reverse ends in then (reversed, or paid if
// it could not land) is what the charge must say, by the one rule
// (money.Settle). An earlier attempt, or a charge still open for the
// till, is an operator's: the charge's state belongs to another attempt,
// or to a sale in progress.
func reopenable(tx *journal.Tx, o *money.Order) string {
	if o.ChargeID == "" {
		return ""
	}
	c, ok, err := tx.Charge(o.ChargeID)
	switch {
	case err != nil:
		return "its charge cannot be read"
	case !ok:
		return ""
	case len(c.AttemptIDs) == 0 || c.AttemptIDs[len(c.AttemptIDs)-1] != o.MchTradeID:
		return "a later attempt of charge " + c.ID + " followed it"
	case c.State != money.Canceled:
		return "charge " + c.ID + " is " + string(c.State)
	}
	return ""
}

// takeUp takes an order that is not being driven back into the flow: fn
// changes it in the journal (or refuses with journal.Fail), and it is
// scheduled after its update is told. The order is held throughout, so
// that no resolve, refund or second take-up slips in between.
func (p *Poller) takeUp(id string, now time.Time, fn func(*journal.Tx, *money.Order) error) (money.Order, error) {
	p.mu.Lock()
	if p.active[id] {
		p.mu.Unlock()
		return money.Order{}, ErrBusy
	}
	p.active[id] = true
	p.mu.Unlock()
	o, settled, err := p.change(id, now, fn)
	if err != nil {
		p.mu.Lock()
		delete(p.active, id)
		p.mu.Unlock()
		return money.Order{}, err
	}
	p.opt.OnUpdate(o, settled) // before it is scheduled: updates of one order arrive in order
	p.enqueue(o)
	return o, nil
}

// change applies fn to an order as the journal holds it and saves the
// step, in one transaction.
func (p *Poller) change(id string, now time.Time, fn func(*journal.Tx, *money.Order) error) (money.Order, money.Settled, error) {
	var o money.Order
	var settled money.Settled
	err := p.opt.Journal.Update(func(tx *journal.Tx) error {
		var ok bool
		var err error
		o, ok, err = tx.Order(id)
		if err != nil || !ok {
			return journal.Fail(fmt.Errorf("%w: order %s", ErrNoOrder, id))
		}
		if err := fn(tx, &o); err != nil {
			return err
		}
		settled, err = tx.SaveStep(&o, now)
		return err
	})
	return o, settled, err
}

// ErrRefundExceeds: a refund asks for more than the order has left.
var ErrRefundExceeds = errors.New("poller: refund exceeds what is left")

// ErrNotInFlight: the order is not being driven (final, or waiting for an
// operator): there is nothing to stop.
var ErrNotInFlight = errors.New("poller: order is not in flight")

// Abort stops waiting for a payment the till gave up on: an order still
// being queried is reversed at once (a reverse refused while the customer
// enters a password is retried, as in the flow); one already reversing
// or confirming goes on. If a step has the order, the abort is applied to
// what that step journals, or at the order's next step.
func (p *Poller) Abort(id string, now time.Time) error {
	p.mu.Lock()
	if !p.active[id] {
		p.mu.Unlock()
		return ErrNotInFlight
	}
	for i := range p.queue {
		if p.queue[i].MchTradeID != id {
			continue
		}
		o := heap.Remove(&p.queue, i).(money.Order)
		p.mu.Unlock() // still active: no one else takes it meanwhile
		next := abort(o, now)
		settled, err := p.save(&next)
		if err != nil {
			p.requeue(o)
			return err
		}
		p.log.Info("payment stopped by the till: reversing", zap.String("mch_trade_id", id), zap.String("phase", string(next.Phase)))
		p.opt.OnUpdate(next, settled) // before it is rescheduled: updates of one order arrive in order
		p.requeue(next)
		return nil
	}
	p.aborts[id] = true
	p.mu.Unlock()
	return nil
}

func abort(o money.Order, now time.Time) money.Order {
	o.Abort = true
	if o.Phase == money.PhaseQuery || o.Phase == money.PhaseCheck {
		toReverse(&o, now)
	}
	return o
}

// decide ends an order as an operator decided.
func decide(o *money.Order, d Decision, now time.Time) {
	state := money.Declined
	switch {
	case d.Paid && d.RefundedFee == o.TotalFee:
		state, o.RefundedFee = money.Refunded, d.RefundedFee
	case d.Paid:
		// What the operator saw refunded beyond the refunds posd knows:
		// one of them found later is not counted twice.
		known := o.RefundedFee - o.RefundedElsewhere
		o.RefundedElsewhere = max(d.RefundedFee-known, 0)
		state, o.RefundedFee = money.Paid, d.RefundedFee
	}
	end(o, state, now) // no longer "restored": the operator looked at the gateway
	o.UpdatedAt = now
	o.Resolution = fmt.Sprintf("resolved %s by %s: %s", o.State, d.By, d.Why)
	if d.Paid && d.RefundedFee > 0 {
		o.Resolution = fmt.Sprintf("resolved paid, %d of %d fen refunded, by %s: %s", d.RefundedFee, o.TotalFee, d.By, d.Why)
	}
}

// ErrNotResolvable: the order is final, or posd is still confirming it.
var ErrNotResolvable = errors.New("poller: order cannot be resolved")

// doing says what posd is doing with an order in phase ph.
func doing(ph money.Phase) string {
	switch ph {
	case money.PhasePay:
		return "the pay is in flight"
	case money.PhaseQuery, money.PhaseCheck:
		return "querying the payment"
	case money.PhaseReverse:
		return "reversing the payment"
	case money.PhaseFallback, money.PhaseClose:
		return "closing the order (the gateway has no reverse)"
	case money.PhaseRefund, money.PhaseRefundQuery:
		return "refunding"
	case money.PhaseConfirm:
		return "confirming the final state"
	case money.PhaseVerify:
		return "verifying a paid order of a restored journal"
	}
	return string(ph)
}

// Decision is an operator's on an order that needs attention: paid or not,
// and of a paid one how much the gateway shows refunded (a restored
// journal's order refunded in part since the copy), with who and why.
type Decision struct {
	Paid        bool
	RefundedFee int64
	By, Why     string
}

// Resolve records an operator's decision on an order the poller could not
// settle (it needs attention: its outcome is unknown after the whole
// confirmation flow). The order is final afterwards.
func (p *Poller) Resolve(id string, d Decision, now time.Time) (money.Order, error) {
	if d.By == "" || d.Why == "" {
		return money.Order{}, fmt.Errorf("poller: a resolution needs who and why")
	}
	if d.RefundedFee < 0 || d.RefundedFee > 0 && !d.Paid {
		return money.Order{}, fmt.Errorf("poller: refunded_fee %d: only a paid order has refunds, and none is negative", d.RefundedFee)
	}
	// Hold the order for the decision: off the schedule if it is queued,
	// refused if a step has it in flight.
	p.mu.Lock()
	var queued *money.Order
	if p.active[id] {
		for i := range p.queue {
			if p.queue[i].MchTradeID == id {
				o := heap.Remove(&p.queue, i).(money.Order)
				queued = &o
				break
			}
		}
		if queued == nil {
			p.mu.Unlock()
			// A call is in flight: say what posd is doing with the order.
			var o money.Order
			_ = p.opt.Journal.View(func(tx *journal.Tx) error { o, _, _ = tx.Order(id); return nil })
			if o.MchTradeID != "" && !o.NeedsAttention() && !defect.On(defect.ResolveWhileConfirming) {
				return money.Order{}, fmt.Errorf("%w: order %s is still being confirmed by posd (%s); only an order that needs attention is resolved", ErrNotResolvable, id, doing(o.Phase))
			}
			return money.Order{}, ErrBusy
		}
	}
	p.active[id] = true
	p.mu.Unlock()
	release := func(failed bool) {
		p.mu.Lock()
		delete(p.active, id)
		p.mu.Unlock()
		if failed && queued != nil {
			p.enqueue(*queued) // nothing was decided: it goes on as before
		}
	}
	o, settled, err := p.change(id, now, func(_ *journal.Tx, o *money.Order) error {
		if o.Phase == money.PhaseDone {
			return journal.Fail(fmt.Errorf("%w: order %s is final (%s): nothing to resolve", ErrNotResolvable, id, o.State))
		}
		if !o.NeedsAttention() && !defect.On(defect.ResolveWhileConfirming) {
			return journal.Fail(fmt.Errorf("%w: order %s is still being confirmed by posd (%s); only an order that needs attention is resolved", ErrNotResolvable, id, doing(o.Phase)))
		}
		if d.RefundedFee > o.TotalFee {
			return journal.Fail(fmt.Errorf("poller: refunded_fee %d: more than the order's %d fen", d.RefundedFee, o.TotalFee))
		}
		decide(o, d, now)
		return nil
	})
	release(err != nil)
	if err != nil {
		return money.Order{}, err
	}
	p.log.Warn("order resolved by an operator", zap.String("mch_trade_id", id), zap.String("state", string(o.State)), zap.String("by", d.By), zap.String("why", d.Why))
	p.opt.OnUpdate(o, settled)
	return o, nil
}
