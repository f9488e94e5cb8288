package checkout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"example.com/posd/display"
	"example.com/posd/internal/journal"
	"example.com/posd/poller"
	"example.com/posd/scanner"
)

// LaneConfig is one checkout.
type LaneConfig struct {
	ID         string
	DeviceInfo string
	FixedFee   int64
	MaxFee     int64
	Subject    string
	Body       string
	ChargeTTL  time.Duration
}

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
	charges map[string]*Charge                // charges that are not final
	watch   map[string]map[chan struct{}]bool // each waiter's channel, closed when its charge changes
	orders  map[string]*poller.Order          // live orders, by mch_trade_id
	oos     string                            // why the lanes are out of service
	offline string                            // why the gateway cannot be reached
}

type lane struct {
	cfg  LaneConfig
	open string // the charge that holds the lane
	// current is the charge the lane's customer displays are about: the
	// open one, or the last one the lane had. A result of any other
	// charge is late: it goes to the till, never to a customer display.
	current string
	dedup   *scanner.Dedup
	timer   *time.Timer
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
		charges: map[string]*Charge{},
		watch:   map[string]map[chan struct{}]bool{},
		orders:  map[string]*poller.Order{},
	}
	for _, lc := range opt.Lanes {
		if lc.ChargeTTL <= 0 {
			lc.ChargeTTL = 10 * time.Minute
		}
		s.lanes[lc.ID] = &lane{cfg: lc, dedup: scanner.NewDedup(opt.DedupWindow)}
	}
	return s
}

