package hq

import (
	"context"
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

// Unresolved lists the orders not final, across every store, oldest first.
func (s *Store) Unresolved(ctx context.Context, limit int) ([]Unresolved, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT merchant, store, lane, id, state, phase, total_fee, created_at
		FROM records WHERE kind = 'order' AND final = 0 ORDER BY created_at, store, id LIMIT `+s.ph(1), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Unresolved{}
	for rows.Next() {
		var u Unresolved
		var at int64
		if err := rows.Scan(&u.Merchant, &u.Store, &u.Lane, &u.MchTradeID, &u.State, &u.Phase, &u.TotalFee, &at); err != nil {
			return nil, err
		}
		u.CreatedAt = time.UnixMilli(at)
		out = append(out, u)
	}
	return out, rows.Err()
}

// Device is a device a box reports not connected.
type Device struct {
	Merchant string    `json:"merchant"`
	Store    string    `json:"store"`
	Device   string    `json:"device"` // lane/role/name
	State    string    `json:"state"`
	Since    time.Time `json:"since"`
}

// DevicesDown lists the devices not connected, longest down first.
func (s *Store) DevicesDown(ctx context.Context) ([]Device, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT merchant, store, id, state, created_at FROM records
		WHERE kind = 'device' AND final = 0 ORDER BY created_at, store, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Device{}
	for rows.Next() {
		var d Device
		var at int64
		if err := rows.Scan(&d.Merchant, &d.Store, &d.Device, &d.State, &at); err != nil {
			return nil, err
		}
		d.Since = time.UnixMilli(at)
		out = append(out, d)
	}
	return out, rows.Err()
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
	q := `SELECT store, lane, wallet, day, COUNT(*), SUM(total_fee), SUM(refunded_fee) FROM records
		WHERE kind = 'order' AND final = 1 AND state IN ('paid', 'refunded')`
	var args []any
	if day != "" {
		q += ` AND day = ` + s.ph(1)
		args = append(args, day)
	}
	rows, err := s.db.QueryContext(ctx, q+` GROUP BY store, lane, wallet, day ORDER BY day, store, lane, wallet`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Total{}
	for rows.Next() {
		var t Total
		if err := rows.Scan(&t.Store, &t.Lane, &t.Wallet, &t.Day, &t.Paid, &t.PaidFee, &t.RefundedFee); err != nil {
			return nil, err
		}
		t.NetFee = t.PaidFee - t.RefundedFee
		out = append(out, t)
	}
	return out, rows.Err()
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
