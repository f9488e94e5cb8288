package lane

import (
	"fmt"
	"time"

	"example.com/posd/internal/defect"
	"example.com/posd/internal/journal"
	"example.com/posd/internal/money"
)

// byReference finds the charge the lane opened with the same till
// reference within the window: the till that lost the reply opens again
// and gets the first (with other parameters: refused, like an
// Idempotency-Key). A charge that ended without a payment (canceled,
// expired) no longer holds its reference: the sale is still to be paid,
// and opening it again is a new charge. Nor does a charge dated in the
// future: a clock that ran ahead wrote it, and it is another sale.
func (s *Service) byReference(req OpenRequest) (money.Charge, bool, error) {
	if req.Reference == "" {
		return money.Charge{}, false, nil
	}
	var prev money.Charge
	var found bool
	err := s.opt.Journal.View(func(tx *journal.Tx) error {
		var err error
		prev, found, err = tx.ChargeByReference(req.Lane, req.Reference)
		return err
	})
	if err != nil || !found || !s.within("charge", prev.ID, prev.CreatedAt, s.referenceWindow()) || prev.State == money.Canceled && !defect.On(defect.CanceledKeepsReference) {
		return money.Charge{}, false, err
	}
	if prev.TotalFee != req.TotalFee {
		return money.Charge{}, false, Invalid("reference", "reference %q is charge %s of %d fen", req.Reference, prev.ID, prev.TotalFee)
	}
	return prev, true, nil
}

func (s *Service) referenceWindow() time.Duration {
	if s.opt.ReferenceWindow > 0 {
		return s.opt.ReferenceWindow
	}
	return DefaultReferenceWindow
}

// DefaultReferenceWindow is how long a till's reference names one charge
// of a lane (charges.reference_window).
const DefaultReferenceWindow = 7 * 24 * time.Hour

// ByReference is the charge a lane opened last with a till's reference
// (every configured lane when lane is "").
func (s *Service) ByReference(lane, ref string) ([]View, error) {
	lanes := []string{lane}
	if lane == "" {
		lanes = s.laneIDs()
	} else if s.lanes[lane] == nil {
		return nil, fmt.Errorf("%w: lane %q", ErrNotFound, lane)
	}
	var out []View
	for _, id := range lanes {
		var c money.Charge
		var found bool
		if err := s.opt.Journal.View(func(tx *journal.Tx) error {
			var err error
			c, found, err = tx.ChargeByReference(id, ref)
			return err
		}); err != nil {
			return nil, err
		}
		if found {
			v, err := s.Get(c.ID)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
	}
	return out, nil
}

// Last is the charge a lane opened last: what a till that lost the reply
// of a scan or an open asks for.
func (s *Service) Last(lane string) (View, error) {
	if s.lanes[lane] == nil {
		return View{}, fmt.Errorf("%w: lane %q", ErrNotFound, lane)
	}
	var c money.Charge
	var found bool
	if err := s.opt.Journal.View(func(tx *journal.Tx) error {
		var err error
		c, found, err = tx.LastCharge(lane)
		return err
	}); err != nil {
		return View{}, err
	}
	if !found {
		return View{}, fmt.Errorf("%w: lane %s has had no charge", ErrNotFound, lane)
	}
	return s.Get(c.ID)
}
