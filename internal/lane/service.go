package lane

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"example.com/posd/display"
	"example.com/posd/internal/clock"
	"example.com/posd/internal/defect"
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
	Lanes       []Config
	StoreID     string
	ClientIP    string
	Sandbox     bool
	DedupWindow time.Duration
	Log         *zap.Logger
	// OnLate, if set, is told of each late result (its charge's state).
	OnLate func(state string)
	// The gateway's limits on refunding a payment (0: none).
	RefundMaxCount int
	RefundMaxAge   time.Duration
	// ReferenceWindow: how long a till's reference names one charge of a
	// lane (0: DefaultReferenceWindow).
	ReferenceWindow time.Duration
	// Clock dates the records and judges their windows (nil: the wall
	// clock, trusted as it is).
	Clock *clock.Clock
	// OnFuture, if set, is told of a record dated in the future that a
	// window stepped over: a sign of a clock fault.
	OnFuture func(kind, id string, at time.Time)
}

// Service is the store's lanes.
type Service struct {
	opt   Options
	log   *zap.Logger
	lanes map[string]*lane // the configured lanes; the set is fixed at New
	// retired holds the charges of lanes no longer configured, found in
	// the journal: they settle, nothing new starts on them.
	retired *lane

	mu      sync.Mutex // oos and offline only
	oos     string     // why the lanes are out of service
	offline string     // why the gateway cannot be reached
}

// FieldError is an ErrInvalid that names the request field at fault, as
// the till sent it (total_fee, refund_id, Idempotency-Key…), so that a
// till can show it beside the field.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return ErrInvalid.Error() + ": " + e.Msg }
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Invalid is the error of field's value refused; the message says why in
// words a till developer can act on.
func Invalid(field, format string, a ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// Errors the API maps to status codes.
var (
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrInvalid      = errors.New("invalid")
	ErrOutOfService = errors.New("out of service")
	// ErrCodeUsed: the code was submitted before, under another attempt.
	ErrCodeUsed = errors.New("payment code already used")
	// ErrOffline: the gateway cannot be reached; a scan is refused before
	// the code is taken, so the customer was not charged and may pay
	// otherwise.
	ErrOffline = fmt.Errorf("%w: offline — not charged (gateway unreachable): take another payment method", ErrOutOfService)
)

// New builds the service; Start resumes it from the journal.
func New(opt Options) *Service {
	if opt.Log == nil {
		opt.Log = zap.NewNop()
	}
	if opt.DedupWindow == 0 {
		opt.DedupWindow = 10 * time.Second
	}
	if opt.Clock == nil {
		opt.Clock = clock.New(time.Time{}, nil)
	}
	s := &Service{opt: opt, log: opt.Log, lanes: map[string]*lane{}, retired: newLane(Config{}, opt.DedupWindow)}
	for _, lc := range opt.Lanes {
		s.lanes[lc.ID] = newLane(lc, opt.DedupWindow)
	}
	return s
}

// laneOf is the lane a charge or an order of lane id belongs to.
func (s *Service) laneOf(id string) *lane {
	if l := s.lanes[id]; l != nil {
		return l
	}
	return s.retired
}

// all is every lane, the retired one last.
func (s *Service) all() []*lane {
	out := make([]*lane, 0, len(s.lanes)+1)
	for _, id := range s.laneIDs() {
		out = append(out, s.lanes[id])
	}
	return append(out, s.retired)
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
		return fmt.Errorf("lane: load charges: %w", err)
	}
	for i := range charges {
		c := &charges[i]
		l := s.laneOf(c.Lane)
		l.mu.Lock()
		l.charges[c.ID] = c
		if l != s.retired && c.Open() {
			l.open, l.current = c.ID, c.ID
			s.armExpiry(l, c)
		}
		l.mu.Unlock()
	}
	var behind []money.Order
	for _, o := range orders {
		l := s.laneOf(o.Lane)
		l.mu.Lock()
		if o.Active() {
			oc := o
			l.orders[o.MchTradeID] = &oc
		}
		if c := l.charges[o.ChargeID]; c != nil {
			cc := *c
			if money.Settle(&cc, &o, s.now()) {
				behind = append(behind, o)
			}
		}
		l.mu.Unlock()
	}
	for _, o := range behind {
		s.resettle(o)
	}
	for _, id := range s.laneIDs() {
		s.show(id)
	}
	return nil
}

