package reconcile

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"example.com/posd/internal/defect"
	"example.com/posd/internal/journal"
	"example.com/posd/internal/money"
	"example.com/posd/payment"
)

// Querier is the one gateway call a reconciliation makes.
type Querier interface {
	Query(ctx context.Context, ref payment.OrderRef, totalFee int64) payment.Result
}

// Reconciler runs reconciliations, one per day at a time.
type Reconciler struct {
	Ctx     context.Context // runs end with it
	Journal *journal.Journal
	Gateway Querier
	Rate    float64 // queries a second (0: 5)
	Log     *zap.Logger
	// OnDisagree is told of each disagreement found (for /metrics: its
	// Kind, what it says without the amounts).
	OnDisagree func(money.Disagreement)
	// Reopen hands an order that is final in the journal but still open
	// at the gateway to the normal machinery (poller.Reopen), which
	// reverses and confirms it; nil lists it only.
	Reopen func(id, why string) error

	mu      sync.Mutex
	running map[string]bool
	wg      sync.WaitGroup
}

// Start begins the reconciliation of day (YYYY-MM-DD, local time), or
// resumes one that stopped; a finished one is run again. It returns at
// once with the run as it stands.
func (r *Reconciler) Start(day time.Time) (money.ReconcileRun, error) {
	date := day.Format(time.DateOnly)
	r.mu.Lock()
	if r.running == nil {
		r.running = map[string]bool{}
	}
	if r.running[date] {
		r.mu.Unlock()
		run, _, err := r.Status(date)
		return run, err
	}
	r.running[date] = true
	r.mu.Unlock()
	run, found, err := r.stored(date)
	if err == nil && (!found || run.State == "done") {
		run = money.ReconcileRun{Date: date, State: "running", StartedAt: time.Now(), Disagreements: []money.Disagreement{}}
	}
	run.State, run.Reason = "running", ""
	if err == nil {
		err = r.save(&run)
	}
	if err != nil {
		r.done(date)
		return run, err
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer r.done(date)
		r.run(r.Ctx, day, run)
	}()
	return run, nil
}

// Wait waits for the runs in flight (they stop when their context ends).
func (r *Reconciler) Wait() { r.wg.Wait() }

func (r *Reconciler) done(date string) {
	r.mu.Lock()
	delete(r.running, date)
	r.mu.Unlock()
}

// Status is the reconciliation of a day as it stands. A run the journal
// says is running that no one runs (posd was killed in it, and it could
// not be resumed) is interrupted: never "running" without running.
func (r *Reconciler) Status(date string) (money.ReconcileRun, bool, error) {
	// The flag is read before the record and after it: a run saves "done"
	// before it lets go of its flag, and one starting takes the flag before
	// it saves "running", so a record read between is never taken for an
	// orphan.
	before := r.isRunning(date)
	run, found, err := r.stored(date)
	if found && run.State == "running" && !before && !r.isRunning(date) {
		run.State, run.Reason = "interrupted", "posd stopped while it ran and has not resumed it: POST /v1/reconcile again"
	}
	return run, found, err
}

func (r *Reconciler) isRunning(date string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running[date]
}

func (r *Reconciler) stored(date string) (money.ReconcileRun, bool, error) {
	var run money.ReconcileRun
	var found bool
	err := r.Journal.View(func(tx *journal.Tx) error {
		var err error
		run, found, err = tx.ReconcileRun(date)
		return err
	})
	return run, found, err
}

// Resume starts again every run a stop or a crash cut short, at start. It
// returns how many it resumed.
func (r *Reconciler) Resume() (int, error) {
	var days []string
	err := r.Journal.View(func(tx *journal.Tx) error {
		return tx.EachReconcileRun(func(run money.ReconcileRun) error {
			if run.State == "running" || run.State == "stopped" {
				days = append(days, run.Date)
			}
			return nil
		})
	})
	n := 0
	for _, d := range days {
		day, perr := time.ParseInLocation(time.DateOnly, d, time.Local)
		if perr != nil {
			continue
		}
		if _, serr := r.Start(day); serr != nil {
			return n, serr
		}
		n++
	}
	return n, err
}

