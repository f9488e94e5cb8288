package poller

import (
	"cmp"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"slices"
	"time"

	"example.com/posd/internal/defect"
	"example.com/posd/internal/money"
	"example.com/posd/payment"
)

// The refund path of an order: one refund at a time, each under the
// mch_refund_id of what it is to the till, asked for before it is sent
// and decided by refund_query; and the discovery of the refunds the
// gateway holds of an order posd's journal may not know all of.

// startRefund puts a paid order on the refund path; by is "operator" or
// "fallback".
func startRefund(o *money.Order, by string, now time.Time) {
	startRefundOf(o, by, 0, FallbackRefundID(o.MchTradeID), now)
}

// startRefundOf starts a refund of fee (0: all that is left) under id. It
// is asked for first: an id of a till's refund may have been used by a
// run a restored journal does not remember, and the gateway's refund
// under it is this refund.
func startRefundOf(o *money.Order, by string, fee int64, id string, now time.Time) {
	if fee <= 0 {
		fee = o.TotalFee - o.RefundedFee
	}
	o.Phase, o.RefundID, o.RefundBy, o.Tries, o.NextAt = money.PhaseRefundQuery, id, by, 0, now
	o.RefundFee, o.RefundResult, o.RefundCheck, o.RefundFound = fee, "", !defect.On(defect.RefundIDByCount), false
	if defect.On(defect.RefundIDByCount) {
		o.Phase = money.PhaseRefund // sent at once, as before
	}
	o.RefundUnknown, o.RefundSends, o.RefundMissing = false, 0, 0
	if !slices.Contains(o.Refunds, id) {
		o.Refunds = append(slices.Clip(o.Refunds), id)
	}
}

// stepRefundCheck follows the refund_query asked before a refund is sent.
func stepRefundCheck(o *money.Order, r payment.Result, now time.Time, p Policy) {
	switch {
	case r.Outcome == payment.Done && r.Status == 0:
		// Made already, by a run this journal does not remember.
		o.RefundCheck = false
		fee := cmp.Or(r.RefundFee, RefundFeeOf(o))
		if fee != RefundFeeOf(o) {
			o.ErrMsg = fmt.Sprintf("this refund was made earlier at the gateway, of %d fen (asked now: %d)", fee, RefundFeeOf(o))
		}
		o.RefundFound = true
		refunded(o, r, now)
	case r.Outcome == payment.Done: // in progress at the gateway: follow it
		o.RefundCheck, o.RefundUnknown, o.RefundFound = false, true, true
		refundBackoff(o, now, p)
	case r.Outcome == payment.NotFound && o.RefundedElsewhere > 0 && o.RefundMissing+1 < 2*p.ReverseAttempts+6:
		// An operator's figure may count this refund, and a 301 may come
		// from a lagging replica: sent now, the gateway's "done" could be
		// that refund, counted twice. Only minutes of "no such refund"
		// say it was not made.
		o.RefundMissing++
		o.Tries++
		o.NextAt = now.Add(min(p.ReverseInterval<<min(o.Tries, 16), p.ReconcileInterval))
	case (r.Outcome == payment.Pending || r.Outcome == payment.NotFound) && o.RefundFee > o.TotalFee-o.RefundedFee:
		// Not made, and more than is left: it was asked only in case it
		// was one of the refunds an operator's figure counts.
		refundFailed(o, fmt.Sprintf("refund of %d fen not made: %d of %d fen left to refund", o.RefundFee, o.TotalFee-o.RefundedFee, o.TotalFee), now)
	case r.Outcome == payment.Pending, r.Outcome == payment.NotFound:
		// Failed there (it may be tried again under its id) or never made:
		// send it.
		o.RefundCheck, o.Phase, o.Tries, o.NextAt, o.RefundMissing = false, money.PhaseRefund, 0, now, 0
	default:
		// No trusted answer: ask again, ever less often. Sending would
		// not move money twice (the gateway takes the same id as the
		// same refund), but a "done" could not then be told from a
		// refund made before, which an operator's figure may count.
		refundBackoff(o, now, p)
	}
}

// RefundIDFor is the mch_refund_id of a till's refund of an order: a
// function of the order and the till's id for the refund, never of a
// count a restored journal rewinds. The same till refund reaches the
// gateway under the same id whatever the journal remembers (the gateway
// takes a repeat as the same refund), two never share one, and it is
// unique for the merchant as the order's id is: 31 characters of a
// SHA-256 (155 bits) within the protocol's 32.
func RefundIDFor(mchTradeID, tillID string) string { return refundID(mchTradeID, "till", tillID) }

// RestRefundID is the mch_refund_id of the refund of all that is left of
// an order (POST …/refund, which carries no id of the till's).
func RestRefundID(mchTradeID string) string { return refundID(mchTradeID, "rest", "") }

// FallbackRefundID is the mch_refund_id of the refund by which the
// reverse fallback gives back a payment made too late.
func FallbackRefundID(mchTradeID string) string { return refundID(mchTradeID, "fallback", "") }

func refundID(mchTradeID, kind, id string) string {
	h := sha256.New()
	for _, part := range []string{"posd refund", mchTradeID, kind, id} {
		fmt.Fprintf(h, "%d:%s", len(part), part)
	}
	return "R" + base32.StdEncoding.EncodeToString(h.Sum(nil))[:31]
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
		if o.RefundUnknown && !defect.On(defect.LostRefundAnswerTakenAsRefused) {
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
		if defect.On(defect.LostRefundAnswerTakenAsRefused) { // sent again at once, as before
			o.Tries++
			o.NextAt = now.Add(p.ReverseInterval)
			return
		}
		o.RefundUnknown = true
		o.Phase, o.Tries, o.NextAt = money.PhaseRefundQuery, 0, now.Add(p.ReverseInterval)
	}
}

