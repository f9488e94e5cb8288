package poller

import (
	"strconv"
	"strings"
	"time"

	"example.com/posd/internal/defect"
	"example.com/posd/internal/money"
	"example.com/posd/payment"
)

// Policy is the confirmation schedule.
type Policy struct {
	QueryInterval   time.Duration // between queries (5s)
	QueryAttempts   int           // queries before a reverse (6)
	ReverseInterval time.Duration // between reverse retries
	ReverseAttempts int           // reverse (and close, refund) tries before the confirming query
	// ReverseFallback: when the gateway has no reverse, query, then refund
	// a paid order or close an unpaid one.
	ReverseFallback   bool
	ReconcileInterval time.Duration // first wait for an unresolved order
	ReconcileMax      time.Duration // the longest wait between reconciling queries
}

// longestWait is the longest the machine ever puts an order off.
func (p Policy) longestWait() time.Duration {
	return max(p.ReconcileMax, p.QueryInterval, p.ReverseInterval, p.ReconcileInterval)
}

// DefaultPolicy is the schedule of docs/protocol.md, "The confirmation flow".
func DefaultPolicy() Policy {
	return Policy{
		QueryInterval:     5 * time.Second,
		QueryAttempts:     6,
		ReverseInterval:   2 * time.Second,
		ReverseAttempts:   5,
		ReverseFallback:   true,
		ReconcileInterval: time.Minute,
		ReconcileMax:      30 * time.Minute,
	}
}

// Step is the confirmation state machine: given the order, the classified
// answer to the call its phase made, and the time, it returns the order's
// next state. It is pure: the runner journals the result before acting.
func Step(o money.Order, r payment.Result, now time.Time, p Policy) money.Order {
	o.UpdatedAt = now
	switch {
	case r.Outcome == payment.NotSent && o.Phase != money.PhasePay:
		r.Outcome = payment.Unknown // only a pay ends on "never sent"; the rest is asked again
	case r.Outcome == payment.NotFound && o.Seen && o.Phase != money.PhaseRefundQuery && !defect.On(defect.NotFoundAfterSignedAnswer): // that 301 is about the refund
		// A signed answer showed this order: a 301 now is a lagging
		// replica or a fault, never proof that nothing was created.
		r.Outcome, r.Reason = payment.Unknown, "not found (301), though a signed answer showed the order: "+r.Reason
	case r.Outcome == payment.NotFound && (o.Phase == money.PhaseConfirm || o.Phase == money.PhaseFallback) &&
		o.Queries < p.QueryAttempts:
		// "Nothing was created" takes a whole confirmation window of 301s;
		// a payment the till stopped gets here within seconds, while a
		// replica may still lag: ask again later. The window is counted in
		// the queries made, not read off the wall clock, which a step
		// across a restart would stretch.
		r.Outcome, r.Reason = payment.Unknown, "not found (301) yet, too soon after the pay to be sure: "+r.Reason
	}
	record(&o, r)
	if o.Adopt {
		o.Phase, o.State, o.NextAt = money.PhaseAttention, money.Unknown, time.Time{}
		o.Reason = "duplicate mch_trade_id (107) taken for posd's own by an older version: check this order at the gateway"
		return o
	}
	switch o.Phase {
	case money.PhasePay:
		stepPay(&o, r, now, p)
	case money.PhaseQuery:
		stepQuery(&o, r, now, p)
	case money.PhaseCheck:
		switch r.Outcome {
		case payment.Paid, payment.NotPaid, payment.NotFound:
			settle(&o, r, now)
		default:
			o.Phase, o.Queries, o.NextAt = money.PhaseQuery, 1, now.Add(p.QueryInterval)
		}
	case money.PhaseReverse:
		stepReverse(&o, r, now, p)
	case money.PhaseFallback:
		switch r.Outcome {
		case payment.Paid:
			if r.TradeState == payment.StateRefunding {
				settle(&o, r, now) // the money is going back already
				return o
			}
			startRefund(&o, "fallback", now)
		case payment.NotPaid, payment.NotFound:
			settle(&o, r, now)
		default:
			o.Phase, o.Tries, o.NextAt = money.PhaseClose, 0, now
		}
	case money.PhaseClose:
		retryThenConfirm(&o, r.Outcome == payment.Done || r.Outcome == payment.NotFound, now, p)
	case money.PhaseRefund:
		stepRefund(&o, r, now, p)
	case money.PhaseRefundQuery:
		stepRefundQuery(&o, r, now, p)
	case money.PhaseConfirm, money.PhaseReconcile:
		stepConfirm(&o, r, now, p)
	case money.PhaseVerify:
		stepVerify(&o, r, now, p)
	}
	return o
}

