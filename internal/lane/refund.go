package lane

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"example.com/posd/internal/defect"
	"example.com/posd/internal/journal"
	"example.com/posd/internal/money"
	"example.com/posd/poller"
)

// RefundRequest is what a till asks of a refund.
type RefundRequest struct {
	RefundFee int64 // fen; 0: all that is left
	// RefundID is the till's id for the refund (its refund_id or its
	// Idempotency-Key): the same id again is the same refund, at posd
	// and at the gateway. Required unless Rest.
	RefundID string
	// Rest: the refund of all that is left (POST …/refund), under an id
	// of its own.
	Rest     bool
	Reason   string
	OpUserID string
	Shift    string
}

// Refund refunds what is left of a paid charge, as one refund.
func (s *Service) Refund(id string) (View, error) {
	if _, _, err := s.RefundCharge(id, RefundRequest{Rest: true}); err != nil {
		return View{}, err
	}
	return s.Get(id)
}

// RefundCharge asks for a refund of a paid charge: journaled before it is
// sent, then confirmed with refund_query, like a pay. Its mch_refund_id
// follows the till's id for it, so that a refund asked again (after a
// crash, a restore) is the same refund here and at the gateway: one known
// returns that refund (created false). What the gateway would refuse
// (more than is left, too many refunds, too late) is refused here, before
// anything is sent.
func (s *Service) RefundCharge(id string, req RefundRequest) (money.Refund, bool, error) {
	if req.RefundID == "" && !req.Rest {
		return money.Refund{}, false, Invalid("refund_id", "refund_id is required (or an Idempotency-Key): the till's id for the refund, which makes asking again safe")
	}
	l, c, err := s.find(id)
	if err != nil {
		return money.Refund{}, false, err
	}
	charge := *c
	l.mu.Unlock()
	refunds, paid, err := s.refundsAndPaid(&charge)
	if err != nil {
		return money.Refund{}, false, err
	}
	mch := poller.RefundIDFor(paid.MchTradeID, req.RefundID)
	switch {
	case defect.On(defect.RefundIDByCount): // numbered by the count a restored journal rewinds, as before
		mch = poller.RefundIDN(paid.MchTradeID, len(refunds)+1)
	case req.Rest:
		mch = poller.RestRefundID(paid.MchTradeID)
	}
	if r, ok, err := known(refunds, mch, req); ok || err != nil {
		return r, false, err
	}
	if err := s.refundable(&charge, paid, len(refunds), req); err != nil {
		return money.Refund{}, false, err
	}
	r := money.Refund{MchRefundID: mch, RefundID: req.RefundID, RefundFee: req.RefundFee, Reason: req.Reason, OpUserID: req.OpUserID, Shift: req.Shift}
	// The poller tells OrderUpdated of the refund's start, which takes the
	// lane's lock.
	if _, err := s.opt.Poller.StartRefund(paid.MchTradeID, &r, time.Now()); err != nil {
		switch {
		case errors.Is(err, poller.ErrRefundExists): // asked twice at once
			if refunds, _, err = s.refundsAndPaid(&charge); err != nil {
				return money.Refund{}, false, err
			}
			r, _, err := known(refunds, mch, req)
			return r, false, err
		case errors.Is(err, poller.ErrRefundExceeds):
			return money.Refund{}, false, fmt.Errorf("%w: %v", ErrInvalid, err)
		case errors.Is(err, poller.ErrBusy):
			return money.Refund{}, false, fmt.Errorf("%w: a refund or a step of charge %s is in progress: ask again when it ends", ErrConflict, id)
		}
		return money.Refund{}, false, fmt.Errorf("%w: %v", ErrConflict, err)
	}
	if r.RefundID == "" {
		r.RefundID = r.MchRefundID
	}
	return r, true, nil
}

// known finds the refund recorded under mch, or under the till's id by
// an older posd; a different amount under the same till id is refused.
func known(refunds []money.Refund, mch string, req RefundRequest) (money.Refund, bool, error) {
	for _, r := range refunds {
		if r.MchRefundID != mch && (req.RefundID == "" || r.RefundID != req.RefundID) {
			continue
		}
		if req.RefundFee != 0 && req.RefundFee != r.RefundFee {
			return money.Refund{}, false, Invalid("refund_id", "refund_id %s was used for a refund of %d fen", cmp.Or(req.RefundID, r.MchRefundID), r.RefundFee)
		}
		return r, true, nil
	}
	return money.Refund{}, false, nil
}