func (r *Reconciler) save(run *money.ReconcileRun) error {
	run.UpdatedAt = time.Now()
	return r.Journal.Update(func(tx *journal.Tx) error { return tx.PutReconcileRun(run) })
}

// run queries the day's orders in id order from run.Next on, saving its
// progress every few orders.
func (r *Reconciler) run(ctx context.Context, day time.Time, run money.ReconcileRun) {
	from := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.Local)
	orders, err := r.Journal.Export(from, from.AddDate(0, 0, 1))
	if err != nil {
		r.Log.Error("reconcile: the day's orders", zap.Error(err))
		return
	}
	slices.SortFunc(orders, func(a, b money.Order) int { return strings.Compare(a.MchTradeID, b.MchTradeID) })
	run.Total = len(orders)
	rate := r.Rate
	if rate <= 0 {
		rate = 5
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for i, o := range orders {
		if o.MchTradeID <= run.Next && run.Next != "" {
			continue // checked before the run stopped
		}
		select {
		case <-ctx.Done():
			run.State = "stopped"
			_ = r.save(&run)
			return
		case <-tick.C:
		}
		r.check(ctx, &run, &o)
		run.Next = o.MchTradeID
		if i%20 == 19 {
			if err := r.save(&run); err != nil {
				r.Log.Error("reconcile: progress not saved", zap.Error(err))
			}
		}
	}
	run.State, run.FinishedAt, run.Next = "done", time.Now(), ""
	if err := r.save(&run); err != nil {
		r.Log.Error("reconcile: not saved", zap.Error(err))
	}
	r.Log.Info("reconciled", zap.String("date", run.Date), zap.Int("orders", run.Total), zap.Int("agreed", run.Agreed),
		zap.Int("disagreements", len(run.Disagreements)), zap.Int("unanswered", run.Unanswered), zap.Int("in_progress", run.InProgress))
}

// check queries one order and counts what it finds. The order is compared
// as the journal holds it when it is asked, not as the run's list had it:
// on a busy day a run lasts minutes, and refunds are made meanwhile.
func (r *Reconciler) check(ctx context.Context, run *money.ReconcileRun, listed *money.Order) {
	run.Checked++
	o, q, ok := r.ask(ctx, listed)
	switch {
	case !ok || !o.Final():
		run.InProgress++ // the poller drives it to its final state
		return
	case q.Outcome == payment.Unknown || q.Outcome == payment.NotSent:
		run.Unanswered++
		return
	}
	what := Compare(&o, q)
	if what == "" {
		run.Agreed++
		return
	}
	d := money.Disagreement{MchTradeID: o.MchTradeID, ChargeID: o.ChargeID, Lane: o.Lane,
		TotalFee: o.TotalFee, JournalState: o.State, GatewayState: GatewayWord(q), What: what}
	if what == OpenThere && r.Reopen != nil {
		d.Action = "reversing: posd drives it to the gateway's final state"
		if err := r.Reopen(o.MchTradeID, "reconciliation of "+run.Date+": "+what); err != nil {
			d.Action = "not reopened: " + err.Error()
		}
	}
	run.Disagreements = append(run.Disagreements, d)
	r.Log.Warn("reconcile: the journal and the gateway disagree", zap.String("mch_trade_id", o.MchTradeID),
		zap.String("journal", string(o.State)), zap.String("gateway", GatewayWord(q)), zap.String("what", what),
		zap.String("action", d.Action))
	if r.OnDisagree != nil {
		r.OnDisagree(d)
	}
}