// stepVerify settles a paid order of a restored journal on a trusted
// answer; without one it is asked again, ever less often, for as long as
// it takes: the copy's "paid" may have been refunded since, and is never
// taken for the gateway's word.
func stepVerify(o *money.Order, r payment.Result, now time.Time, p Policy) {
	switch r.Outcome {
	case payment.Paid, payment.NotPaid:
		if r.Outcome == payment.Paid && r.TradeState != payment.StateRefunding && len(KnownRefunds(o)) > 0 {
			// Some gateways keep trade_state 0 after a refund: its
			// refunds are asked for whatever the order says.
			discoverRefunds(o, now)
			return
		}
		settle(o, r, now)
		if o.State != money.Paid {
			o.ErrMsg = "found " + string(o.State) + " at the gateway after the journal was restored from an older copy"
		}
		return
	}
	o.Tries = min(o.Tries+1, 16)
	wait := p.ReconcileInterval << o.Tries
	if wait > p.ReconcileMax || wait <= 0 {
		wait = p.ReconcileMax
	}
	o.NextAt = now.Add(wait)
}

// record keeps what an answer tells about the order, when it is trusted.
func record(o *money.Order, r payment.Result) {
	o.Reason = r.Reason
	if r.Outcome == payment.Unknown || r.Outcome == payment.NotSent {
		return
	}
	switch r.Outcome {
	case payment.Paid, payment.Pending, payment.NotPaid:
		o.Seen = true
	}
	if r.TradeState != payment.NoTradeState {
		o.TradeState = r.TradeState
	}
	if r.TradeID != "" {
		o.TradeID, o.Seen = r.TradeID, true
	}
	if r.OutTradeID != "" {
		o.OutTradeID = r.OutTradeID
	}
	if r.ErrMsg != "" {
		o.ErrMsg = r.ErrMsg
	}
	if r.Outcome == payment.Paid && r.Detail != (payment.PayDetail{}) {
		o.PayDetail = r.Detail // what the customer paid, the discount…
	}
}

func stepPay(o *money.Order, r payment.Result, now time.Time, p Policy) {
	// The pay has an outcome, even if it is "unknown": the code is never
	// sent again.
	o.AuthCode = ""
	switch r.Outcome {
	case payment.Paid, payment.NotPaid:
		settle(o, r, now)
	case payment.NotSent:
		// No connection was made: nothing left the box, nothing exists.
		o.NotSent = true
		end(o, money.Failed, now)
		o.ErrMsg = "gateway unreachable — not charged, take another payment method"
	case payment.Duplicate:
		if defect.On(defect.ReusedIDsAdopted) { // taken for posd's own order, as before
			o.Phase, o.Queries, o.NextAt = money.PhaseQuery, 0, now
			return
		}
		// posd never sends a pay twice, so an id the gateway already has is
		// not this pay's (a journal restored from a backup, a cloned box):
		// the gateway created nothing for this code.
		end(o, money.Failed, now)
		o.ErrMsg = "mch_trade_id already used at the gateway (107): not charged; was the journal restored or copied? tell the operator"
	case payment.Rejected:
		o.Phase, o.NextAt = money.PhaseCheck, now
	default:
		o.Phase, o.Queries, o.NextAt = money.PhaseQuery, 0, now.Add(p.QueryInterval)
	}
}

func stepQuery(o *money.Order, r payment.Result, now time.Time, p Policy) {
	if r.Outcome == payment.Paid || r.Outcome == payment.NotPaid {
		settle(o, r, now)
		return
	}
	o.Queries++
	if o.Queries >= p.QueryAttempts {
		toReverse(o, now)
		return
	}
	o.NextAt = now.Add(p.QueryInterval)
}