// resettle journals an order's step again, with its charge.
func (s *Service) resettle(o money.Order) {
	var st money.Settled
	err := s.opt.Journal.Update(func(tx *journal.Tx) error {
		var err error
		st, err = tx.SaveStep(&o, s.now())
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

// status is why the lanes are out of service and why the gateway cannot
// be reached ("" when they are not).
func (s *Service) status() (oos, offline string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.oos, s.offline
}

// InService reports whether payments can be taken, and why not.
func (s *Service) InService() (bool, string) {
	oos, _ := s.status()
	return oos == "", oos
}

// Offline reports why the gateway cannot be reached ("" when it can).
func (s *Service) Offline() string {
	_, off := s.status()
	return off
}

// JournalError is told when the journal cannot be written (err), or can
// be again (nil).
func (s *Service) JournalError(err error) {
	if err != nil {
		s.outOfService(err)
		return
	}
	s.mu.Lock()
	was := s.oos
	s.oos = ""
	s.mu.Unlock()
	if was == "" {
		return
	}
	s.log.Info("journal writable again: lanes back in service")
	for _, id := range s.laneIDs() {
		l := s.lanes[id]
		l.mu.Lock()
		s.idleLocked(l)
		l.mu.Unlock()
	}
}

// outOfService takes every lane out of service after a journal write
// failed: no payment is taken without its record. It takes no lane's
// lock, so a lane may call it holding its own.
func (s *Service) outOfService(err error) {
	if !errors.Is(err, journal.ErrUnwritable) {
		return
	}
	why := "journal not writable: no payment can be recorded"
	if strings.Contains(err.Error(), "damaged") {
		why = "journal damaged (read-only): no payment can be recorded"
	}
	s.mu.Lock()
	if s.oos == "" {
		s.log.Error("journal not writable: lanes out of service", zap.Error(err))
	}
	s.oos = why
	s.mu.Unlock()
	for _, id := range s.laneIDs() {
		s.publish(display.Event{Lane: id, Kind: display.OutOfService, Reason: why})
	}
}

// GatewayState is told when the gateway becomes unreachable (up false) or
// reachable again. While it is down a scan is refused at once: nothing is
// sent, nothing is charged.
func (s *Service) GatewayState(up bool, reason string) {
	s.mu.Lock()
	was := s.offline
	if up {
		s.offline = ""
	} else {
		s.offline = reason
		if s.offline == "" {
			s.offline = "gateway unreachable"
		}
	}
	now := s.offline
	s.mu.Unlock()
	if (was == "") == (now == "") {
		return
	}
	what := "gateway reachable again: taking payments"
	if !up {
		what = "OFFLINE — " + now + ": scans are refused, not charged; take another payment method"
		s.log.Warn("gateway unreachable: scans refused until it is back", zap.String("reason", now))
	} else {
		s.log.Info("gateway reachable again")
	}
	for _, id := range s.laneIDs() {
		s.publish(display.Event{Lane: id, Kind: display.Device, Reason: what})
	}
}

// now is the wall clock, as the lanes date their records. What is handed
// to the poller is dated by the runtime's clock instead: the poller
// schedules by it, and its readings carry the monotonic clock, which a
// step of the wall clock does not move.
func (s *Service) now() time.Time { return s.opt.Clock.Now() }

// within says whether a record of kind dated at is inside a window of
// length d (Clock.Within); one from the future is reported.
func (s *Service) within(kind, id string, at time.Time, d time.Duration) bool {
	return !s.future(kind, id, at) && s.opt.Clock.Within(at, d)
}

// future says whether a record is dated in the future, and reports it.
func (s *Service) future(kind, id string, at time.Time) bool {
	if defect.On(defect.OneSidedWindow) {
		return false
	}
	if s.opt.Clock.Future(at) {
		s.log.Warn("a record is dated in the future: the clock is or was wrong; it binds nothing",
			zap.String("kind", kind), zap.String("id", id), zap.Time("dated", at), zap.Time("now", s.now()))
		if s.opt.OnFuture != nil {
			s.opt.OnFuture(kind, id, at)
		}
		return true
	}
	return false
}