// Start loads the charges that are not final, squares each with its latest
// attempt (a crash may fall between the two writes) and shows every lane.
func (s *Service) Start() error {
	var charges []Charge
	orders := map[string]poller.Order{}
	err := s.opt.Journal.View(func(tx *journal.Tx) error {
		// The journal's live index: open charges and those needing
		// attention, without reading the years of final ones.
		if err := tx.ForEachLive(journal.Charges, func(_ string, v []byte) error {
			var c Charge
			if err := json.Unmarshal(v, &c); err != nil {
				return err
			}
			if c.open() || c.State == NeedsAttention {
				charges = append(charges, c)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, c := range charges {
			if n := len(c.AttemptIDs); n > 0 {
				var o poller.Order
				if ok, err := tx.Get(journal.Orders, c.AttemptIDs[n-1], &o); err != nil {
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
		if l := s.lanes[c.Lane]; l != nil && c.open() {
			l.open, l.current = c.ID, c.ID
			s.armExpiry(l, c)
		}
	}
	for id, o := range orders {
		if o.Active() {
			oc := o
			s.orders[id] = &oc
		}
	}
	s.mu.Unlock()
	for _, o := range orders {
		s.OrderUpdated(o)
	}
	for _, l := range s.laneIDs() {
		s.showLane(l)
	}
	return nil
}

func (s *Service) laneIDs() []string {
	ids := make([]string, 0, len(s.lanes))
	for id := range s.lanes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// publish sends a lane event to the displays.
func (s *Service) publish(e display.Event) {
	e.Sandbox = s.opt.Sandbox
	if s.opt.Hub != nil {
		s.opt.Hub.Publish(e)
	}
}

// showLane publishes the lane's current state.
func (s *Service) showLane(id string) {
	s.mu.Lock()
	l := s.lanes[id]
	e := display.Event{Lane: id, Kind: display.Idle}
	switch {
	case s.oos != "":
		e.Kind, e.Reason = display.OutOfService, s.oos
	case l.open != "":
		c := s.charges[l.open]
		e.ChargeID, e.TotalFee = c.ID, c.TotalFee
		e.Kind = display.AwaitingScan
		if c.State == Paying {
			// Shown exactly as before a restart: the attempt's wallet and id.
			e.Kind = display.Paying
			if n := len(c.AttemptIDs); n > 0 {
				if o := s.orders[c.AttemptIDs[n-1]]; o != nil {
					e.Wallet, e.MchTradeID = o.Wallet, o.MchTradeID
				}
			}
		}
	case l.cfg.FixedFee > 0:
		e.Kind, e.TotalFee = display.AwaitingScan, l.cfg.FixedFee
	}
	s.mu.Unlock()
	s.publish(e)
}

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
		var prev Charge
		found := false
		err := s.opt.Journal.View(func(tx *journal.Tx) error {
			id, ok := tx.GetString(journal.Idem, req.IdempotencyKey)
			if !ok {
				return nil
			}
			found = true
			_, err := tx.Get(journal.Charges, id, &prev)
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
	c := &Charge{
		Lane: req.Lane, TotalFee: req.TotalFee, Subject: req.Subject, Body: req.Body,
		Attach: req.Attach, OpUserID: req.OpUserID, GoodsTag: req.GoodsTag,
		State: AwaitingScan, IdempotencyKey: req.IdempotencyKey,
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(l.cfg.ChargeTTL), AttemptIDs: []string{},
	}
	if err := s.opt.Journal.Update(func(tx *journal.Tx) error {
		c.ID = newChargeID()
		if req.IdempotencyKey != "" {
			if err := tx.PutString(journal.Idem, req.IdempotencyKey, c.ID); err != nil {
				return err
			}
		}
		return tx.Put(journal.Charges, c.ID, c)
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
func (s *Service) armExpiry(l *lane, c *Charge) {
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
	if c == nil || c.State != AwaitingScan {
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
	case AwaitingScan:
		s.cancelLocked(c, "canceled by the till")
	case Canceled:
	case Paying:
		if err := s.abortLocked(c); err != nil {
			return ChargeView{}, err
		}
	default:
		return ChargeView{}, fmt.Errorf("%w: charge %s is %s", ErrConflict, id, c.State)
	}
	return s.viewLocked(c), nil
}

func (s *Service) abortLocked(c *Charge) error {
	if len(c.AttemptIDs) == 0 {
		return fmt.Errorf("%w: charge %s has no attempt to stop", ErrConflict, c.ID)
	}
	if !c.Aborting {
		// Journaled first: a restart in between still stops the payment.
		c.Aborting, c.Reason, c.UpdatedAt = true, "stopping the payment (the till asked)", time.Now()
		s.saveLocked(c)
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
		if c.State == Paying && c.Aborting {
			_ = s.abortLocked(c)
		}
	}
}

func (s *Service) cancelLocked(c *Charge, reason string) {
	c.State, c.Reason, c.UpdatedAt = Canceled, reason, time.Now()
	s.saveLocked(c)
	s.releaseLocked(c)
	s.publish(display.Event{Lane: c.Lane, Kind: display.Canceled, ChargeID: c.ID, TotalFee: c.TotalFee, Reason: reason})
	s.idleLocked(c.Lane)
}

// releaseLocked frees the lane a charge held and forgets a final charge.
func (s *Service) releaseLocked(c *Charge) {
	if l := s.lanes[c.Lane]; l != nil && l.open == c.ID {
		l.open = ""
		if l.timer != nil {
			l.timer.Stop()
		}
	}
	if !c.open() && c.State != NeedsAttention {
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

func (s *Service) saveLocked(c *Charge) {
	err := s.opt.Journal.Batch(func(tx *journal.Tx) error { return tx.Put(journal.Charges, c.ID, c) })
	if err != nil {
		s.log.Error("journal: charge not saved", zap.String("charge", c.ID), zap.Error(err))
		s.outOfServiceLocked(err)
	}
}

func (s *Service) changedLocked(id string) {
	for ch := range s.watch[id] {
		close(ch)
	}
	delete(s.watch, id)
}

func (s *Service) chargeLocked(id string) (*Charge, error) {
	if c, ok := s.charges[id]; ok {
		return c, nil
	}
	var c Charge
	var found bool
	err := s.opt.Journal.View(func(tx *journal.Tx) error {
		var err error
		found, err = tx.Get(journal.Charges, id, &c)
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

func (s *Service) viewLocked(c *Charge) ChargeView {
	v := ChargeView{Charge: *c, Attempts: []Attempt{}, Sandbox: s.opt.Sandbox}
	for _, id := range c.AttemptIDs {
		if o, ok := s.orders[id]; ok {
			v.Attempts = append(v.Attempts, AttemptOf(o))
			continue
		}
		var o poller.Order
		_ = s.opt.Journal.View(func(tx *journal.Tx) error {
			_, err := tx.Get(journal.Orders, id, &o)
			return err
		})
		if o.MchTradeID != "" {
			v.Attempts = append(v.Attempts, AttemptOf(&o))
		}
	}
	v.Charge.AttemptIDs = slices.Clone(c.AttemptIDs)
	return v
}

// Lane is GET /v1/lanes/{lane}.
type Lane struct {
	ID           string      `json:"id"`
	DeviceInfo   string      `json:"device_info"`
	FixedFee     int64       `json:"fixed_fee,omitempty"`
	MaxFee       int64       `json:"max_fee,omitempty"`
	InService    bool        `json:"in_service"`
	OutOfService string      `json:"out_of_service,omitempty"`
	Charge       *ChargeView `json:"charge"`
	Sandbox      bool        `json:"sandbox,omitempty"`
}

// Lane returns a lane and its open charge.
func (s *Service) Lane(id string) (Lane, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.lanes[id]
	if l == nil {
		return Lane{}, fmt.Errorf("%w: lane %q", ErrNotFound, id)
	}
	out := Lane{ID: id, DeviceInfo: l.cfg.DeviceInfo, FixedFee: l.cfg.FixedFee, MaxFee: l.cfg.MaxFee,
		InService: s.oos == "", OutOfService: s.oos, Sandbox: s.opt.Sandbox}
	if l.open != "" {
		v := s.viewLocked(s.charges[l.open])
		out.Charge = &v
	}
	return out, nil
}

// Lanes lists the lanes.
func (s *Service) Lanes() []Lane {
	var out []Lane
	for _, id := range s.laneIDs() {
		l, _ := s.Lane(id)
		out = append(out, l)
	}
	return out
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

// Orders lists orders; unresolved only when asked.
func (s *Service) Orders(unresolved bool, limit int) ([]Attempt, error) {
	var out []Attempt
	err := s.opt.Journal.View(func(tx *journal.Tx) error {
		return tx.ForEach(journal.Orders, func(_ string, v []byte) error {
			var o poller.Order
			if err := json.Unmarshal(v, &o); err != nil {
				return err
			}
			if unresolved && !o.Unresolved() {
				return nil
			}
			out = append(out, AttemptOf(&o))
			return nil
		})
	})
	slices.SortFunc(out, func(a, b Attempt) int { return b.CreatedAt.Compare(a.CreatedAt) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	if out == nil {
		out = []Attempt{}
	}
	return out, err
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
	if (c.State != Paid && c.State != Refunded) || len(c.AttemptIDs) == 0 {
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

// DeviceChanged tells the lane's displays (the cashier's side) that a
// device came or went.
func (s *Service) DeviceChanged(lane, what string) {
	s.publish(display.Event{Lane: lane, Kind: display.Device, Reason: what})
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

// Report is GET /v1/report: counts and totals of a day's final attempts,
// per wallet and state.
type ReportRow struct {
	Wallet string       `json:"wallet"`
	State  poller.State `json:"state"`
	Count  int          `json:"count"`
	Total  int64        `json:"total_fee"`
}

// Report adds up the attempts created on day (local time).
func (s *Service) Report(day time.Time) ([]ReportRow, error) {
	from := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.Local)
	to := from.AddDate(0, 0, 1)
	rows := map[string]*ReportRow{}
	var overflow error
	err := s.eachOrder(func(o *poller.Order) {
		if overflow != nil || o.CreatedAt.Before(from) || !o.CreatedAt.Before(to) {
			return
		}
		k := o.Wallet + "/" + string(o.State)
		r := rows[k]
		if r == nil {
			r = &ReportRow{Wallet: o.Wallet, State: o.State}
			rows[k] = r
		}
		// A wrapped sum would be a plausible wrong number on a day's
		// accounts: no report at all is better.
		sum := r.Total + o.TotalFee
		if (o.TotalFee > 0 && sum < r.Total) || (o.TotalFee < 0 && sum > r.Total) {
			overflow = fmt.Errorf("report %s: the %s total overflows int64 fen (order %s of %d fen)",
				from.Format("2006-01-02"), k, o.MchTradeID, o.TotalFee)
			return
		}
		r.Count++
		r.Total = sum
	})
	if overflow != nil {
		return nil, overflow
	}
	out := make([]ReportRow, 0, len(rows))
	for _, r := range rows {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b ReportRow) int {
		if a.Wallet != b.Wallet {
			return strings.Compare(a.Wallet, b.Wallet)
		}
		return strings.Compare(string(a.State), string(b.State))
	})
	return out, err
}

// Export returns the attempts created in [from, to).
func (s *Service) Export(from, to time.Time) ([]Attempt, error) {
	var out []Attempt
	err := s.eachOrder(func(o *poller.Order) {
		if !o.CreatedAt.Before(from) && o.CreatedAt.Before(to) {
			a := AttemptOf(o)
			a.TotalFee, a.Lane, a.ChargeID, a.Resolution, a.FinishedAt = o.TotalFee, o.Lane, o.ChargeID, o.Resolution, o.FinishedAt
			out = append(out, a)
		}
	})
	slices.SortFunc(out, func(a, b Attempt) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, err
}

func (s *Service) eachOrder(fn func(*poller.Order)) error {
	return s.opt.Journal.View(func(tx *journal.Tx) error {
		return tx.ForEach(journal.Orders, func(_ string, v []byte) error {
			var o poller.Order
			if err := json.Unmarshal(v, &o); err != nil {
				return err
			}
			fn(&o)
			return nil
		})
	})
}

// Prune deletes what was final before cutoff: orders (and their code's
// index entry) and charges whose every attempt is gone, with their
// idempotency keys. Unresolved orders and open charges are never pruned.
// It reads the journal's index of final records, oldest first, and deletes
// in small transactions that hold no lane: a year of history to prune
// costs time, never a payment's wait. It returns how many orders and
// charges went.
func (s *Service) Prune(cutoff time.Time) (orders, charges int, err error) {
	orders, err = s.pruneBucket(journal.Orders, cutoff, pruneOrder)
	if err != nil {
		return orders, 0, err
	}
	charges, err = s.pruneBucket(journal.Charges, cutoff, pruneCharge)
	return orders, charges, err
}

// PruneBatch is how many records one pruning transaction looks at.
const PruneBatch = 100

// pruneBucket deletes, batch by batch, the records of bucket final before
// cutoff that one agrees to delete; the rest are stepped over.
func (s *Service) pruneBucket(bucket string, cutoff time.Time, one func(*journal.Tx, string) (bool, error)) (int, error) {
	total, after := 0, ""
	for {
		var ids []string
		err := s.opt.Journal.Update(func(tx *journal.Tx) error {
			var next string
			ids, next = tx.DoneBefore(bucket, cutoff, after, PruneBatch)
			for _, id := range ids {
				gone, err := one(tx, id)
				if err != nil {
					return err
				}
				if gone {
					total++
				}
			}
			if next != "" {
				after = next
			}
			return nil
		})
		s.opt.Journal.Trim() // the batch's old pages leave posd's memory
		if err != nil || len(ids) < PruneBatch {
			return total, err
		}
	}
}

// pruneOrder deletes a final order and its code's index entry.
func pruneOrder(tx *journal.Tx, id string) (bool, error) {
	var o poller.Order
	if ok, err := tx.Get(journal.Orders, id, &o); err != nil || !ok {
		return false, err
	}
	if !o.Final() {
		return false, nil // the index is only a hint: the record decides
	}
	if err := tx.Delete(journal.Orders, id); err != nil {
		return false, err
	}
	if cid, ok := tx.GetString(journal.Codes, o.CodeSHA256); ok && cid == id {
		return true, tx.Delete(journal.Codes, o.CodeSHA256)
	}
	return true, nil
}

// pruneCharge deletes a final charge none of whose attempts is kept.
func pruneCharge(tx *journal.Tx, id string) (bool, error) {
	var c Charge
	if ok, err := tx.Get(journal.Charges, id, &c); err != nil || !ok {
		return false, err
	}
	if c.open() || c.State == NeedsAttention {
		return false, nil
	}
	for _, a := range c.AttemptIDs {
		if ok, _ := tx.Get(journal.Orders, a, &poller.Order{}); ok {
			return false, nil // an attempt is still kept
		}
	}
	if err := tx.Delete(journal.Charges, c.ID); err != nil {
		return false, err
	}
	if c.IdempotencyKey != "" {
		if err := tx.Delete(journal.Idem, c.IdempotencyKey); err != nil {
			return false, err
		}
	}
	return true, nil
}

// UpdateLanes applies new settings (fixed fee, max fee, subject, body,
// charge TTL) to the lanes that have no charge open, and returns the ids of
// those in use, which keep their settings.
func (s *Service) UpdateLanes(cfgs []LaneConfig) (busy []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range cfgs {
		l := s.lanes[c.ID]
		if l == nil || l.cfg == c {
			continue
		}
		if l.open != "" {
			busy = append(busy, c.ID)
			continue
		}
		if c.ChargeTTL <= 0 {
			c.ChargeTTL = 10 * time.Minute
		}
		l.cfg = c
		s.idleLocked(c.ID)
	}
	return busy
}
