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

// DefaultPolicy is PROTOCOL.md's schedule.
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
	case r.Outcome == payment.NotFound && o.Seen && o.Phase != money.PhaseRefundQuery && !defect.On(6): // that 301 is about the refund
		// A signed answer showed this order: a 301 now is a lagging
		// replica or a fault, never proof that nothing was created.
		r.Outcome, r.Reason = payment.Unknown, "not found (301), though a signed answer showed the order: "+r.Reason
	case r.Outcome == payment.NotFound && (o.Phase == money.PhaseConfirm || o.Phase == money.PhaseFallback) &&
		now.Sub(o.CreatedAt) < time.Duration(p.QueryAttempts)*p.QueryInterval:
		// "Nothing was created" takes a whole confirmation window of 301s;
		// a payment the till stopped gets here within seconds, while a
		// replica may still lag: ask again later.
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
// answer; without one it stays as the journal had it and is asked again,
// ever less often, a bounded number of times.
func stepVerify(o *money.Order, r payment.Result, now time.Time, p Policy) {
	switch r.Outcome {
	case payment.Paid, payment.NotPaid:
		settle(o, r, now)
		if o.State != money.Paid {
			o.ErrMsg = "found " + string(o.State) + " at the gateway after the journal was restored from an older copy"
		}
		return
	}
	o.Tries++
	if o.Tries >= 12 {
		end(o, o.State, now)
		o.Reason = "paid as the restored journal says; the gateway could not confirm it"
		return
	}
	wait := p.ReconcileInterval << min(o.Tries, 16)
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
		if defect.On(3) { // taken for posd's own order, as before
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

// startRefund puts a paid order on the refund path; by is "operator" or
// "fallback".
func startRefund(o *money.Order, by string, now time.Time) {
	startRefundOf(o, by, 0, now)
}

// startRefundOf starts a refund of fee (0: all that is left); each refund
// of an order has its own mch_refund_id, numbered from 1.
func startRefundOf(o *money.Order, by string, fee int64, now time.Time) {
	o.RefundSeq = max(o.RefundSeq, 0) + 1
	if fee <= 0 {
		fee = o.TotalFee - o.RefundedFee
	}
	o.Phase, o.RefundID, o.RefundBy, o.Tries, o.NextAt = money.PhaseRefund, RefundIDN(o.MchTradeID, o.RefundSeq), by, 0, now
	o.RefundFee, o.RefundResult = fee, ""
	o.RefundUnknown, o.RefundSends, o.RefundMissing = false, 0, 0
}

// RefundFeeOf is the amount of an order's refund in flight.
func RefundFeeOf(o *money.Order) int64 {
	if o.RefundFee > 0 {
		return o.RefundFee
	}
	return o.TotalFee // a refund an older posd started: the whole order
}

// stepRefund follows a refund request. Only refund_query may say that a
// refund whose answer was lost did not happen.
func stepRefund(o *money.Order, r payment.Result, now time.Time, p Policy) {
	o.RefundSends++
	switch r.Outcome {
	case payment.Done:
		if r.Status == 0 {
			refunded(o, now)
			return
		}
		// In progress: refund_query follows it.
		o.Phase, o.Tries, o.NextAt = money.PhaseRefundQuery, 0, now.Add(p.ReverseInterval)
	case payment.Rejected:
		if o.RefundUnknown && !defect.On(5) {
			o.Phase, o.Tries, o.NextAt = money.PhaseRefundQuery, 0, now
			return
		}
		refundFailed(o, "refund refused: "+r.Reason, now)
	case payment.Pending: // refund_status -1: failed, may be tried again
		o.Tries++
		if o.Tries >= p.ReverseAttempts {
			o.Phase, o.Tries, o.NextAt = money.PhaseRefundQuery, 0, now
			return
		}
		o.NextAt = now.Add(p.ReverseInterval)
	default:
		if defect.On(5) { // sent again at once, as before
			o.Tries++
			o.NextAt = now.Add(p.ReverseInterval)
			return
		}
		o.RefundUnknown = true
		o.Phase, o.Tries, o.NextAt = money.PhaseRefundQuery, 0, now.Add(p.ReverseInterval)
	}
}

func stepRefundQuery(o *money.Order, r payment.Result, now time.Time, p Policy) {
	if o.RefundBy == "discover" {
		stepDiscover(o, r, now, p)
		return
	}
	switch {
	case r.Outcome == payment.Done && r.Status == 0:
		refunded(o, now)
	case r.Outcome == payment.Pending: // -1: the refund failed
		refundFailed(o, "refund failed at the gateway: "+r.Reason, now)
	case r.Outcome == payment.NotFound:
		// The gateway does not know the refund (yet: a 301 is unsigned,
		// and may come from a lagging replica). Sending the same
		// mch_refund_id again is safe: it is the same refund.
		o.RefundMissing++
		if o.RefundSends < p.ReverseAttempts {
			o.Phase, o.NextAt = money.PhaseRefund, now.Add(p.ReverseInterval)
			return
		}
		if o.RefundMissing >= 2*p.ReverseAttempts+6 {
			// Minutes of "no such refund" after every send, far longer
			// than a replica lags: it was not made.
			refundFailed(o, "refund not carried out: the gateway has no such refund after every try; refund again if wanted", now)
			return
		}
		o.Tries++
		o.NextAt = now.Add(min(p.ReverseInterval<<min(o.Tries, 16), p.ReconcileInterval))
	default:
		refundBackoff(o, now, p) // in progress, or no trusted answer
	}
}

// discoverRefunds asks refund_query for the refunds posd would have made
// of the order, by their mch_refund_id (numbered), one after another, to
// learn how much went back: a journal restored from an older copy does
// not hold the refunds made since. Nothing is ever sent but queries.
func discoverRefunds(o *money.Order, now time.Time) {
	o.Phase, o.RefundBy, o.RefundsFound = money.PhaseRefundQuery, "discover", 0
	o.RefundSeq++
	o.RefundID, o.RefundFee, o.RefundMissing, o.RefundUnknown, o.Tries, o.NextAt = RefundIDN(o.MchTradeID, o.RefundSeq), 0, 0, false, 0, now
}

// stepDiscover follows one refund_query of a discovery.
func stepDiscover(o *money.Order, r payment.Result, now time.Time, p Policy) {
	next := func() {
		o.RefundSeq++
		o.RefundID, o.RefundMissing, o.Tries, o.NextAt = RefundIDN(o.MchTradeID, o.RefundSeq), 0, 0, now
		if !payment.ValidTradeID(o.RefundID) {
			endDiscovery(o, now)
		}
	}
	switch {
	case r.Outcome == payment.Done && r.Status == 0 && r.RefundFee > 0:
		o.RefundedFee = min(o.RefundedFee+r.RefundFee, o.TotalFee)
		o.RefundsFound++
		next()
	case r.Outcome == payment.Pending: // that refund failed: none of the money
		next()
	case r.Outcome == payment.NotFound:
		// No such refund: the last was found before. A 301 is unsigned
		// and may come from a lagging replica: as for a refund of posd's
		// own, only minutes of "no such refund" say it was not made.
		if o.RefundMissing++; o.RefundMissing < 2*p.ReverseAttempts+6 {
			o.Tries++
			o.NextAt = now.Add(min(p.ReverseInterval<<min(o.Tries, 16), p.ReconcileInterval))
			return
		}
		o.RefundSeq-- // the next refund posd makes takes this id
		endDiscovery(o, now)
	default:
		refundBackoff(o, now, p) // in progress, or no trusted answer
	}
}

// endDiscovery ends the order by what the discovery found.
func endDiscovery(o *money.Order, now time.Time) {
	found := o.RefundsFound
	o.RefundBy, o.RefundID, o.RefundMissing = "operator", "", 0
	switch {
	case found == 0 && o.RefundedFee == 0 && o.ReverseSent:
		end(o, money.Reversed, now) // none of posd's refunds: its reverse gave the money back
	case found == 0 && o.RefundedFee == 0:
		end(o, money.Refunded, now)
		o.ErrMsg = "refunded outside posd (trade_state 1)"
	case o.RefundedFee >= o.TotalFee:
		end(o, money.Refunded, now)
	default:
		end(o, money.Paid, now) // partly refunded
	}
}

// refundBackoff asks refund_query again, ever less often.
func refundBackoff(o *money.Order, now time.Time, p Policy) {
	wait := p.ReverseInterval << min(o.Tries, 16)
	if wait > p.ReconcileMax || wait <= 0 {
		wait = p.ReconcileMax
	}
	o.Tries++
	o.NextAt = now.Add(wait)
}

// refunded ends a refund the gateway confirmed: the order is refunded
// once all of it went back, and stays paid before.
func refunded(o *money.Order, now time.Time) {
	o.RefundResult = money.Refunded
	if o.RefundBy == "fallback" {
		end(o, money.Reversed, now) // paid too late, refunded by the fallback
		return
	}
	o.RefundedFee = min(o.RefundedFee+RefundFeeOf(o), o.TotalFee)
	if o.RefundedFee < o.TotalFee {
		if o.Restored {
			// A restored journal's refund: later ones may have been
			// made since the copy; ask for them before saying how much
			// is left.
			discoverRefunds(o, now)
			o.RefundsFound = 1 // this one
			return
		}
		end(o, money.Paid, now)
		return
	}
	end(o, money.Refunded, now)
}

// refundFailed ends a refund that the gateway certainly did not carry out.
func refundFailed(o *money.Order, why string, now time.Time) {
	if o.RefundBy == "fallback" {
		// The customer paid and the money could not go back: the
		// confirming query reports what the gateway holds.
		o.Phase, o.NextAt, o.Reason = money.PhaseConfirm, now, why
		return
	}
	end(o, money.Paid, now)
	o.ErrMsg, o.RefundResult = why, money.Failed
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
	case r.Outcome == payment.Paid && r.TradeState == payment.StateRefunding && !defect.On(2):
		switch {
		case o.RefundBy == "fallback" || o.ReverseSent && o.Phase != money.PhaseVerify && !o.Restored:
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

// RefundID is the mch_refund_id for refunding an order in full. Trade ids
// are at most 30 characters (check-config), so this is at most 32 and
// unique as the trade id is.
func RefundID(mchTradeID string) string { return RefundIDN(mchTradeID, 1) }

// RefundIDN is the mch_refund_id of an order's nth refund: unique for the
// merchant forever, as the order's own id is. n is written in base 36, so
// that the longest order id (30 characters) still has 35 refunds within
// the protocol's 32 (payment.ValidTradeID says when it has no more).
func RefundIDN(mchTradeID string, n int) string {
	return mchTradeID + "R" + strings.ToUpper(strconv.FormatInt(int64(n), 36))
}
