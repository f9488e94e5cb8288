package display

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"example.com/posd/internal/money"
)

// Kind is what a lane is doing, as the customer and cashier see it. A
// charge's state is shown under its own word (money.State); the other
// kinds are the lane's.
type Kind string

// KindOf is the kind that shows a charge in state s.
func KindOf(s money.State) Kind { return Kind(s) }

const (
	AwaitingScan        = Kind(money.AwaitingScan)
	Paying              = Kind(money.Paying)
	Paid                = Kind(money.Paid)
	Declined            = Kind(money.Declined)
	NeedsAttention      = Kind(money.NeedsAttention)
	Canceled            = Kind(money.Canceled)
	Refunded            = Kind(money.Refunded)
	Idle           Kind = "idle"
	Rejected       Kind = "rejected" // a scan refused on the box: nothing sent
	Reprint        Kind = "reprint"  // a receipt asked for again
	Device         Kind = "device"   // a scanner or display came or went (for the cashier)
	OutOfService   Kind = "out_of_service"
	// Offline: the gateway cannot be reached; the customer was not charged
	// and should pay another way.
	Offline Kind = "offline"
	// LateResult: the result of a charge the lane has moved on from. It is
	// for the till (/v1/events), never for a customer display or printer.
	LateResult Kind = "late_result"
	// Lines: the till's own lines (the basket, the total) between
	// payments; a payment takes the screen over.
	Lines Kind = "lines"
)

// Kinds are every kind an event has, as /v1/events names them in its
// event: lines.
var Kinds = []Kind{AwaitingScan, Paying, Paid, Kind(money.PartiallyRefunded), Refunded, Declined, NeedsAttention, Canceled,
	Idle, Rejected, Reprint, Device, OutOfService, Offline, LateResult, Lines}

// Moment reports whether k is a passing message (a scan refused, the
// gateway unreachable): shown for a while, then the lane's state again.
func (k Kind) Moment() bool { return k == Rejected || k == Offline }

// ForCustomer reports whether a customer-facing device (pole display,
// web page, printer) may show e: a late result never.
func (e Event) ForCustomer() bool {
	return e.Kind != LateResult && e.Kind != Device && e.Kind != Reprint
}

// Event is one change at a lane. It carries only what may be shown: codes
// are masked, and no key or signature ever reaches it.
type Event struct {
	Seq        uint64 `json:"seq"`
	Lane       string `json:"lane"`
	Kind       Kind   `json:"kind"`
	ChargeID   string `json:"charge_id,omitempty"`
	TotalFee   int64  `json:"total_fee,omitempty"`
	Wallet     string `json:"wallet,omitempty"`
	MchTradeID string `json:"mch_trade_id,omitempty"`
	TradeID    string `json:"trade_id,omitempty"`
	OutTradeID string `json:"out_trade_id,omitempty"`
	Reason     string `json:"reason,omitempty"`
	// Result is the late result's own kind (paid, declined…).
	Result Kind `json:"result,omitempty"`
	// For the till: its sale reference, the cashier and shift, and of a
	// refund its mch_refund_id and what the charge has had refunded.
	Reference   string `json:"reference,omitempty"`
	OpUserID    string `json:"op_user_id,omitempty"`
	Shift       string `json:"shift,omitempty"`
	RefundID    string `json:"mch_refund_id,omitempty"`
	RefundedFee int64  `json:"refunded_fee,omitempty"`
	// A refund's end: the till's refund_id for it, its amount, and the
	// charge's state after it (refunded_fee and version are the charge's).
	TillRefundID string      `json:"refund_id,omitempty"`
	RefundFee    int64       `json:"refund_fee,omitempty"`
	ChargeState  money.State `json:"charge_state,omitempty"`
	// FixedFee marks a fixed-fee lane's prompt for a scan: the lane's
	// amount, no charge open (no charge_id).
	FixedFee bool   `json:"fixed_fee,omitempty"`
	Version  uint64 `json:"version,omitempty"` // the charge's, as GET /v1/charges/{id} shows it
	// What the customer paid and the wallet's discount (a paid event).
	BuyerPayAmount int64 `json:"buyer_pay_amount,omitempty"`
	CouponFee      int64 `json:"coupon_fee,omitempty"`
	// Text: the till's lines (Kind Lines).
	Text    []string  `json:"lines,omitempty"`
	Sandbox bool      `json:"sandbox,omitempty"`
	Time    time.Time `json:"time"`
}

// Yuan renders fen as yuan with two decimals, without floats.
func Yuan(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s%d.%02d", sign, fen/100, fen%100)
}

// Hub fans events out to subscribers. Publish never blocks.
type Hub struct {
	mu   sync.Mutex
	seq  uint64
	subs map[*Sub]struct{}
	last map[string]Event // the latest event of each lane, for new subscribers
	// hist keeps the latest events, so that a till that reconnects with
	// the last event id it saw misses nothing; run names this process's
	// numbering (an id of another run says a restart came between).
	hist ring
	run  string
}

