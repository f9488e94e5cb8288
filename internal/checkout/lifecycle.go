package checkout

import (
	"errors"
	"fmt"
	"time"

	"example.com/posd/display"
	"example.com/posd/internal/journal"
	"example.com/posd/internal/money"
	"example.com/posd/poller"
)

// OpenRequest is POST /v1/charges.
type OpenRequest struct {
	Lane           string `json:"lane"`
	TotalFee       int64  `json:"total_fee"`
	Subject        string `json:"subject"`
	Body           string `json:"body"`
	Attach         string `json:"attach"`
	OpUserID       string `json:"op_user_id"`
	GoodsTag       string `json:"goods_tag"`
	IdempotencyKey string `json:"-"`
}

// Open opens a charge on a lane. With an idempotency key that was used
// before, it returns that charge (created false) instead.
func (s *Service) Open(req OpenRequest) (ChargeView, bool, error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.lanes[req.Lane]
	if l == nil {
		return ChargeView{}, false, fmt.Errorf("%w: lane %q", ErrNotFound, req.Lane)
	}
	if req.IdempotencyKey != "" {
		var prev money.Charge
		found := false
		err := s.opt.Journal.View(func(tx *journal.Tx) error {
			var err error
			prev, found, err = tx.ChargeByKey(req.IdempotencyKey)
			return err
		})
		if err != nil {
			return ChargeView{}, false, err
		}
		if found {
			if prev.Lane != req.Lane || prev.TotalFee != req.TotalFee {
				return ChargeView{}, false, fmt.Errorf("%w: Idempotency-Key already used for charge %s with other parameters", ErrInvalid, prev.ID)
			}
			return s.viewLocked(&prev), false, nil
		}
	}
	if err := s.payable(l, req); err != nil {
		return ChargeView{}, false, err
	}
	switch {
	case req.TotalFee <= 0:
		return ChargeView{}, false, fmt.Errorf("%w: total_fee must be a positive number of fen", ErrInvalid)
	case req.TotalFee > MaxTotalFee:
		return ChargeView{}, false, fmt.Errorf("%w: total_fee %d is over %d fen", ErrInvalid, req.TotalFee, int64(MaxTotalFee))
	case l.cfg.MaxFee > 0 && req.TotalFee > l.cfg.MaxFee:
		return ChargeView{}, false, fmt.Errorf("%w: total_fee %d is over the lane's max_fee %d", ErrInvalid, req.TotalFee, l.cfg.MaxFee)
	case s.oos != "":
		return ChargeView{}, false, fmt.Errorf("%w: %s", ErrOutOfService, s.oos)
	case l.open != "":
		return ChargeView{}, false, fmt.Errorf("%w: lane %s has charge %s open", ErrConflict, l.cfg.ID, l.open)
	}
	c := &money.Charge{
		Lane: req.Lane, TotalFee: req.TotalFee, Subject: req.Subject, Body: req.Body,
		Attach: req.Attach, OpUserID: req.OpUserID, GoodsTag: req.GoodsTag,
		State: money.AwaitingScan, IdempotencyKey: req.IdempotencyKey,
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(l.cfg.ChargeTTL), AttemptIDs: []string{},
	}
	if err := s.opt.Journal.Update(func(tx *journal.Tx) error {
		c.ID = newChargeID()
		return tx.OpenCharge(c)
	}); err != nil {
		s.outOfServiceLocked(err)
		return ChargeView{}, false, fmt.Errorf("%w: %v", ErrOutOfService, err)
	}
	s.charges[c.ID] = c
	l.open, l.current = c.ID, c.ID
	s.armExpiry(l, c)
	s.changedLocked(c.ID)
	s.publish(display.Event{Lane: c.Lane, Kind: display.AwaitingScan, ChargeID: c.ID, TotalFee: c.TotalFee})
	return s.viewLocked(c), true, nil
}

// armExpiry cancels an unscanned charge at its expiry.
func (s *Service) armExpiry(l *lane, c *money.Charge) {
	if l.timer != nil {
		l.timer.Stop()
	}
	id := c.ID
	l.timer = time.AfterFunc(time.Until(c.ExpiresAt), func() { s.expire(id) })
}

func (s *Service) expire(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.charges[id]
	if c == nil || c.State != money.AwaitingScan {
		return // paying: the attempt decides; it is canceled after if unpaid
	}
	s.cancelLocked(c, "expired: no payment code was scanned in time")
}