// refundsAndPaid reads a charge's refunds and its paid attempt.
func (s *Service) refundsAndPaid(c *money.Charge) ([]money.Refund, money.Order, error) {
	var refunds []money.Refund
	var paid money.Order
	err := s.opt.Journal.View(func(tx *journal.Tx) error {
		stored, ok, err := tx.Charge(c.ID)
		if err != nil || !ok {
			return err
		}
		*c = stored // the committed charge decides
		if refunds, err = tx.RefundsOf(c); err != nil {
			return err
		}
		if n := len(c.AttemptIDs); n > 0 {
			paid, _, err = tx.Order(c.AttemptIDs[n-1])
		}
		return err
	})
	return refunds, paid, err
}

// refundable checks a new refund against the charge and the gateway's
// limits.
func (s *Service) refundable(c *money.Charge, paid money.Order, n int, req RefundRequest) error {
	left := c.TotalFee - c.RefundedFee
	switch {
	case c.State != money.Paid && c.State != money.PartiallyRefunded || paid.State != money.Paid:
		return fmt.Errorf("%w: charge %s is %s; only a paid charge is refunded", ErrConflict, c.ID, c.State)
	case req.RefundFee < 0:
		return Invalid("refund_fee", "refund_fee must be a positive number of fen")
	case req.RefundFee > left+paid.RefundedElsewhere: // up to that, it may be one the operator counted, asked again
		return Invalid("refund_fee", "refund_fee %d is more than the %d fen left of %d paid", req.RefundFee, left, c.TotalFee)
	case len(req.RefundID) > MaxRefundID:
		return Invalid("refund_id", "refund_id: at most %d bytes", MaxRefundID)
	case len(req.Reason) > MaxReason:
		return Invalid("reason", "reason: at most %d bytes", MaxReason)
	case len(req.Shift) > MaxShift:
		return Invalid("shift", "shift: at most %d bytes", MaxShift)
	case len(req.OpUserID) > MaxOpUserID:
		return Invalid("op_user_id", "op_user_id: at most %d bytes", MaxOpUserID)
	case s.opt.RefundMaxCount > 0 && n >= s.opt.RefundMaxCount:
		return fmt.Errorf("%w: charge %s has had %d refunds, the gateway's most (refunds.max_per_order)", ErrInvalid, c.ID, n)
	case s.future("order", paid.MchTradeID, paid.CreatedAt):
		// Invalid, not a conflict: asking again changes nothing until the
		// clock passes that date.
		return fmt.Errorf("%w: charge %s was paid at %s, later than this box's clock (%s): the clock is or was wrong, and refunds.max_age cannot be judged; set the clock right, or refund from the merchant platform",
			ErrInvalid, c.ID, paid.CreatedAt.UTC().Format(time.RFC3339), s.now().UTC().Format(time.RFC3339))
	case s.opt.RefundMaxAge > 0 && !s.opt.Clock.Within(paid.CreatedAt, s.opt.RefundMaxAge):
		return fmt.Errorf("%w: charge %s was paid %s ago; the gateway refunds within %s (refunds.max_age)", ErrInvalid, c.ID,
			s.now().Sub(paid.CreatedAt).Round(time.Hour), s.opt.RefundMaxAge)
	}
	return nil
}

// Refunds lists a charge's refunds, oldest first.
func (s *Service) Refunds(id string) ([]money.Refund, error) {
	l, c, err := s.find(id)
	if err != nil {
		return nil, err
	}
	charge := *c
	l.mu.Unlock()
	refunds, _, err := s.refundsAndPaid(&charge)
	for i := range refunds {
		if refunds[i].RefundID == "" {
			refunds[i].RefundID = refunds[i].MchRefundID
		}
	}
	return refunds, err
}

// RefundOf is one refund of a charge, by the till's refund_id or posd's
// mch_refund_id.
func (s *Service) RefundOf(id, refundID string) (money.Refund, error) {
	refunds, err := s.Refunds(id)
	if err != nil {
		return money.Refund{}, err
	}
	for _, r := range refunds {
		if r.RefundID == refundID || r.MchRefundID == refundID {
			return r, nil
		}
	}
	return money.Refund{}, fmt.Errorf("%w: charge %s has no refund %q", ErrNotFound, id, refundID)
}
