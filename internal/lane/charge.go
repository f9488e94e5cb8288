package lane

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"example.com/posd/display"
	"example.com/posd/internal/journal"
	"example.com/posd/internal/money"
	"example.com/posd/payment"
	"example.com/posd/poller"
)

// OpenRequest is what a till asks a lane for: an amount and what it is for.
type OpenRequest struct {
	Lane           string
	TotalFee       int64
	Subject        string
	Body           string
	Attach         string
	OpUserID       string
	Shift          string
	GoodsTag       string
	IdempotencyKey string
	Reference      string // the till's sale id
}

// View is a charge with its attempts, oldest first.
type View struct {
	Charge   money.Charge
	Attempts []money.Order
	Sandbox  bool
}

// MaxTotalFee bounds one charge (100 million yuan): far above any lane,
// far below where sums of a day's charges could overflow.
const MaxTotalFee = 10_000_000_000

// The till's texts' limits, in bytes: a sale's reference and a shift are
// stored with every charge and refund, a refund's id and reason are sent
// to the gateway.
const (
	MaxReference = 64
	MaxShift     = 32
	MaxRefundID  = 64
	MaxReason    = 256
	MaxOpUserID  = 32
)

// Open opens a charge on a lane. With an idempotency key that was used
// before, it returns that charge (created false) instead.
func (s *Service) Open(req OpenRequest) (View, bool, error) {
	now := s.now()
	l := s.lanes[req.Lane]
	if l == nil {
		return View{}, false, fmt.Errorf("%w: lane %q", ErrNotFound, req.Lane)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if req.IdempotencyKey != "" {
		var prev money.Charge
		found := false
		err := s.opt.Journal.View(func(tx *journal.Tx) error {
			var err error
			prev, found, err = tx.ChargeByKey(req.IdempotencyKey)
			return err
		})
		if err != nil {
			return View{}, false, err
		}
		if found && !s.future("charge", prev.ID, prev.CreatedAt) {
			if prev.Lane != req.Lane || prev.TotalFee != req.TotalFee {
				return View{}, false, Invalid("Idempotency-Key", "Idempotency-Key already used for charge %s with other parameters", prev.ID)
			}
			if c := l.charges[prev.ID]; c != nil {
				prev = *c
			}
			return s.viewLocked(l, &prev), false, nil
		}
	}
	if len(req.Reference) > MaxReference || payment.CleanText(req.Reference, MaxReference) != req.Reference {
		return View{}, false, Invalid("reference", "reference: at most %d bytes of printable text", MaxReference)
	}
	if len(req.Shift) > MaxShift || payment.CleanText(req.Shift, MaxShift) != req.Shift {
		return View{}, false, Invalid("shift", "shift: at most %d bytes of printable text", MaxShift)
	}
	if prev, found, err := s.byReference(req); err != nil || found {
		if err != nil {
			return View{}, false, err
		}
		if c := l.charges[prev.ID]; c != nil {
			prev = *c
		}
		return s.viewLocked(l, &prev), false, nil
	}
	if err := s.payable(l, req); err != nil {
		return View{}, false, err
	}
	oos, _ := s.status()
	switch {
	case req.TotalFee <= 0:
		return View{}, false, Invalid("total_fee", "total_fee must be a positive number of fen")
	case req.TotalFee > MaxTotalFee:
		return View{}, false, Invalid("total_fee", "total_fee %d is over %d fen", req.TotalFee, int64(MaxTotalFee))
	case l.cfg.MaxFee > 0 && req.TotalFee > l.cfg.MaxFee:
		return View{}, false, Invalid("total_fee", "total_fee %d is over the lane's max_fee %d", req.TotalFee, l.cfg.MaxFee)
	case oos != "":
		return View{}, false, fmt.Errorf("%w: %s", ErrOutOfService, oos)
	case l.open != "":
		return View{}, false, fmt.Errorf("%w: lane %s has charge %s open", ErrConflict, l.cfg.ID, l.open)
	}
	c := &money.Charge{
		Lane: req.Lane, TotalFee: req.TotalFee, Subject: req.Subject, Body: req.Body,
		Attach: req.Attach, OpUserID: req.OpUserID, Shift: req.Shift, GoodsTag: req.GoodsTag,
		State: money.AwaitingScan, IdempotencyKey: req.IdempotencyKey, Reference: req.Reference,
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(l.cfg.ChargeTTL), AttemptIDs: []string{},
	}
	if err := s.opt.Journal.Update(func(tx *journal.Tx) error {
		c.ID = newChargeID()
		return tx.OpenCharge(c)
	}); err != nil {
		s.outOfService(err)
		return View{}, false, fmt.Errorf("%w: %v", ErrOutOfService, err)
	}
	l.charges[c.ID] = c
	l.open, l.current = c.ID, c.ID
	stopLinesLocked(l)
	s.armExpiry(l, c)
	changedLocked(l, c.ID)
	s.publish(display.Event{Lane: c.Lane, Kind: display.AwaitingScan, ChargeID: c.ID, TotalFee: c.TotalFee})
	return s.viewLocked(l, c), true, nil
}

// newChargeID names a charge with 100 random bits: a charge id is what the
// API's routes take, and must not be guessed from a receipt (whose order
// id holds the journal's epoch and counter).
func newChargeID() string {
	var b [13]byte
	_, _ = rand.Read(b[:])
	return "CH" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])[:20]
}

