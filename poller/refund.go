package poller

import (
	"fmt"
	"time"

	"example.com/posd/internal/defect"
	"example.com/posd/internal/money"
	"example.com/posd/payment"
)

// The refund path of an order: one refund at a time, each its own
// mch_refund_id, decided by refund_query; and the discovery of refunds a
// restored journal does not hold.

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
			refunded(o, r, now)
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
		refunded(o, r, now)
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
	o.Phase, o.RefundBy, o.RefundsFound, o.RefundGaps = money.PhaseRefundQuery, "discover", 0, 0
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
		o.RefundsFound, o.RefundGaps = o.RefundsFound+1, 0
		next()
	case r.Outcome == payment.Pending: // that refund failed: none of the money
		o.RefundGaps = 0
		next()
	case r.Outcome == payment.NotFound:
		// No such refund. A 301 is unsigned and may come from a lagging
		// replica: as for a refund of posd's own, only minutes of "no such
		// refund" say it was not made. A refund posd numbered but never
		// made leaves a gap: the ids after it are asked too, until a few
		// in a row are missing (each of those asked a few times only).
		patience := 2*p.ReverseAttempts + 6
		if o.RefundGaps > 0 {
			patience = 3
		}
		if o.RefundMissing++; o.RefundMissing < patience {
			o.Tries++
			o.NextAt = now.Add(min(p.ReverseInterval<<min(o.Tries, 16), p.ReconcileInterval))
			return
		}
		if o.RefundGaps++; o.RefundGaps < 3 {
			next()
			return
		}
		// A new refund takes the first id of this last run of missing
		// ones, which was asked with the whole patience: the ids after
		// it, asked a few times only, are left unused. Had a discovery
		// used them all, the gaps would add up, discovery after
		// discovery, past what the next one asks (simulation, seed 538).
		o.RefundSeq -= o.RefundGaps
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
	case o.Restored && found > 0:
		// A restored journal's order, refunded in part since the copy:
		// the refunds posd found are not proof that there are no others
		// (a gap, a lagging replica). Not a made-up figure: an operator
		// looks at the gateway.
		o.State, o.Phase, o.NextAt = money.Unknown, money.PhaseAttention, time.Time{}
		o.Reason = fmt.Sprintf("restored journal: at least %d of %d fen refunded at the gateway; check its refunds", o.RefundedFee, o.TotalFee)
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
func refunded(o *money.Order, r payment.Result, now time.Time) {
	o.RefundResult = money.Refunded
	if o.RefundBy == "fallback" {
		end(o, money.Reversed, now) // paid too late, refunded by the fallback
		return
	}
	fee := RefundFeeOf(o)
	if r.RefundFee > 0 {
		fee = r.RefundFee // the gateway's word on what went back
	}
	o.RefundedFee = min(o.RefundedFee+fee, o.TotalFee)
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