// ring is the hub's history: the latest History events, oldest first.
type ring struct {
	buf   []Event
	start int // the oldest, once buf is full
}

func (r *ring) add(e Event) {
	if len(r.buf) < History {
		r.buf = append(r.buf, e)
		return
	}
	r.buf[r.start] = e
	r.start = (r.start + 1) % History
}

// each calls fn with the events in order.
func (r *ring) each(fn func(Event)) {
	for i := range r.buf {
		fn(r.buf[(r.start+i)%len(r.buf)])
	}
}

// oldest is the sequence of the oldest event held (0: none).
func (r *ring) oldest() uint64 {
	if len(r.buf) == 0 {
		return 0
	}
	return r.buf[r.start].Seq
}

// History is how many events the hub keeps for reconnecting tills: a
// payment makes about four events, so a store of ten busy lanes (a payment
// a lane every 15 s) fills it in about six minutes — a till that was away
// for a minute misses nothing. About 400 KB, held from the start of a busy
// day (the soak's flat-heap check sees it fill in its first 250 payments).
const History = 1024

// NewHub returns an empty hub.
func NewHub() *Hub {
	return &Hub{subs: map[*Sub]struct{}{}, last: map[string]Event{}, run: strconv.FormatInt(time.Now().UnixNano()%1e12, 36)}
}

// ID is an event's id in the till's stream: the run and the sequence.
func (h *Hub) ID(e Event) string { return h.run + "-" + strconv.FormatUint(e.Seq, 10) }

// SubscribeSince subscribes to a lane ("" for all) and first queues every
// event after lastID that the hub still holds. It reports false when some
// may be missing (an id of another run, or older than the history): the
// subscriber is then primed with each lane's latest event instead.
func (h *Hub) SubscribeSince(lane string, depth int, lastID string) (*Sub, bool) {
	run, seqText, _ := strings.Cut(lastID, "-")
	seq, err := strconv.ParseUint(seqText, 10, 64)
	h.mu.Lock()
	whole := err == nil && run == h.run && (h.hist.oldest() == 0 || h.hist.oldest() <= seq+1)
	var replay []Event
	if whole {
		h.hist.each(func(e Event) {
			if e.Seq > seq && (lane == "" || e.Lane == lane) {
				replay = append(replay, e)
			}
		})
	}
	h.mu.Unlock()
	if !whole {
		return h.Subscribe(lane, depth), false
	}
	s := &Sub{lane: lane, ch: make(chan Event, max(depth, 2)+len(replay))}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range replay {
		s.ch <- e
	}
	// What was published between the two locks.
	h.hist.each(func(e Event) {
		if e.Seq > seq && (lane == "" || e.Lane == lane) && (len(replay) == 0 || e.Seq > replay[len(replay)-1].Seq) {
			offer(s, e)
		}
	})
	h.subs[s] = struct{}{}
	return s, true
}

// Sub is one subscriber's queue.
type Sub struct {
	lane    string
	ch      chan Event
	dropped atomic.Uint64
}

// C delivers the events.
func (s *Sub) C() <-chan Event { return s.ch }

// Dropped counts the events pushed out unread because the queue was full.
func (s *Sub) Dropped() uint64 { return s.dropped.Load() }

// Subscribe returns a queue of depth events for one lane ("" for all),
// primed with each lane's latest event. Unsubscribe frees it.
func (h *Hub) Subscribe(lane string, depth int) *Sub {
	s := &Sub{lane: lane, ch: make(chan Event, max(depth, 2))}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.last {
		if lane == "" || e.Lane == lane {
			offer(s, e)
		}
	}
	h.subs[s] = struct{}{}
	return s
}

// Unsubscribe stops delivery to s.
func (h *Hub) Unsubscribe(s *Sub) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

// Publish stamps and delivers e to every subscriber of its lane.
func (h *Hub) Publish(e Event) Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	e.Seq = h.seq
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if e.ForCustomer() && !e.Kind.Moment() { // the lane's state, for a display that joins later
		h.last[e.Lane] = e
	}
	h.hist.add(e)
	for s := range h.subs {
		if s.lane == "" || s.lane == e.Lane {
			offer(s, e)
		}
	}
	return e
}

// Last returns the latest event of a lane.
func (h *Hub) Last(lane string) (Event, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.last[lane]
	return e, ok
}

// offer queues e, dropping the oldest frame when the queue is full: a
// display that lags shows the newest state, not a backlog.
func offer(s *Sub, e Event) {
	for {
		select {
		case s.ch <- e:
			return
		default:
		}
		select {
		case <-s.ch:
			s.dropped.Add(1)
		default:
		}
	}
}

// Display shows events on one device. Show may block (a slow device); it
// runs on the display's own goroutine.
type Display interface {
	Show(Event) error
}