// armExpiry cancels an unscanned charge at its expiry.
func (s *Service) armExpiry(l *lane, c *money.Charge) {
	if l.timer != nil {
		l.timer.Stop()
	}
	id := c.ID
	// An expiry further off than a charge lives was set by a clock that
	// ran ahead: the charge lives its time from now instead.
	l.timer = time.AfterFunc(min(c.ExpiresAt.Sub(s.now()), l.cfg.ChargeTTL), func() { s.expire(l, id) })
}

// expire cancels the charge if, as stored, it still waits for a code: the
// lane's copy may be behind a step that just gave the charge back to the
// lane (a decline committed while this timer fired).
func (s *Service) expire(l *lane, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.charges[id]
	if c == nil || (c.State != money.AwaitingScan && c.State != money.Paying) {
		return
	}
	s.cancelLocked(l, c, "expired: no payment code was scanned in time", false)
}

// find returns the lane a charge belongs to, locked (the caller unlocks
// it), and the charge: the lane's copy, or the journal's.
func (s *Service) find(id string) (*lane, *money.Charge, error) {
	for _, l := range s.all() {
		l.mu.Lock()
		if c := l.charges[id]; c != nil {
			return l, c, nil
		}
		l.mu.Unlock()
	}
	var c money.Charge
	var found bool
	err := s.opt.Journal.View(func(tx *journal.Tx) error {
		var err error
		c, found, err = tx.Charge(id)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if !found {
		return nil, nil, fmt.Errorf("%w: charge %q", ErrNotFound, id)
	}
	l := s.laneOf(c.Lane)
	l.mu.Lock()
	if mc := l.charges[id]; mc != nil { // it came back meanwhile (a scan, a start)
		return l, mc, nil
	}
	// Read again under the lane's lock: a step that committed since the
	// first read tells the lane only after this lock is released, so a
	// long-poll that registers now hears of every later change.
	_ = s.opt.Journal.View(func(tx *journal.Tx) error {
		if now, ok, _ := tx.Charge(id); ok {
			c = now
		}
		return nil
	})
	return l, &c, nil
}

// Get returns a charge with its attempts.
func (s *Service) Get(id string) (View, error) {
	l, c, err := s.find(id)
	if err != nil {
		return View{}, err
	}
	defer l.mu.Unlock()
	return s.viewLocked(l, c), nil
}

// Seen is what a till last saw of a charge: its version, or its state.
type Seen struct {
	Version uint64
	State   money.State
}

// movedOn reports whether a long-poll answers at once: the charge changed
// since what the till saw, or, if it says nothing, the charge is final.
// at is the charge's version when the long-poll began: a till that gave a
// state hears of a charge that left it and came back (a quick decline).
func (seen Seen) movedOn(c *money.Charge, at uint64) bool {
	switch {
	case seen.Version > 0:
		return c.Version != seen.Version
	case seen.State != "":
		return c.State != seen.State || at > 0 && c.Version != at
	}
	switch c.State {
	case money.Paid, money.Canceled, money.Refunded, money.PartiallyRefunded:
		return true
	}
	return false
}

// Wait returns the charge once it moves on from what the till saw (its
// version or its state), or when d or ctx ends; at once if it has. A till
// that says nothing hears of the next change of any kind, an attempt's
// progress too. One rule for the till: with version, the answer comes when
// the charge's version changes, never earlier with the same version.
func (s *Service) Wait(ctx context.Context, id string, d time.Duration, seen Seen) (View, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	var at uint64
	for woke := false; ; woke = true {
		l, c, err := s.find(id)
		if err != nil {
			return View{}, err
		}
		if at == 0 {
			at = c.Version
		}
		if seen.movedOn(c, at) || woke && seen == (Seen{}) {
			defer l.mu.Unlock()
			return s.viewLocked(l, c), nil
		}
		ch := make(chan struct{})
		if l.watch[id] == nil {
			l.watch[id] = map[chan struct{}]bool{}
		}
		l.watch[id][ch] = true
		l.mu.Unlock()
		ended := false
		select {
		case <-ch:
		case <-t.C:
			ended = true
		case <-ctx.Done():
			ended = true
		}
		if ended {
			l.mu.Lock()
			// A waiter that timed out leaves no trace: a final charge may
			// never change again.
			if w := l.watch[id]; w != nil {
				delete(w, ch)
				if len(w) == 0 {
					delete(l.watch, id)
				}
			}
			l.mu.Unlock()
			return s.Get(id)
		}
	}
}

// changedLocked wakes the till's long-polls of a charge.
func changedLocked(l *lane, id string) {
	for ch := range l.watch[id] {
		close(ch)
	}
	delete(l.watch, id)
}

func (s *Service) viewLocked(l *lane, c *money.Charge) View {
	v := View{Charge: *c, Attempts: []money.Order{}, Sandbox: s.opt.Sandbox}
	// The attempts from the journal, not the lane's copy: a step commits
	// before the lane hears of it, and a charge read from the journal must
	// not come with an attempt as it was (a refund confirmed, its attempt
	// shown "paid"). The charge stays the lane's: it says what the lane
	// holds, so a till told "paid" can open the next sale at once; for the
	// moment between a step's commit and the lane hearing of it, the last
	// attempt may be final while its charge is still paying.
	_ = s.opt.Journal.View(func(tx *journal.Tx) error {
		for _, id := range v.Charge.AttemptIDs {
			if o, ok, _ := tx.Order(id); ok {
				v.Attempts = append(v.Attempts, o)
			}
		}
		return nil
	})
	v.Charge.AttemptIDs = slices.Clone(v.Charge.AttemptIDs)
	return v
}

// updateChargeLocked changes a charge as the journal holds it: fn sees the
// committed charge (a step may have moved it since the lane's copy was
// taken) and returns false to leave it. The lane's copy follows. It
// reports whether fn changed the charge and the change was journaled.
func (s *Service) updateChargeLocked(c *money.Charge, fn func(*money.Charge) bool) bool {
	var changed bool
	var now money.Charge
	err := s.opt.Journal.Batch(func(tx *journal.Tx) error {
		var err error
		now, _, err = tx.UpdateCharge(c.ID, func(sc *money.Charge) bool {
			changed = fn(sc)
			return changed
		})
		return err
	})
	if err != nil {
		s.log.Error("journal: charge not saved", zap.String("charge", c.ID), zap.Error(err))
		s.outOfService(err)
		return false
	}
	if now.ID != "" && now.Version >= c.Version {
		*c = now
	}
	return changed
}

// Cancel cancels a charge. One being paid is stopped: posd reverses the
// payment at once, and the charge ends canceled — or paid, if the payment
// completed first (the view's state stays paying until then). It decides
// on the charge as stored: the lane's copy may be behind a step.
func (s *Service) Cancel(id string) (View, error) {
	l, c, err := s.find(id)
	if err != nil {
		return View{}, err
	}
	defer l.mu.Unlock()
	was := c.State
	if was == money.AwaitingScan || was == money.Paying {
		s.cancelLocked(l, c, "canceled by the till", true)
	}
	switch c.State {
	case money.Canceled:
	case money.Paid, money.NeedsAttention:
		if was != money.Paying && was != money.AwaitingScan {
			return View{}, fmt.Errorf("%w: charge %s is %s", ErrConflict, id, c.State)
		}
		// The payment ended first: the till is told how.
	case money.Paying:
		if err := s.abortLocked(l, c); err != nil {
			return View{}, err
		}
	default:
		return View{}, fmt.Errorf("%w: charge %s is %s", ErrConflict, id, c.State)
	}
	return s.viewLocked(l, c), nil
}

// abortLocked stops the payment of a charge the till canceled while it was
// being paid (cancelLocked journaled the request first, so that a restart
// in between still stops it).
func (s *Service) abortLocked(l *lane, c *money.Charge) error {
	if len(c.AttemptIDs) == 0 {
		return fmt.Errorf("%w: charge %s has no attempt to stop", ErrConflict, c.ID)
	}
	last := c.AttemptIDs[len(c.AttemptIDs)-1]
	// The poller tells OrderUpdated, which takes the lane's lock.
	l.mu.Unlock()
	err := s.opt.Poller.Abort(last, time.Now())
	l.mu.Lock()
	if err != nil && !errors.Is(err, poller.ErrNotInFlight) {
		return fmt.Errorf("%w: %v", ErrConflict, err)
	}
	changedLocked(l, c.ID)
	return nil
}

// ResumeAborts stops again, after a restart, the payments the till had
// stopped: call it once the poller has resumed its orders.
func (s *Service) ResumeAborts() {
	for _, l := range s.all() {
		l.mu.Lock()
		var ids []string
		for id, c := range l.charges {
			if c.State == money.Paying && c.Aborting {
				ids = append(ids, id)
			}
		}
		for _, id := range ids {
			if c := l.charges[id]; c != nil && c.State == money.Paying && c.Aborting {
				_ = s.abortLocked(l, c)
			}
		}
		l.mu.Unlock()
	}
}

// cancelLocked cancels a charge as stored: one waiting for a code ends
// canceled; one being paid, if stop, is marked for its payment to be
// stopped (the till's abort), and ends canceled or paid by its attempt;
// any other is left as it is. The lane's copy follows the journal's.
func (s *Service) cancelLocked(l *lane, c *money.Charge, reason string, stop bool) {
	now := s.now()
	s.updateChargeLocked(c, func(sc *money.Charge) bool {
		switch {
		case sc.State == money.AwaitingScan:
			sc.State, sc.Reason, sc.UpdatedAt = money.Canceled, reason, now
		case sc.State == money.Paying && stop && !sc.Aborting:
			sc.Aborting, sc.Reason, sc.UpdatedAt = true, "stopping the payment ("+reason+")", now
		default:
			return false
		}
		return true
	})
	if c.State != money.Canceled {
		changedLocked(l, c.ID)
		return
	}
	s.releaseLocked(l, c)
	s.publish(display.Event{Lane: c.Lane, Kind: display.Canceled, ChargeID: c.ID, TotalFee: c.TotalFee, Reason: reason})
	s.idleLocked(l)
}

// releaseLocked frees the lane a charge held and forgets a final charge.
func (s *Service) releaseLocked(l *lane, c *money.Charge) {
	if l.open == c.ID {
		l.open = ""
		if l.timer != nil {
			l.timer.Stop()
		}
	}
	if !c.Open() && c.State != money.NeedsAttention {
		delete(l.charges, c.ID)
	}
	changedLocked(l, c.ID)
}

// Reprint asks the lane's printers for the receipt of a paid or refunded
// charge again.
func (s *Service) Reprint(id string) (View, error) {
	l, c, err := s.find(id)
	if err != nil {
		return View{}, err
	}
	defer l.mu.Unlock()
	if (c.State != money.Paid && c.State != money.Refunded && c.State != money.PartiallyRefunded) || len(c.AttemptIDs) == 0 {
		return View{}, fmt.Errorf("%w: charge %s is %s; only a paid or refunded charge has a receipt", ErrConflict, id, c.State)
	}
	v := s.viewLocked(l, c)
	if len(v.Attempts) == 0 { // its orders pruned a moment ago, the charge next
		return View{}, fmt.Errorf("%w: charge %s is past retention: its orders are pruned", ErrNotFound, id)
	}
	a := v.Attempts[len(v.Attempts)-1]
	s.publish(display.Event{Lane: c.Lane, Kind: display.Reprint, ChargeID: c.ID, TotalFee: c.TotalFee, Wallet: a.Wallet,
		MchTradeID: a.MchTradeID, TradeID: a.TradeID, OutTradeID: a.OutTradeID})
	return v, nil
}

// Resolve is an operator's decision on an order that needs attention.
func (s *Service) Resolve(id string, d poller.Decision) (money.Order, error) {
	o, err := s.opt.Poller.Resolve(id, d, time.Now())
	if err != nil {
		switch {
		case errors.Is(err, poller.ErrBusy), errors.Is(err, poller.ErrNotResolvable):
			return money.Order{}, fmt.Errorf("%w: %v", ErrConflict, err)
		case errors.Is(err, poller.ErrNoOrder):
			return money.Order{}, fmt.Errorf("%w: %v", ErrNotFound, err)
		case strings.Contains(err.Error(), "refunded_fee"):
			return money.Order{}, Invalid("refunded_fee", "%v", err)
		case strings.Contains(err.Error(), "who and why"):
			return money.Order{}, Invalid("by", "%v", err)
		}
		return money.Order{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return o, nil
}