// Cancel cancels a charge. One being paid is stopped: posd reverses the
// payment at once, and the charge ends canceled — or paid, if the payment
// completed first (the view's state stays paying until then).
func (s *Service) Cancel(id string) (ChargeView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.chargeLocked(id)
	if err != nil {
		return ChargeView{}, err
	}
	switch c.State {
	case money.AwaitingScan:
		s.cancelLocked(c, "canceled by the till")
	case money.Canceled:
	case money.Paying:
		if err := s.abortLocked(c); err != nil {
			return ChargeView{}, err
		}
	default:
		return ChargeView{}, fmt.Errorf("%w: charge %s is %s", ErrConflict, id, c.State)
	}
	return s.viewLocked(c), nil
}

func (s *Service) abortLocked(c *money.Charge) error {
	if len(c.AttemptIDs) == 0 {
		return fmt.Errorf("%w: charge %s has no attempt to stop", ErrConflict, c.ID)
	}
	if !c.Aborting {
		// Journaled first: a restart in between still stops the payment.
		s.updateChargeLocked(c, func(sc *money.Charge) bool {
			if sc.State != money.Paying || sc.Aborting {
				return false
			}
			sc.Aborting, sc.Reason, sc.UpdatedAt = true, "stopping the payment (the till asked)", time.Now()
			return true
		})
	}
	if c.State != money.Paying {
		s.changedLocked(c.ID) // its payment ended a moment ago: the view says how
		return nil
	}
	last := c.AttemptIDs[len(c.AttemptIDs)-1]
	// The poller tells OrderUpdated, which takes s.mu.
	s.mu.Unlock()
	err := s.opt.Poller.Abort(last, time.Now())
	s.mu.Lock()
	if err != nil && !errors.Is(err, poller.ErrNotInFlight) {
		return fmt.Errorf("%w: %v", ErrConflict, err)
	}
	s.changedLocked(c.ID)
	return nil
}

// ResumeAborts stops again, after a restart, the payments the till had
// stopped: call it once the poller has resumed its orders.
func (s *Service) ResumeAborts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.charges {
		if c.State == money.Paying && c.Aborting {
			_ = s.abortLocked(c)
		}
	}
}

func (s *Service) cancelLocked(c *money.Charge, reason string) {
	if !s.updateChargeLocked(c, func(sc *money.Charge) bool {
		if sc.State != money.AwaitingScan {
			return false // a scan or a step got there first
		}
		sc.State, sc.Reason, sc.UpdatedAt = money.Canceled, reason, time.Now()
		return true
	}) {
		return
	}
	s.releaseLocked(c)
	s.publish(display.Event{Lane: c.Lane, Kind: display.Canceled, ChargeID: c.ID, TotalFee: c.TotalFee, Reason: reason})
	s.idleLocked(c.Lane)
}

// releaseLocked frees the lane a charge held and forgets a final charge.
func (s *Service) releaseLocked(c *money.Charge) {
	if l := s.lanes[c.Lane]; l != nil && l.open == c.ID {
		l.open = ""
		if l.timer != nil {
			l.timer.Stop()
		}
	}
	if !c.Open() && c.State != money.NeedsAttention {
		delete(s.charges, c.ID)
	}
	s.changedLocked(c.ID)
}

// idleLocked shows a free lane as ready (or as due its fixed fee).
func (s *Service) idleLocked(id string) {
	l := s.lanes[id]
	if l == nil || l.open != "" {
		return
	}
	e := display.Event{Lane: id, Kind: display.Idle}
	if s.oos != "" {
		e.Kind, e.Reason = display.OutOfService, s.oos
	} else if l.cfg.FixedFee > 0 {
		e.Kind, e.TotalFee = display.AwaitingScan, l.cfg.FixedFee
	}
	s.publish(e)
}

// Reprint asks the lane's printers for the receipt of a paid or refunded
// charge again.
func (s *Service) Reprint(id string) (ChargeView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.chargeLocked(id)
	if err != nil {
		return ChargeView{}, err
	}
	if (c.State != money.Paid && c.State != money.Refunded) || len(c.AttemptIDs) == 0 {
		return ChargeView{}, fmt.Errorf("%w: charge %s is %s; only a paid or refunded charge has a receipt", ErrConflict, id, c.State)
	}
	v := s.viewLocked(c)
	if len(v.Attempts) == 0 { // its orders pruned a moment ago, the charge next
		return ChargeView{}, fmt.Errorf("%w: charge %s is past retention: its orders are pruned", ErrNotFound, id)
	}
	a := v.Attempts[len(v.Attempts)-1]
	s.publish(display.Event{Lane: c.Lane, Kind: display.Reprint, ChargeID: c.ID, TotalFee: c.TotalFee, Wallet: a.Wallet,
		MchTradeID: a.MchTradeID, TradeID: a.TradeID, OutTradeID: a.OutTradeID})
	return v, nil
}
