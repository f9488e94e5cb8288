package checkout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"example.com/posd/display"
	"example.com/posd/internal/journal"
	"example.com/posd/internal/money"
	"example.com/posd/poller"
	"example.com/posd/scanner"
)

// Options wire a Service.
type Options struct {
	Journal     *journal.Journal
	Poller      *poller.Poller
	Hub         *display.Hub
	Router      *scanner.Router
	Lanes       []LaneConfig
	StoreID     string
	ClientIP    string
	Sandbox     bool
	DedupWindow time.Duration
	Log         *zap.Logger
	// OnLate, if set, is told of each late result (its charge's state).
	OnLate func(state string)
}

// Service owns the lanes and their charges.
type Service struct {
	opt Options
	log *zap.Logger

	mu      sync.Mutex
	lanes   map[string]*lane
	charges map[string]*money.Charge          // charges that are not final
	watch   map[string]map[chan struct{}]bool // each waiter's channel, closed when its charge changes
	orders  map[string]*money.Order           // live orders, by mch_trade_id
	oos     string                            // why the lanes are out of service
	offline string                            // why the gateway cannot be reached
}

// New builds the service; Start resumes it from the journal.
func New(opt Options) *Service {
	if opt.Log == nil {
		opt.Log = zap.NewNop()
	}
	if opt.DedupWindow == 0 {
		opt.DedupWindow = 10 * time.Second
	}
	s := &Service{
		opt:     opt,
		log:     opt.Log,
		lanes:   map[string]*lane{},
		charges: map[string]*money.Charge{},
		watch:   map[string]map[chan struct{}]bool{},
		orders:  map[string]*money.Order{},
	}
	for _, lc := range opt.Lanes {
		if lc.ChargeTTL <= 0 {
			lc.ChargeTTL = 10 * time.Minute
		}
		s.lanes[lc.ID] = &lane{cfg: lc, dedup: scanner.NewDedup(opt.DedupWindow)}
	}
	return s
}

