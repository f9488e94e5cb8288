package checkout

import (
	"fmt"
	"slices"
	"time"

	"example.com/posd/display"
	"example.com/posd/internal/money"
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

func (s *Service) laneIDs() []string {
	ids := make([]string, 0, len(s.lanes))
	for id := range s.lanes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
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
		if c.State == money.Paying {
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

// DeviceChanged tells the lane's displays (the cashier's side) that a
// device came or went.
func (s *Service) DeviceChanged(lane, what string) {
	s.publish(display.Event{Lane: lane, Kind: display.Device, Reason: what})
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
