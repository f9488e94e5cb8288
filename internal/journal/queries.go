package journal

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"example.com/posd/internal/money"
)

// The journal's queries over the history: what the till and the operator
// ask of it (GET /v1/orders, the daily report, the export). They read
// every order the retention keeps.

// Orders lists orders, newest first, unresolved ones only when asked, at
// most limit (0: all).
func (j *Journal) Orders(unresolved bool, limit int) ([]money.Order, error) {
	var out []money.Order
	err := j.eachOrderSorted(func(o *money.Order) bool { return !unresolved || o.Unresolved() }, true, limit, func(o *money.Order) error {
		out = append(out, *o)
		return nil
	})
	return out, err
}

// Export returns the orders created in [from, to), oldest first.
func (j *Journal) Export(from, to time.Time) ([]money.Order, error) {
	var out []money.Order
	err := j.ExportEach(from, to, func(o *money.Order) error {
		out = append(out, *o)
		return nil
	})
	return out, err
}

// ExportEach calls fn with each order created in [from, to), oldest
// first, as eachOrderSorted reads them.
func (j *Journal) ExportEach(from, to time.Time, fn func(*money.Order) error) error {
	return j.eachOrderSorted(func(o *money.Order) bool { return !o.CreatedAt.Before(from) && o.CreatedAt.Before(to) }, false, 0, fn)
}

// exportBatch is how many orders eachOrderSorted reads in one transaction.
const exportBatch = 256

// orderHead is what the first pass of a listing reads of an order.
type orderHead struct {
	MchTradeID string      `json:"mch_trade_id"`
	CreatedAt  time.Time   `json:"created_at"`
	Phase      money.Phase `json:"phase"`
}

type orderRef struct {
	at int64 // created, Unix nanoseconds
	id string
}

