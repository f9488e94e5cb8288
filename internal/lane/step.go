package lane

import (
	"go.uber.org/zap"

	"example.com/posd/display"
	"example.com/posd/internal/defect"
	"example.com/posd/internal/journal"
	"example.com/posd/internal/money"
	"example.com/posd/payment"
)

// OrderUpdated follows an attempt's journaled step, and what it did to its
// charge (journaled with it), into the lane and onto its displays. The
// poller calls it after every step.
func (s *Service) OrderUpdated(o money.Order, st money.Settled) {
	l := s.laneOf(o.Lane)
	l.mu.Lock()
	defer l.mu.Unlock()
	if o.Active() {
		oc := o
		l.orders[o.MchTradeID] = &oc
	} else {
		delete(l.orders, o.MchTradeID)
	}
	if o.Final() && o.NotSent {
		// The journal gave the code back with the step: nothing was
		// created with it, so the customer may show it again.
		l.dedup.Forget(func(code string) bool { return payment.CodeHash(code) == o.CodeSHA256 })
	}
	if !st.Found {
		s.log.Error("order without its charge", zap.String("mch_trade_id", o.MchTradeID), zap.String("charge", o.ChargeID))
		return
	}
	defer changedLocked(l, st.Charge.ID)
	if st.Refund != nil && st.RefundDone {
		// A refund's end is the refund's own event, with the charge as
		// that step left it: told and printed even when the charge has
		// moved on since (the till asked the next refund at once).
		s.publish(refundEvent(&o, st.Refund, &st.Charge))
	}
	if s.staleLocked(l, &st.Charge) {
		// The lane changed the charge after this step committed (a cancel,
		// a new scan): what the step did is already behind it, and its
		// event would show an outcome the charge no longer has.
		return
	}
	c := adoptLocked(l, st.Charge)
	if st.Refund != nil && (st.RefundDone || o.Phase == money.PhaseRefund || o.Phase == money.PhaseRefundQuery) {
		// A refund moves no lane: the till asked for it at this lane now,
		// and its end is shown and printed there (above).
		return
	}
	if !st.Changed {
		return // still paying: the view shows the attempt's progress
	}
	ev := stepEvent(&o, &st)
	if (l == s.retired || l.current != c.ID) && !defect.On(defect.StaleChargeShown) {
		s.lateLocked(l, c, &o, ev)
		return
	}
	s.publish(ev)
	s.settledLocked(l, c)
}

// refundEvent shows a refund's end: refunded (the customer display and
// the receipt printer show the amount given back), or failed (for the
// till only).
func refundEvent(o *money.Order, r *money.Refund, c *money.Charge) display.Event {
	ev := display.Event{Lane: o.Lane, ChargeID: r.ChargeID, TotalFee: r.RefundFee, Wallet: o.Wallet,
		MchTradeID: o.MchTradeID, TradeID: o.TradeID, OutTradeID: o.OutTradeID, Kind: display.Refunded,
		Reason: "refund " + r.MchRefundID, RefundID: r.MchRefundID, TillRefundID: r.RefundID, RefundFee: r.RefundFee,
		ChargeState: c.State, RefundedFee: c.RefundedFee, Version: c.Version, Reference: c.Reference,
		OpUserID: r.OpUserID, Shift: r.Shift}
	if r.State != money.Refunded {
		ev.Kind, ev.Result = display.LateResult, display.KindOf(r.State)
		ev.Reason = "refund " + r.MchRefundID + " " + string(r.State) + ": " + r.ErrMsg
	}
	return ev
}

// stepEvent is what the lane's displays show of a step that moved its
// charge.
func stepEvent(o *money.Order, st *money.Settled) display.Event {
	c := &st.Charge
	ev := display.Event{Lane: o.Lane, ChargeID: c.ID, TotalFee: o.TotalFee, Wallet: o.Wallet,
		MchTradeID: o.MchTradeID, TradeID: o.TradeID, OutTradeID: o.OutTradeID, Kind: display.KindOf(c.State),
		Reference: c.Reference, OpUserID: o.OpUserID, Shift: o.Shift, RefundedFee: c.RefundedFee, Version: c.Version}
	switch {
	case o.State == money.Paid:
		ev.BuyerPayAmount, ev.CouponFee = o.BuyerPayAmount, o.CouponFee
	case o.State == money.Refunded:
	case o.State == money.Unknown:
		ev.Reason = "outcome not known yet"
	case c.State == money.Canceled && c.Aborting && st.Prev == money.Paying:
		// The till stopped it and it did not complete: the customer is
		// told so.
		ev.Reason = "payment stopped"
	case o.NotSent:
		ev.Kind, ev.Reason = display.Offline, money.OfflineText
	default:
		ev.Kind, ev.Reason = display.Declined, money.DeclineReason(o)
	}
	return ev
}

// staleLocked reports whether a newer version of the charge than c was
// committed: the lane's copy, or the journal's when the lane no longer
// holds the charge.
func (s *Service) staleLocked(l *lane, c *money.Charge) bool {
	if mem := l.charges[c.ID]; mem != nil {
		return mem.Version > c.Version
	}
	var stored money.Charge
	_ = s.opt.Journal.View(func(tx *journal.Tx) error {
		stored, _, _ = tx.Charge(c.ID)
		return nil
	})
	return stored.Version > c.Version
}

// adoptLocked takes a charge as the journal committed it into the lane's
// copy and returns the copy.
func adoptLocked(l *lane, c money.Charge) *money.Charge {
	mem := l.charges[c.ID]
	if mem == nil {
		return &c
	}
	*mem = c
	return mem
}

// lateLocked: the lane has moved on to another charge (this one needed
// attention and freed it): its customer is gone, and the lane's displays
// belong to the next one. The till hears of it.
func (s *Service) lateLocked(l *lane, c *money.Charge, o *money.Order, ev display.Event) {
	s.log.Warn("late result of charge "+c.ID, zap.String("lane", c.Lane), zap.String("mch_trade_id", o.MchTradeID),
		zap.String("charge_state", string(c.State)), zap.String("attempt_state", string(o.State)))
	ev.Result, ev.Kind = ev.Kind, display.LateResult
	ev.Reason = "late result of charge " + c.ID + ": " + string(c.State)
	s.publish(ev)
	if s.opt.OnLate != nil {
		s.opt.OnLate(string(c.State))
	}
	if c.State != money.NeedsAttention {
		delete(l.charges, c.ID)
	}
}

// settledLocked moves the lane on after its charge's new state: waiting
// for another code, or free for the next customer.
func (s *Service) settledLocked(l *lane, c *money.Charge) {
	switch c.State {
	case money.AwaitingScan:
		l.charges[c.ID] = c
		s.publish(display.Event{Lane: c.Lane, Kind: display.AwaitingScan, ChargeID: c.ID, TotalFee: c.TotalFee})
	default:
		s.releaseLocked(l, c)
		if c.State == money.NeedsAttention {
			l.charges[c.ID] = c
			// The lane is freed for the next customer: this charge's
			// result, when it comes, is late (on a fixed-fee lane the
			// next customer owes the same amount).
			if l.current == c.ID {
				l.current = ""
			}
		}
		s.idleLocked(l)
	}
}