// ask reads the order from the journal, queries it, and reads it again: an
// order that moved while it was asked (a refund, a step) is asked again,
// a few times. ok is false when it kept moving.
func (r *Reconciler) ask(ctx context.Context, listed *money.Order) (money.Order, payment.Result, bool) {
	if defect.On(defect.ReconcileAgainstStart) { // the list's copy, as before
		return *listed, r.Gateway.Query(ctx, payment.OrderRef{MchTradeID: listed.MchTradeID}, listed.TotalFee), true
	}
	read := func() (money.Order, bool) {
		var o money.Order
		var found bool
		_ = r.Journal.View(func(tx *journal.Tx) error { o, found, _ = tx.Order(listed.MchTradeID); return nil })
		return o, found
	}
	for range 3 {
		before, found := read()
		if !found || !before.Final() {
			return before, payment.Result{}, found
		}
		q := r.Gateway.Query(ctx, payment.OrderRef{MchTradeID: before.MchTradeID}, before.TotalFee)
		if after, _ := read(); after.Version == before.Version {
			return before, q, true
		}
	}
	return money.Order{}, payment.Result{}, false
}

// Kind is what a disagreement says, without its amounts.
func Kind(what string) string {
	kind, _, _ := strings.Cut(what, ":")
	return kind
}

// GatewayWord names what a trusted query answer says of an order.
func GatewayWord(q payment.Result) string {
	if q.Outcome == payment.NotFound {
		return "not_found"
	}
	words := map[int]string{payment.StatePaid: "paid", payment.StateRefunding: "refund", 2: "unpaid", 3: "closed",
		payment.StateReversed: "reversed", 5: "reversing", payment.StatePaying: "paying", payment.StateFailed: "failed"}
	if w, ok := words[q.TradeState]; ok {
		return w
	}
	return fmt.Sprintf("trade_state %d", q.TradeState)
}

// OpenThere is the disagreement the normal machinery settles (Reopen).
const OpenThere = "open at the gateway, final in the journal"

// Compare says how a final order of the journal and the gateway's answer
// disagree ("" when they agree).
func Compare(o *money.Order, q payment.Result) string {
	gw := GatewayWord(q)
	switch gw {
	case "paying", "reversing":
		return OpenThere
	}
	paidThere := gw == "paid" || gw == "refund"
	switch o.State {
	case money.Paid:
		switch {
		case !paidThere:
			return "paid in the journal, not at the gateway"
		case gw == "refund" && o.RefundedFee == 0:
			return "refunded at the gateway, not in the journal"
		case gw == "paid" && o.RefundedFee > 0:
			return "refunded in the journal, not at the gateway"
		}
		return compareDetail(o, q.Detail)
	case money.Refunded:
		if gw != "refund" && gw != "reversed" {
			return "refunded in the journal, " + gw + " at the gateway"
		}
	case money.Reversed:
		if gw == "paid" {
			return "reversed in the journal, paid at the gateway"
		}
	default: // declined, closed, failed
		if paidThere {
			return string(o.State) + " in the journal, paid at the gateway"
		}
	}
	return ""
}

// compareDetail says how the amounts of a paid order's journal and of the
// gateway's answer differ, when both carry them.
func compareDetail(o *money.Order, d payment.PayDetail) string {
	fields := []struct {
		name   string
		kept   int64
		answer int64
	}{
		{"coupon_fee", o.CouponFee, d.CouponFee},
		{"buyer_pay_amount", o.BuyerPayAmount, d.BuyerPayAmount},
		{"receipt_amount", o.ReceiptAmount, d.ReceiptAmount},
		{"invoice_amount", o.InvoiceAmount, d.InvoiceAmount},
		{"point_amount", o.PointAmount, d.PointAmount},
	}
	var kept, answered bool
	for _, f := range fields {
		kept, answered = kept || f.kept != 0, answered || f.answer != 0
	}
	if !kept || !answered {
		return "" // an answer without them, or an order kept without them (resolved by an operator, an older posd)
	}
	var diffs []string
	for _, f := range fields {
		if f.kept != f.answer {
			diffs = append(diffs, fmt.Sprintf("%s %d in the journal, %d at the gateway", f.name, f.kept, f.answer))
		}
	}
	if len(diffs) == 0 {
		return ""
	}
	return AmountsDiffer + ": " + strings.Join(diffs, "; ")
}

// AmountsDiffer begins what compareDetail finds, and is its kind on
// /metrics (the amounts would make a label of their own per order).
const AmountsDiffer = "amounts differ"