// Start loads the charges that are not final with their latest attempts,
// and shows every lane. A journal of an older posd may hold a charge behind
// its attempt (the two were written apart, and a crash fell between): the
// step is journaled again, which moves the charge by the same rule.
func (s *Service) Start() error {
	var charges []money.Charge
	orders := map[string]money.Order{}
	err := s.opt.Journal.View(func(tx *journal.Tx) error {
		// The journal's live index: open charges and those needing
		// attention, without reading the years of final ones.
		if err := tx.EachLiveCharge(func(c money.Charge) error {
			charges = append(charges, c)
			return nil
		}); err != nil {
			return err
		}
		for _, c := range charges {
			if n := len(c.AttemptIDs); n > 0 {
				o, ok, err := tx.Order(c.AttemptIDs[n-1])
				if err != nil {
					return err
				} else if ok {
					orders[o.MchTradeID] = o
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("checkout: load charges: %w", err)
	}
	s.mu.Lock()
	for i := range charges {
		c := &charges[i]
		s.charges[c.ID] = c
		if l := s.lanes[c.Lane]; l != nil && c.Open() {
			l.open, l.current = c.ID, c.ID
			s.armExpiry(l, c)
		}
	}
	behind := map[string]bool{}
	for id, o := range orders {
		if o.Active() {
			oc := o
			s.orders[id] = &oc
		}
		if c := s.charges[o.ChargeID]; c != nil {
			cc := *c
			behind[id] = money.Settle(&cc, &o, time.Now())
		}
	}
	s.mu.Unlock()
	for id, o := range orders {
		if behind[id] {
			s.resettle(o)
		}
	}
	for _, l := range s.laneIDs() {
		s.showLane(l)
	}
	return nil
}

// resettle journals an order's step again, with its charge.
func (s *Service) resettle(o money.Order) {
	var st money.Settled
	err := s.opt.Journal.Update(func(tx *journal.Tx) error {
		var err error
		st, err = tx.SaveStep(&o, time.Now())
		return err
	})
	if err != nil {
		s.log.Error("journal: charge not brought in step with its attempt", zap.String("mch_trade_id", o.MchTradeID), zap.Error(err))
		return
	}
	s.OrderUpdated(o, st)
}

// publish sends a lane event to the displays.
func (s *Service) publish(e display.Event) {
	e.Sandbox = s.opt.Sandbox
	if s.opt.Hub != nil {
		s.opt.Hub.Publish(e)
	}
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
		s.outOfServiceLocked(err)
		return false
	}
	if now.ID != "" && now.Version >= c.Version {
		*c = now
	}
	return changed
}

func (s *Service) changedLocked(id string) {
	for ch := range s.watch[id] {
		close(ch)
	}
	delete(s.watch, id)
}

func (s *Service) chargeLocked(id string) (*money.Charge, error) {
	if c, ok := s.charges[id]; ok {
		return c, nil
	}
	var c money.Charge
	var found bool
	err := s.opt.Journal.View(func(tx *journal.Tx) error {
		var err error
		c, found, err = tx.Charge(id)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("%w: charge %q", ErrNotFound, id)
	}
	return &c, nil
}

// Get returns a charge with its attempts.
func (s *Service) Get(id string) (ChargeView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.chargeLocked(id)
	if err != nil {
		return ChargeView{}, err
	}
	return s.viewLocked(c), nil
}

// Wait returns the charge once it changes, or when d or ctx ends.
func (s *Service) Wait(ctx context.Context, id string, d time.Duration) (ChargeView, error) {
	s.mu.Lock()
	if _, err := s.chargeLocked(id); err != nil {
		s.mu.Unlock()
		return ChargeView{}, err
	}
	ch := make(chan struct{})
	if s.watch[id] == nil {
		s.watch[id] = map[chan struct{}]bool{}
	}
	s.watch[id][ch] = true
	s.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-ctx.Done():
	}
	s.mu.Lock()
	// A waiter that timed out leaves no trace: a final charge may never
	// change again.
	if w := s.watch[id]; w != nil {
		delete(w, ch)
		if len(w) == 0 {
			delete(s.watch, id)
		}
	}
	s.mu.Unlock()
	return s.Get(id)
}

func (s *Service) viewLocked(c *money.Charge) ChargeView {
	v := ChargeView{Charge: *c, Attempts: []Attempt{}, Sandbox: s.opt.Sandbox}
	for _, id := range c.AttemptIDs {
		if o, ok := s.orders[id]; ok {
			v.Attempts = append(v.Attempts, AttemptOf(o))
			continue
		}
		var o money.Order
		_ = s.opt.Journal.View(func(tx *journal.Tx) error {
			o, _, _ = tx.Order(id)
			return nil
		})
		if o.MchTradeID != "" {
			v.Attempts = append(v.Attempts, AttemptOf(&o))
		}
	}
	v.Charge.AttemptIDs = slices.Clone(c.AttemptIDs)
	return v
}

// InService reports whether payments can be taken, and why not.
func (s *Service) InService() (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.oos == "", s.oos
}

// JournalError takes the lanes out of service while the journal cannot be
// written (err non-nil) and back in when it can.
func (s *Service) JournalError(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		if s.oos == "" {
			return
		}
		s.oos = ""
		s.log.Info("journal writable again: lanes back in service")
		for id, l := range s.lanes {
			if l.open == "" {
				s.idleLocked(id)
			}
		}
		return
	}
	s.outOfServiceLocked(err)
}

func (s *Service) outOfServiceLocked(err error) {
	if !errors.Is(err, journal.ErrUnwritable) {
		return
	}
	if s.oos == "" {
		s.log.Error("journal not writable: lanes out of service", zap.Error(err))
	}
	s.oos = "journal not writable: no payment can be recorded"
	if strings.Contains(err.Error(), "damaged") {
		s.oos = "journal damaged (read-only): no payment can be recorded"
	}
	for id := range s.lanes {
		s.publish(display.Event{Lane: id, Kind: display.OutOfService, Reason: s.oos})
	}
}

// Resolve is an operator's decision on an order that needs attention.
func (s *Service) Resolve(id string, paid bool, by, why string) (Attempt, error) {
	o, err := s.opt.Poller.Resolve(id, paid, by, why, time.Now())
	if err != nil {
		if errors.Is(err, poller.ErrBusy) || errors.Is(err, poller.ErrNotResolvable) {
			return Attempt{}, fmt.Errorf("%w: %v", ErrConflict, err)
		}
		return Attempt{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return AttemptOf(&o), nil
}