// eachOrderSorted calls fn with the orders keep selects, by creation time
// (newest first if desc), at most limit (0: all). It first lists their
// ids and times (reading only those and the phase: keep sees nothing
// else), then reads the orders a batch at a time: a listing of months
// holds a batch in memory, not the months (posd runs under a memory
// limit, beside the payments), and no read transaction stays open while
// fn writes to a slow client. With a limit the list keeps at most about
// twice that. An order pruned between the two passes, or changed so that
// keep no longer selects it, is left out; one otherwise changed is given
// as it is then.
func (j *Journal) eachOrderSorted(keep func(*money.Order) bool, desc bool, limit int, fn func(*money.Order) error) error {
	var refs []orderRef
	sortCut := func() {
		slices.SortFunc(refs, func(a, b orderRef) int {
			c := cmp.Compare(a.at, b.at)
			if c == 0 {
				c = strings.Compare(a.id, b.id)
			}
			if desc {
				return -c
			}
			return c
		})
		if limit > 0 && len(refs) > limit {
			refs = refs[:limit]
		}
	}
	err := j.View(func(tx *Tx) error {
		return tx.forEach(orderBucket, func(_ string, v []byte) error {
			var h orderHead
			if err := json.Unmarshal(v, &h); err != nil {
				return err
			}
			if keep(&money.Order{MchTradeID: h.MchTradeID, CreatedAt: h.CreatedAt, Phase: h.Phase}) {
				refs = append(refs, orderRef{h.CreatedAt.UnixNano(), h.MchTradeID})
			}
			if limit > 0 && len(refs) >= 2*limit+exportBatch {
				sortCut()
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	sortCut()
	batch := make([]money.Order, 0, exportBatch)
	for len(refs) > 0 {
		n := min(len(refs), exportBatch)
		batch = batch[:0]
		if err := j.View(func(tx *Tx) error {
			for _, r := range refs[:n] {
				o, found, err := tx.Order(r.id)
				if err != nil {
					return err
				}
				if found && keep(&o) { // still: an unresolved order may have been resolved since
					batch = append(batch, o)
				}
			}
			return nil
		}); err != nil {
			return err
		}
		for i := range batch {
			if err := fn(&batch[i]); err != nil {
				return err
			}
		}
		refs = refs[n:]
	}
	return nil
}

// Report adds up the orders created in [from, to) by wallet and state. A
// sum past int64 fen is an error: no report at all is better than a
// plausible wrong number on a day's accounts.
func (j *Journal) Report(from, to time.Time) ([]money.Total, error) {
	rows := map[string]*money.Total{}
	var overflow error
	err := j.View(func(tx *Tx) error {
		return tx.EachOrder(func(o money.Order) error {
			if overflow != nil || o.CreatedAt.Before(from) || !o.CreatedAt.Before(to) {
				return nil
			}
			k := o.Wallet + "/" + string(o.State)
			r := rows[k]
			if r == nil {
				r = &money.Total{Wallet: o.Wallet, State: o.State}
				rows[k] = r
			}
			sum := r.Fee + o.TotalFee
			if (o.TotalFee > 0 && sum < r.Fee) || (o.TotalFee < 0 && sum > r.Fee) {
				overflow = fmt.Errorf("report %s: the %s total overflows int64 fen (order %s of %d fen)",
					from.Format(time.DateOnly), k, o.MchTradeID, o.TotalFee)
				return nil
			}
			r.Count++
			r.Fee = sum
			return nil
		})
	})
	if overflow != nil {
		return nil, overflow
	}
	out := make([]money.Total, 0, len(rows))
	for _, r := range rows {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b money.Total) int {
		if a.Wallet != b.Wallet {
			return strings.Compare(a.Wallet, b.Wallet)
		}
		return strings.Compare(string(a.State), string(b.State))
	})
	return out, err
}

// Totals adds up, by wallet, what f selects in [from, to): the payments
// of orders created then, under the sale's lane, cashier and shift, and the
// refunds confirmed then, under the cashier and shift that made each (the
// sale's when the refund names neither): a shift's totals are what its
// cashier took and gave back. Money given back that no refund record of
// posd's holds (the gateway's back office, a journal of an older posd)
// counts under the sale. The last row is the sum of all wallets ("").
func (j *Journal) Totals(from, to time.Time, f money.TotalsFilter) ([]money.WalletTotals, error) {
	by := map[string]*money.WalletTotals{}
	all := &money.WalletTotals{}
	row := func(wallet string) *money.WalletTotals {
		w := by[wallet]
		if w == nil {
			w = &money.WalletTotals{Wallet: wallet}
			by[wallet] = w
		}
		return w
	}
	in := func(t time.Time) bool { return !t.Before(from) && t.Before(to) }
	err := j.View(func(tx *Tx) error {
		recorded := map[string]int64{} // mch_trade_id: refunded under posd's refund records
		err := tx.EachRefund(func(r money.Refund) error {
			if r.State != money.Refunded {
				return nil
			}
			recorded[r.MchTradeID] += r.RefundFee
			o, ok, err := tx.Order(r.MchTradeID)
			if err != nil || !ok {
				return err
			}
			// The cashier and shift that made it, as a pair: the sale's
			// only when the refund names neither.
			by := money.TotalsFilter{Lane: o.Lane, OpUserID: r.OpUserID, Shift: r.Shift}
			if r.OpUserID == "" && r.Shift == "" {
				by.OpUserID, by.Shift = o.OpUserID, o.Shift
			}
			// Its day is the day the gateway confirmed it, as its receipt says.
			if in(cmp.Or(r.FinishedAt, r.UpdatedAt)) && f.Selects(by) {
				row(o.Wallet).AddRefund(r.RefundFee)
				all.AddRefund(r.RefundFee)
			}
			return nil
		})
		if err != nil {
			return err
		}
		return tx.EachOrder(func(o money.Order) error {
			if !in(o.CreatedAt) || !f.Selects(money.TotalsFilter{Lane: o.Lane, OpUserID: o.OpUserID, Shift: o.Shift}) || !o.WasPaid() {
				return nil
			}
			row(o.Wallet).AddPayment(&o)
			all.AddPayment(&o)
			if rest := o.Refunded() - recorded[o.MchTradeID]; rest > 0 {
				row(o.Wallet).AddRefund(rest)
				all.AddRefund(rest)
			}
			return nil
		})
	})
	out := make([]money.WalletTotals, 0, len(by)+1)
	for _, w := range by {
		if w.PaidCount > 0 || w.RefundedCount > 0 {
			out = append(out, *w)
		}
	}
	slices.SortFunc(out, func(a, b money.WalletTotals) int { return strings.Compare(a.Wallet, b.Wallet) })
	return append(out, *all), err
}