// toReverse is journaled before the reverse leaves: from then on a
// refund the gateway reports may be posd's own reverse.
func toReverse(o *money.Order, now time.Time) {
	o.Phase, o.Reverses, o.NextAt, o.ReverseSent = money.PhaseReverse, 0, now, true
}

func stepReverse(o *money.Order, r payment.Result, now time.Time, p Policy) {
	switch r.Outcome {
	case payment.NotPaid, payment.NotFound:
		o.Phase, o.NextAt = money.PhaseConfirm, now
	case payment.NoReverse:
		if p.ReverseFallback {
			o.Phase, o.NextAt = money.PhaseFallback, now
		} else {
			o.Phase, o.NextAt = money.PhaseConfirm, now
		}
	default:
		o.Reverses++
		if o.Reverses >= p.ReverseAttempts {
			o.Phase, o.NextAt = money.PhaseConfirm, now
			return
		}
		o.NextAt = now.Add(p.ReverseInterval)
	}
}

func retryThenConfirm(o *money.Order, done bool, now time.Time, p Policy) {
	o.Tries++
	if done || o.Tries >= p.ReverseAttempts {
		o.Phase, o.NextAt = money.PhaseConfirm, now
		return
	}
	o.NextAt = now.Add(p.ReverseInterval)
}

func end(o *money.Order, s money.State, now time.Time) {
	o.Phase, o.State, o.NextAt, o.FinishedAt, o.Adopt, o.Restored = money.PhaseDone, s, time.Time{}, now, false, false
}

func stepConfirm(o *money.Order, r payment.Result, now time.Time, p Policy) {
	switch r.Outcome {
	case payment.Paid, payment.NotPaid, payment.NotFound:
		settle(o, r, now)
		return
	case payment.Pending:
		if o.Phase == money.PhaseReconcile {
			// Still open at the gateway long after the flow: reverse again.
			toReverse(o, now)
			return
		}
	}
	o.State = money.Unknown
	o.Phase = money.PhaseReconcile
	wait := p.ReconcileInterval << min(o.Tries, 16)
	if wait > p.ReconcileMax || wait <= 0 {
		wait = p.ReconcileMax
	}
	o.Tries++
	o.NextAt = now.Add(wait)
}

// settle ends the order on a trusted final answer of an order query (or a
// pay). trade_state 1 says the money is going back: never "paid".
func settle(o *money.Order, r payment.Result, now time.Time) {
	switch {
	case r.Outcome == payment.NotFound:
		end(o, money.Failed, now)
	case r.Outcome == payment.Paid && r.TradeState == payment.StateRefunding && !defect.On(defect.ReverseTakenForPaid):
		switch {
		case (o.RefundBy == "fallback" || o.ReverseSent) && o.Phase != money.PhaseVerify && !o.Restored:
			// Paid too late; posd's reverse or fallback refunds it. (An
			// order of a restored journal may have been paid and refunded
			// since the copy: the discovery below tells.)
			end(o, money.Reversed, now)
		case o.RefundedFee >= o.TotalFee:
			end(o, money.Refunded, now)
		default:
			// Some refund was made: how much, trade_state does not say,
			// and the journal (a restored copy) may not hold it.
			discoverRefunds(o, now)
		}
	case r.Outcome == payment.Paid:
		end(o, money.Paid, now)
	default:
		end(o, notPaidState(r.TradeState), now)
	}
}

func notPaidState(ts int) money.State {
	switch ts {
	case payment.StateClosed:
		return money.Closed
	case payment.StateReversed:
		return money.Reversed
	}
	return money.Declined
}

// RefundIDN is the mch_refund_id an older posd gave an order's nth refund,
// counted in its journal: a restored copy counted again from where it
// was, and a new refund took the id of one made since (RefundIDFor is
// what posd uses now). Discovery still asks them.
func RefundIDN(mchTradeID string, n int) string {
	return mchTradeID + "R" + strings.ToUpper(strconv.FormatInt(int64(n), 36))
}