func stepRefundQuery(o *money.Order, r payment.Result, now time.Time, p Policy) {
	switch {
	case o.RefundBy == "discover":
		stepDiscover(o, r, now, p)
		return
	case o.RefundCheck:
		stepRefundCheck(o, r, now, p)
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

// discoverRefunds asks refund_query for every refund id posd knows of the
// order (its own, the till's it has seen, an older posd's numbered ones),
// one after another, to learn how much went back: a journal restored
// from an older copy does not hold what was done since, and the order
// query's trade_state does not say how much. Only queries are sent.
func discoverRefunds(o *money.Order, now time.Time) {
	o.Phase, o.RefundBy, o.RefundsFound, o.FoundFee, o.RefundAsk = money.PhaseRefundQuery, "discover", 0, 0, 0
	o.RefundFee, o.RefundCheck = 0, false
	askNext(o, now)
}

// askNext asks the next known refund id, or ends the discovery.
func askNext(o *money.Order, now time.Time) {
	ids := KnownRefunds(o)
	if o.RefundAsk >= len(ids) {
		endDiscovery(o, now)
		return
	}
	o.RefundID, o.RefundMissing, o.RefundUnknown, o.Tries, o.NextAt = ids[o.RefundAsk], 0, false, 0, now
	o.RefundAsk++
}

// KnownRefunds are the mch_refund_id posd knows of an order: an older
// posd's numbered ones, then those it asked for or found.
func KnownRefunds(o *money.Order) []string {
	ids := make([]string, 0, o.RefundSeq+len(o.Refunds))
	for n := 1; n <= o.RefundSeq; n++ {
		ids = append(ids, RefundIDN(o.MchTradeID, n))
	}
	for _, id := range o.Refunds {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// stepDiscover follows one refund_query of a discovery.
func stepDiscover(o *money.Order, r payment.Result, now time.Time, p Policy) {
	if o.RefundAsk == 0 {
		// A discovery an older posd began: it asks on from its own id.
		o.RefundAsk = slices.Index(KnownRefunds(o), o.RefundID) + 1
	}
	switch {
	case r.Outcome == payment.Done && r.Status == 0:
		o.FoundFee += r.RefundFee // without its amount, the journal's figure stands
		o.RefundsFound++
		askNext(o, now)
	case r.Outcome == payment.Pending: // that refund failed: none of the money
		askNext(o, now)
	case r.Outcome == payment.NotFound:
		// No such refund (an id asked for but never sent). A 301 is
		// unsigned and may come from a lagging replica: asked a few
		// times, over seconds, before it counts as not made.
		if o.RefundMissing++; o.RefundMissing < 3 {
			o.Tries++
			o.NextAt = now.Add(min(p.ReverseInterval<<min(o.Tries, 16), p.ReconcileMax))
			return
		}
		askNext(o, now)
	default:
		refundBackoff(o, now, p) // in progress, or no trusted answer
	}
}

// endDiscovery ends the order by what the discovery found.
func endDiscovery(o *money.Order, now time.Time) {
	o.RefundedFee = min(max(o.RefundedFee, o.FoundFee), o.TotalFee)
	o.RefundBy, o.RefundID, o.RefundMissing = "operator", "", 0
	unaccounted := o.TradeState == payment.StateRefunding && (o.Restored || o.RefundedFee == 0)
	switch {
	case o.RefundedFee >= o.TotalFee:
		end(o, money.Refunded, now)
	case unaccounted && defect.On(defect.UnaccountedRefundInFull) && o.RefundedFee == 0:
		end(o, money.Refunded, now) // taken for a refund in full, as before
	case unaccounted:
		// The gateway shows a refund (trade_state 1) that posd cannot
		// account for: made outside posd, or since the copy a restored
		// journal was made from. What it found is no proof there are no
		// others, and posd does not make up a figure: an operator looks
		// at the gateway's refunds.
		o.State, o.Phase, o.NextAt = money.Unknown, money.PhaseAttention, time.Time{}
		o.Reason = fmt.Sprintf("the gateway shows refunds posd cannot account for: at least %d of %d fen refunded; check the order's refunds at the gateway", o.RefundedFee, o.TotalFee)
	default:
		end(o, money.Paid, now) // partly refunded, or not at all
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
	o.RefundFee = fee
	added := fee
	if o.RefundFound {
		// Made before posd asked, by a run this journal does not
		// remember: an operator's figure may count it already.
		counted := min(fee, o.RefundedElsewhere)
		o.RefundedElsewhere -= counted
		added -= counted
	}
	o.RefundedFee = min(o.RefundedFee+added, o.TotalFee)
	if o.RefundedFee < o.TotalFee {
		if o.Restored {
			// A restored journal's refund: others may have been made
			// since the copy; ask the order again, then its refunds,
			// before saying how much is left.
			o.Phase, o.NextAt, o.Tries = money.PhaseVerify, now, 0
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
	restored := o.Restored
	end(o, money.Paid, now)
	o.ErrMsg, o.RefundResult = why, money.Failed
	if restored {
		// A restored journal's order is not final before it was asked
		// what happened since the copy.
		o.Phase, o.Restored, o.NextAt, o.Tries, o.FinishedAt = money.PhaseVerify, true, now, 0, time.Time{}
	}
}
