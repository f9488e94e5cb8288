package checkout

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"example.com/posd/internal/journal"
	"example.com/posd/internal/money"
)

// Orders lists orders; unresolved only when asked.
func (s *Service) Orders(unresolved bool, limit int) ([]Attempt, error) {
	var out []Attempt
	err := s.opt.Journal.View(func(tx *journal.Tx) error {
		return tx.EachOrder(func(o money.Order) error {
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

// Report is GET /v1/report: counts and totals of a day's final attempts,
// per wallet and state.
type ReportRow struct {
	Wallet string      `json:"wallet"`
	State  money.State `json:"state"`
	Count  int         `json:"count"`
	Total  int64       `json:"total_fee"`
}

// Report adds up the attempts created on day (local time).
func (s *Service) Report(day time.Time) ([]ReportRow, error) {
	from := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.Local)
	to := from.AddDate(0, 0, 1)
	rows := map[string]*ReportRow{}
	var overflow error
	err := s.eachOrder(func(o *money.Order) {
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
	err := s.eachOrder(func(o *money.Order) {
		if !o.CreatedAt.Before(from) && o.CreatedAt.Before(to) {
			a := AttemptOf(o)
			a.TotalFee, a.Lane, a.ChargeID, a.Resolution, a.FinishedAt = o.TotalFee, o.Lane, o.ChargeID, o.Resolution, o.FinishedAt
			out = append(out, a)
		}
	})
	slices.SortFunc(out, func(a, b Attempt) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, err
}

func (s *Service) eachOrder(fn func(*money.Order)) error {
	return s.opt.Journal.View(func(tx *journal.Tx) error {
		return tx.EachOrder(func(o money.Order) error {
			fn(&o)
			return nil
		})
	})
}
