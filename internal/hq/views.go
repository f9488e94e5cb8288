package hq

import (
	"context"
	"fmt"
	"time"
)

// Unresolved is an order a box has not driven to a final state.
type Unresolved struct {
	Merchant   string    `json:"merchant"`
	Store      string    `json:"store"`
	Lane       string    `json:"lane"`
	MchTradeID string    `json:"mch_trade_id"`
	State      string    `json:"state"`
	Phase      string    `json:"phase"`
	TotalFee   int64     `json:"total_fee"`
	CreatedAt  time.Time `json:"created_at"`
}

// Page is a window of a list: at most Limit rows (0: all) after the first
// Offset.
type Page struct{ Limit, Offset int }

func (s *Store) window(p Page, n int) string {
	if p.Limit <= 0 {
		return ""
	}
	return fmt.Sprintf(" LIMIT %s OFFSET %s", s.ph(n), s.ph(n+1))
}

func (p Page) args(a ...any) []any {
	if p.Limit <= 0 {
		return a
	}
	return append(a, p.Limit, max(p.Offset, 0))
}

// count is how many rows a query's WHERE selects.
func (s *Store) count(ctx context.Context, q string, args ...any) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM (`+q+`) AS listed`, args...).Scan(&n)
	return n, err
}

// Unresolved lists the orders not final, across every store, oldest
// first, and how many there are in all.
func (s *Store) Unresolved(ctx context.Context, p Page) ([]Unresolved, int, error) {
	const where = `FROM records WHERE kind = 'order' AND final = 0`
	total, err := s.count(ctx, `SELECT 1 `+where)
	if err != nil {
		return nil, 0, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT merchant, store, lane, id, state, phase, total_fee, created_at `+where+
		` ORDER BY created_at, merchant, store, id`+s.window(p, 1), p.args()...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	out := []Unresolved{}
	for rows.Next() {
		var u Unresolved
		var at int64
		if err := rows.Scan(&u.Merchant, &u.Store, &u.Lane, &u.MchTradeID, &u.State, &u.Phase, &u.TotalFee, &at); err != nil {
			return nil, 0, err
		}
		u.CreatedAt = time.UnixMilli(at)
		out = append(out, u)
	}
	return out, total, rows.Err()
}

// Device is a device a box reports not connected.
type Device struct {
	Merchant string    `json:"merchant"`
	Store    string    `json:"store"`
	Device   string    `json:"device"` // lane/role/name
	State    string    `json:"state"`
	Since    time.Time `json:"since"`
}

// DevicesDown lists the devices not connected, longest down first, and
// how many there are in all.
func (s *Store) DevicesDown(ctx context.Context, p Page) ([]Device, int, error) {
	const where = `FROM records WHERE kind = 'device' AND final = 0`
	total, err := s.count(ctx, `SELECT 1 `+where)
	if err != nil {
		return nil, 0, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT merchant, store, id, state, created_at `+where+
		` ORDER BY created_at, merchant, store, id`+s.window(p, 1), p.args()...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	out := []Device{}
	for rows.Next() {
		var d Device
		var at int64
		if err := rows.Scan(&d.Merchant, &d.Store, &d.Device, &d.State, &at); err != nil {
			return nil, 0, err
		}
		d.Since = time.UnixMilli(at)
		out = append(out, d)
	}
	return out, total, rows.Err()
}

// Total is what one store's lane took with one wallet on one day.
type Total struct {
	Store       string `json:"store"`
	Lane        string `json:"lane"`
	Wallet      string `json:"wallet"`
	Day         string `json:"day"`
	Paid        int64  `json:"paid"`     // orders paid (refunded since or not)
	PaidFee     int64  `json:"paid_fee"` // their amount
	RefundedFee int64  `json:"refunded_fee"`
	NetFee      int64  `json:"net_fee"`
}

// Totals sums the paid orders of a day (all days: "") per store, lane
// and wallet.
func (s *Store) Totals(ctx context.Context, day string) ([]Total, error) {
	t, _, err := s.TotalsPage(ctx, day, Page{})
	return t, err
}

// TotalsPage is a window of Totals, and how many rows there are in all.
func (s *Store) TotalsPage(ctx context.Context, day string, p Page) ([]Total, int, error) {
	q := `SELECT store, lane, wallet, day, COUNT(*), SUM(total_fee), SUM(refunded_fee) FROM records
		WHERE kind = 'order' AND final = 1 AND state IN ('paid', 'refunded')`
	var args []any
	if day != "" {
		q += ` AND day = ` + s.ph(1)
		args = append(args, day)
	}
	q += ` GROUP BY store, lane, wallet, day`
	total, err := s.count(ctx, q, args...)
	if err != nil {
		return nil, 0, err
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY day, store, lane, wallet`+s.window(p, len(args)+1), p.args(args...)...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	out := []Total{}
	for rows.Next() {
		var t Total
		if err := rows.Scan(&t.Store, &t.Lane, &t.Wallet, &t.Day, &t.Paid, &t.PaidFee, &t.RefundedFee); err != nil {
			return nil, 0, err
		}
		t.NetFee = t.PaidFee - t.RefundedFee
		out = append(out, t)
	}
	return out, total, rows.Err()
}

// DayOrder is one order of a day, as the CSV export writes it.
type DayOrder struct {
	Merchant, Store, Lane, ID, State, Wallet string
	TotalFee, RefundedFee                    int64
	CreatedAt, ChangedAt                     time.Time
}

// EachOrderOfDay calls f with every order created on day (the boxes'
// local date), by store, lane and time, without holding them all.
func (s *Store) EachOrderOfDay(ctx context.Context, day string, f func(*DayOrder) error) error {
	rows, err := s.db.QueryContext(ctx, `SELECT merchant, store, lane, id, state, wallet, total_fee, refunded_fee, created_at, changed_at
		FROM records WHERE day = `+s.ph(1)+` AND kind = 'order' ORDER BY merchant, store, lane, created_at, id`, day)
	if err != nil {
		return err
	}
	defer rows.Close()
	var o DayOrder
	for rows.Next() {
		var created, changed int64
		if err := rows.Scan(&o.Merchant, &o.Store, &o.Lane, &o.ID, &o.State, &o.Wallet, &o.TotalFee, &o.RefundedFee, &created, &changed); err != nil {
			return err
		}
		o.CreatedAt, o.ChangedAt = time.UnixMilli(created), time.UnixMilli(changed)
		if err := f(&o); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Count is how many records of kind the database holds.
func (s *Store) Count(ctx context.Context, kind string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM records WHERE kind = `+s.ph(1), kind).Scan(&n)
	return n, err
}

// Order is one order as the head office holds it (for a check against a
// box's journal).
type Order struct {
	Version uint64
	State   string
	Phase   string
}

// Orders returns every order of a store, by mch_trade_id.
func (s *Store) Orders(ctx context.Context, merchant, store string) (map[string]Order, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, version, state, phase FROM records
		WHERE kind = 'order' AND merchant = `+s.ph(1)+` AND store = `+s.ph(2), merchant, store)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]Order{}
	for rows.Next() {
		var id string
		var o Order
		var v int64
		if err := rows.Scan(&id, &v, &o.State, &o.Phase); err != nil {
			return nil, err
		}
		o.Version = uint64(v)
		out[id] = o
	}
	return out, rows.Err()
}
