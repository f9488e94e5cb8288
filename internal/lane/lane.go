package lane

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"example.com/posd/display"
	"example.com/posd/internal/money"
	"example.com/posd/scanner"
)

// Config is one lane's settings.
type Config struct {
	ID         string
	DeviceInfo string
	FixedFee   int64
	MaxFee     int64
	Subject    string
	Body       string
	ChargeTTL  time.Duration
}

// DefaultChargeTTL is how long a charge waits for a code when the lane
// sets no charge_ttl.
const DefaultChargeTTL = 10 * time.Minute

// lane is one lane's state, all under its lock.
type lane struct {
	mu   sync.Mutex
	cfg  Config
	open string // the charge that holds the lane
	// current is the charge the lane's customer displays are about: the
	// open one, or the last one the lane had. A result of any other
	// charge is late: it goes to the till, never to a customer display.
	current string
	dedup   *scanner.Dedup
	timer   *time.Timer
	lines   *time.Timer                       // ends the till's lines on the displays
	charges map[string]*money.Charge          // not final, or needing attention
	orders  map[string]*money.Order           // live orders, by mch_trade_id
	watch   map[string]map[chan struct{}]bool // each waiter's channel, closed when its charge changes
}

func newLane(c Config, dedup time.Duration) *lane {
	if c.ChargeTTL <= 0 {
		c.ChargeTTL = DefaultChargeTTL
	}
	return &lane{cfg: c, dedup: scanner.NewDedup(dedup), charges: map[string]*money.Charge{},
		orders: map[string]*money.Order{}, watch: map[string]map[chan struct{}]bool{}}
}

func (s *Service) laneIDs() []string {
	ids := make([]string, 0, len(s.lanes))
	for id := range s.lanes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// show publishes the lane's current state.
func (s *Service) show(id string) {
	l := s.lanes[id]
	l.mu.Lock()
	defer l.mu.Unlock()
	e := display.Event{Lane: id, Kind: display.Idle}
	oos, _ := s.status()
	switch {
	case oos != "":
		e.Kind, e.Reason = display.OutOfService, oos
	case l.open != "":
		c := l.charges[l.open]
		e.ChargeID, e.TotalFee = c.ID, c.TotalFee
		e.Kind = display.AwaitingScan
		if c.State == money.Paying {
			// Shown exactly as before a restart: the attempt's wallet and id.
			e.Kind = display.Paying
			if n := len(c.AttemptIDs); n > 0 {
				if o := l.orders[c.AttemptIDs[n-1]]; o != nil {
					e.Wallet, e.MchTradeID = o.Wallet, o.MchTradeID
				}
			}
		}
	case l.cfg.FixedFee > 0:
		e.Kind, e.TotalFee, e.FixedFee = display.AwaitingScan, l.cfg.FixedFee, true
	}
	s.publish(e)
}

// Info is a lane as the till sees it.
type Info struct {
	Config
	InService    bool
	OutOfService string
	Charge       *View // the open charge, if any
	Sandbox      bool
}

// Lane returns a lane and its open charge.
func (s *Service) Lane(id string) (Info, error) {
	l := s.lanes[id]
	if l == nil {
		return Info{}, fmt.Errorf("%w: lane %q", ErrNotFound, id)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	oos, _ := s.status()
	out := Info{Config: l.cfg, InService: oos == "", OutOfService: oos, Sandbox: s.opt.Sandbox}
	out.ID = id
	if l.open != "" {
		v := s.viewLocked(l, l.charges[l.open])
		out.Charge = &v
	}
	return out, nil
}

// Lanes lists the lanes.
func (s *Service) Lanes() []Info {
	var out []Info
	for _, id := range s.laneIDs() {
		l, _ := s.Lane(id)
		out = append(out, l)
	}
	return out
}

// DeviceChanged tells the lane's displays (the cashier's side) that a
// device came or went.
func (s *Service) DeviceChanged(lane, what string) {
	s.publish(display.Event{Lane: lane, Kind: display.Device, Reason: what})
}

// UpdateLanes applies new settings (fixed fee, max fee, subject, body,
// charge TTL) to the lanes that have no charge open, and returns the ids of
// those in use, which keep their settings.
func (s *Service) UpdateLanes(cfgs []Config) (busy []string) {
	for _, c := range cfgs {
		l := s.lanes[c.ID]
		if l == nil {
			continue
		}
		if c.ChargeTTL <= 0 {
			c.ChargeTTL = DefaultChargeTTL
		}
		l.mu.Lock()
		switch {
		case l.cfg == c:
		case l.open != "":
			busy = append(busy, c.ID)
		default:
			l.cfg = c
			s.idleLocked(l)
		}
		l.mu.Unlock()
	}
	return busy
}

// idleLocked shows a free lane as ready (or as due its fixed fee).
func (s *Service) idleLocked(l *lane) {
	if l == s.retired || l.open != "" {
		return
	}
	id := l.cfg.ID
	e := display.Event{Lane: id, Kind: display.Idle}
	if oos, _ := s.status(); oos != "" {
		e.Kind, e.Reason = display.OutOfService, oos
	} else if l.cfg.FixedFee > 0 {
		e.Kind, e.TotalFee, e.FixedFee = display.AwaitingScan, l.cfg.FixedFee, true
	}
	s.publish(e)
}
