package checkout

import (
	"encoding/json"
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
		return tx.ForEach(journal.Orders, func(_ string, v []byte) error {
			var o money.Order
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
		return tx.ForEach(journal.Orders, func(_ string, v []byte) error {
			var o money.Order
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
	var o money.Order
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
	var c money.Charge
	if ok, err := tx.Get(journal.Charges, id, &c); err != nil || !ok {
		return false, err
	}
	if c.Open() || c.State == money.NeedsAttention {
		return false, nil
	}
	for _, a := range c.AttemptIDs {
		if ok, _ := tx.Get(journal.Orders, a, &money.Order{}); ok {
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
