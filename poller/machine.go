package poller

import (
	"fmt"
	"time"

	"posd/payment"
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

// Call is the gateway call an order's phase makes next.
func (o *Order) Call() payment.Call {
	switch o.Phase {
	case PhasePay:
		return payment.CallPay
	case PhaseReverse:
		return payment.CallReverse
	case PhaseClose:
		return payment.CallClose
	case PhaseRefund:
		return payment.CallRefund
	case PhaseDone, PhaseAttention:
		return ""
	}
	return payment.CallQuery
}

// Step is the confirmation state machine: given the order, the classified
// answer to the call its phase made, and the time, it returns the order's
// next state. It is pure: the runner journals the result before acting.
func Step(o Order, r payment.Result, now time.Time, p Policy) Order {
	o.UpdatedAt = now
	record(&o, r)
	switch o.Phase {
	case PhasePay:
		stepPay(&o, r, now, p)
	case PhaseQuery:
		stepQuery(&o, r, now, p)
	case PhaseCheck:
		switch r.Outcome {
		case payment.Paid, payment.NotPaid, payment.NotFound:
			settle(&o, r, now)
		default:
			o.Phase, o.Queries, o.NextAt = PhaseQuery, 1, now.Add(p.QueryInterval)
		}
	case PhaseReverse:
		stepReverse(&o, r, now, p)
	case PhaseFallback:
		switch r.Outcome {
		case payment.Paid:
			o.Phase, o.RefundID, o.RefundBy, o.Tries, o.NextAt = PhaseRefund, RefundID(o.MchTradeID), "fallback", 0, now
		case payment.NotPaid, payment.NotFound:
			settle(&o, r, now)
		default:
			o.Phase, o.Tries, o.NextAt = PhaseClose, 0, now
		}
	case PhaseClose:
		retryThenConfirm(&o, r.Outcome == payment.Done || r.Outcome == payment.NotFound, now, p)
	case PhaseRefund:
		if o.RefundBy == "operator" && r.Outcome == payment.Rejected {
			// The gateway refused the refund: the order stays paid.
			o.Phase, o.State, o.RefundID, o.RefundBy = PhaseDone, Paid, "", ""
			o.ErrMsg = "refund refused: " + r.Reason
			return o
		}
		retryThenConfirm(&o, r.Outcome == payment.Done, now, p)
	case PhaseConfirm, PhaseReconcile:
		stepConfirm(&o, r, now, p)
	}
	return o
}

// record keeps what an answer tells about the order, when it is trusted.
func record(o *Order, r payment.Result) {
	o.Reason = r.Reason
	if r.Outcome == payment.Unknown {
		return
	}
	if r.TradeState != payment.NoTradeState {
		o.TradeState = r.TradeState
	}
	if r.TradeID != "" {
		o.TradeID = r.TradeID
	}
	if r.OutTradeID != "" {
		o.OutTradeID = r.OutTradeID
	}
	if r.ErrMsg != "" {
		o.ErrMsg = r.ErrMsg
	}
}

func stepPay(o *Order, r payment.Result, now time.Time, p Policy) {
	// The pay has an outcome, even if it is "unknown": the code is never
	// sent again.
	o.AuthCode = ""
	switch r.Outcome {
	case payment.Paid, payment.NotPaid:
		settle(o, r, now)
	case payment.Duplicate:
		// The id exists at the gateway: query it, and take it as ours
		// only if it is for our amount and our lane.
		o.Adopt, o.Phase, o.Queries, o.NextAt = true, PhaseQuery, 0, now
	case payment.Rejected:
		o.Phase, o.NextAt = PhaseCheck, now
	default:
		o.Phase, o.Queries, o.NextAt = PhaseQuery, 0, now.Add(p.QueryInterval)
	}
}

func stepQuery(o *Order, r payment.Result, now time.Time, p Policy) {
	if o.Adopt {
		switch r.Outcome {
		case payment.Paid, payment.NotPaid, payment.Pending:
			if r.TotalFee != o.TotalFee || r.DeviceInfo != o.DeviceInfo {
				o.Phase, o.State = PhaseAttention, Unknown
				o.Reason = fmt.Sprintf("mch_trade_id already used at the gateway by another order (total_fee %d, device_info %q)", r.TotalFee, r.DeviceInfo)
				return
			}
			o.Adopt = false
		default:
			// Never reverse an order that may not be ours.
			o.Queries++
			if o.Queries >= p.QueryAttempts {
				o.Phase, o.State = PhaseAttention, Unknown
				o.Reason = "duplicate mch_trade_id (107) and the existing order could not be checked: " + r.Reason
				return
			}
			o.NextAt = now.Add(p.QueryInterval)
			return
		}
	}
	if r.Outcome == payment.Paid || r.Outcome == payment.NotPaid {
		settle(o, r, now)
		return
	}
	o.Queries++
	if o.Queries >= p.QueryAttempts {
		o.Phase, o.Reverses, o.NextAt = PhaseReverse, 0, now
		return
	}
	o.NextAt = now.Add(p.QueryInterval)
}

func stepReverse(o *Order, r payment.Result, now time.Time, p Policy) {
	switch r.Outcome {
	case payment.NotPaid, payment.NotFound:
		o.Phase, o.NextAt = PhaseConfirm, now
	case payment.NoReverse:
		if p.ReverseFallback {
			o.Phase, o.NextAt = PhaseFallback, now
		} else {
			o.Phase, o.NextAt = PhaseConfirm, now
		}
	default:
		o.Reverses++
		if o.Reverses >= p.ReverseAttempts {
			o.Phase, o.NextAt = PhaseConfirm, now
			return
		}
		o.NextAt = now.Add(p.ReverseInterval)
	}
}

func retryThenConfirm(o *Order, done bool, now time.Time, p Policy) {
	o.Tries++
	if done || o.Tries >= p.ReverseAttempts {
		o.Phase, o.NextAt = PhaseConfirm, now
		return
	}
	o.NextAt = now.Add(p.ReverseInterval)
}

func stepConfirm(o *Order, r payment.Result, now time.Time, p Policy) {
	switch r.Outcome {
	case payment.Paid, payment.NotPaid, payment.NotFound:
		settle(o, r, now)
		return
	case payment.Pending:
		if o.Phase == PhaseReconcile {
			// Still open at the gateway long after the flow: reverse again.
			o.Phase, o.Reverses, o.NextAt = PhaseReverse, 0, now
			return
		}
	}
	o.State = Unknown
	o.Phase = PhaseReconcile
	wait := p.ReconcileInterval << min(o.Tries, 16)
	if wait > p.ReconcileMax || wait <= 0 {
		wait = p.ReconcileMax
	}
	o.Tries++
	o.NextAt = now.Add(wait)
}

// settle ends the order on a trusted final answer.
func settle(o *Order, r payment.Result, now time.Time) {
	o.Phase, o.NextAt, o.FinishedAt = PhaseDone, time.Time{}, now
	o.Adopt = false
	switch {
	case r.Outcome == payment.NotFound:
		o.State = Failed
	case r.Outcome == payment.Paid && r.TradeState == payment.StateRefunding && o.RefundBy == "operator":
		o.State = Refunded
	case r.Outcome == payment.Paid && r.TradeState == payment.StateRefunding && o.RefundBy == "fallback":
		o.State = Reversed // paid too late, refunded by the fallback
	case r.Outcome == payment.Paid:
		o.State = Paid
		if o.RefundBy == "operator" {
			o.ErrMsg = "refund not confirmed by the gateway"
		}
		o.RefundBy, o.RefundID = "", ""
	default:
		o.State = notPaidState(r.TradeState)
	}
}

func notPaidState(ts int) State {
	switch ts {
	case payment.StateClosed:
		return Closed
	case payment.StateReversed:
		return Reversed
	}
	return Declined
}

// RefundID is the mch_refund_id for refunding an order in full. Trade ids
// are at most 30 characters (check-config), so this is at most 32 and
// unique as the trade id is.
func RefundID(mchTradeID string) string { return mchTradeID + "R1" }
