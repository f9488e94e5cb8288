package reconcile

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"example.com/posd/internal/journal"
	"example.com/posd/internal/journal/journaltest"
	"example.com/posd/internal/money"
	"example.com/posd/payment"
)

func TestCompare(t *testing.T) {
	paid := payment.Result{Outcome: payment.Paid, TradeState: payment.StatePaid}
	refund := payment.Result{Outcome: payment.Paid, TradeState: payment.StateRefunding}
	closed := payment.Result{Outcome: payment.NotPaid, TradeState: 3}
	paying := payment.Result{Outcome: payment.Pending, TradeState: payment.StatePaying}
	notFound := payment.Result{Outcome: payment.NotFound}
	for _, c := range []struct {
		state    money.State
		refunded int64
		q        payment.Result
		agree    bool
	}{
		{money.Paid, 0, paid, true},
		{money.Paid, 0, closed, false},
		{money.Paid, 0, refund, false},
		{money.Paid, 30, refund, true},
		{money.Refunded, 0, refund, true},
		{money.Declined, 0, closed, true},
		{money.Declined, 0, paid, false},
		{money.Failed, 0, notFound, true},
		{money.Reversed, 0, paid, false},
		{money.Closed, 0, paying, false},
	} {
		o := money.Order{Phase: money.PhaseDone, State: c.state, RefundProgress: money.RefundProgress{RefundedFee: c.refunded}, TotalFee: 100}
		what := Compare(&o, c.q)
		assert.Equal(t, c.agree, what == "", "%s (%d refunded) vs %s: %q", c.state, c.refunded, GatewayWord(c.q), what)
	}
}

// A paid order's amounts (the discount, what the customer paid, what the
// merchant receives) are compared when the gateway's answer carries them.
func TestCompareAmounts(t *testing.T) {
	o := money.Order{Phase: money.PhaseDone, State: money.Paid, TotalFee: 1000,
		PayDetail: payment.PayDetail{CouponFee: 100, BuyerPayAmount: 900, ReceiptAmount: 1000}}
	q := payment.Result{Outcome: payment.Paid, TradeState: payment.StatePaid, Detail: o.PayDetail}
	assert.Empty(t, Compare(&o, q), "the same amounts")
	q.Detail.BankType = "OTHERS"
	assert.Empty(t, Compare(&o, q), "what is not an amount is not compared")
	q.Detail = payment.PayDetail{}
	assert.Empty(t, Compare(&o, q), "an answer without the detail says nothing of it")
	kept := o
	kept.PayDetail = payment.PayDetail{}
	assert.Empty(t, Compare(&kept, payment.Result{Outcome: payment.Paid, TradeState: payment.StatePaid, Detail: o.PayDetail}),
		"an order kept without them (resolved by an operator) is not a disagreement")
	q.Detail = payment.PayDetail{BuyerPayAmount: 1000, ReceiptAmount: 1000}
	assert.Equal(t, "amounts differ: coupon_fee 100 in the journal, 0 at the gateway; buyer_pay_amount 900 in the journal, 1000 at the gateway",
		Compare(&o, q))
}

// answers is a gateway of fixed answers that counts what it was asked.
type answers struct {
	mu    sync.Mutex
	by    map[string]payment.Result
	asked []string
}

func (a *answers) Query(_ context.Context, ref payment.OrderRef, _ int64) payment.Result {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.asked = append(a.asked, ref.MchTradeID)
	return a.by[ref.MchTradeID]
}

// A run lists every disagreement, counts the rest, and resumes after a
// stop without asking again what it already checked.
func TestRunResumes(t *testing.T) {
	j := journaltest.Open(t)
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.Local)
	put := func(id string, st money.State, ph money.Phase) {
		o := money.NewOrder(money.Order{MchTradeID: id, AuthCode: "28" + id, TotalFee: 100}, day.Add(time.Hour))
		o.State, o.Phase = st, ph
		require.NoError(t, j.Update(func(tx *journal.Tx) error { _, err := tx.SaveStep(&o, time.Now()); return err }))
	}
	put("A1", money.Paid, money.PhaseDone)
	put("A2", money.Declined, money.PhaseDone)
	put("A3", money.Paying, money.PhaseQuery)
	put("A4", money.Paid, money.PhaseDone)
	gw := &answers{by: map[string]payment.Result{
		"A1": {Outcome: payment.Paid, TradeState: 0},
		"A2": {Outcome: payment.Paid, TradeState: 0}, // declined here, paid there
		"A4": {Outcome: payment.Unknown},
	}}
	put("A5", money.Closed, money.PhaseDone)
	gw.by["A5"] = payment.Result{Outcome: payment.Pending, TradeState: payment.StatePaying} // open there
	put("A6", money.Paid, money.PhaseDone)
	require.NoError(t, j.Update(func(tx *journal.Tx) error {
		o, _, err := tx.Order("A6")
		if err != nil {
			return err
		}
		o.CouponFee, o.BuyerPayAmount = 10, 80
		_, err = tx.SaveStep(&o, time.Now())
		return err
	}))
	gw.by["A6"] = payment.Result{Outcome: payment.Paid, TradeState: 0, Detail: payment.PayDetail{CouponFee: 10, BuyerPayAmount: 90}}
	var mu sync.Mutex
	var disagreements, reopened []string
	r := &Reconciler{Ctx: context.Background(), Journal: j, Gateway: gw, Rate: 1000, Log: zap.NewNop(),
		OnDisagree: func(d money.Disagreement) {
			mu.Lock()
			disagreements = append(disagreements, Kind(d.What))
			mu.Unlock()
		},
		Reopen: func(id, why string) error { reopened = append(reopened, id+" "+why); return nil }}
	_, err := r.Start(day)
	require.NoError(t, err)
	r.Wait()
	run, found, err := r.Status("2026-11-25")
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, "done", run.State)
	assert.Equal(t, [5]int{6, 6, 1, 1, 1}, [5]int{run.Total, run.Checked, run.Agreed, run.InProgress, run.Unanswered})
	require.Len(t, run.Disagreements, 3)
	assert.Equal(t, "A2", run.Disagreements[0].MchTradeID)
	assert.Empty(t, run.Disagreements[0].Action, "listed, nothing changed")
	assert.Equal(t, "A5", run.Disagreements[1].MchTradeID)
	assert.Contains(t, run.Disagreements[1].Action, "reversing")
	assert.Equal(t, []string{"A5 reconciliation of 2026-11-25: open at the gateway, final in the journal"}, reopened,
		"only the order open at the gateway is handed to the machinery")
	assert.Equal(t, "amounts differ: buyer_pay_amount 80 in the journal, 90 at the gateway", run.Disagreements[2].What)
	assert.Equal(t, []string{"declined in the journal, paid at the gateway", OpenThere, AmountsDiffer}, disagreements,
		"/metrics counts kinds, not amounts")
	assert.Equal(t, []string{"A1", "A2", "A4", "A5", "A6"}, gw.asked, "an order still driven is left to the poller")

	// A run that stopped half-way resumes after the last order checked.
	run.State, run.Next, run.Checked, run.Agreed, run.Disagreements = "stopped", "A2", 2, 1, nil
	require.NoError(t, j.Update(func(tx *journal.Tx) error { return tx.PutReconcileRun(&run) }))
	gw.mu.Lock()
	gw.asked = nil
	gw.mu.Unlock()
	_, err = r.Start(day)
	require.NoError(t, err)
	r.Wait()
	assert.Equal(t, []string{"A4", "A5", "A6"}, gw.asked, "nothing checked before is asked again")
}

// A run a kill cut short says "running" in the journal: until a start
// resumes it, it is reported interrupted, never running; Resume picks up
// every such run (and every stopped one) by itself, from where it was.
func TestAKilledRunIsResumedAndNeverRunningWithoutRunning(t *testing.T) {
	j := journaltest.Open(t)
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.Local)
	gw := &answers{by: map[string]payment.Result{}}
	for _, id := range []string{"B1", "B2", "B3", "B4"} {
		o := money.NewOrder(money.Order{MchTradeID: id, AuthCode: "28" + id, TotalFee: 100}, day.Add(time.Hour))
		o.State, o.Phase = money.Paid, money.PhaseDone
		require.NoError(t, j.Update(func(tx *journal.Tx) error { _, err := tx.SaveStep(&o, time.Now()); return err }))
		gw.by[id] = payment.Result{Outcome: payment.Paid, TradeState: 0}
	}
	killed := money.ReconcileRun{Date: "2026-11-25", State: "running", Total: 4, Checked: 2, Agreed: 2, Next: "B2",
		Disagreements: []money.Disagreement{}}
	require.NoError(t, j.Update(func(tx *journal.Tx) error { return tx.PutReconcileRun(&killed) }))
	done := money.ReconcileRun{Date: "2026-11-24", State: "done", Disagreements: []money.Disagreement{}}
	require.NoError(t, j.Update(func(tx *journal.Tx) error { return tx.PutReconcileRun(&done) }))

	r := &Reconciler{Ctx: context.Background(), Journal: j, Gateway: gw, Rate: 1000, Log: zap.NewNop()}
	run, found, err := r.Status("2026-11-25")
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, "interrupted", run.State)
	assert.NotEmpty(t, run.Reason)

	n, err := r.Resume()
	require.NoError(t, err)
	assert.Equal(t, 1, n, "a finished run is not run again")
	r.Wait()
	run, _, err = r.Status("2026-11-25")
	require.NoError(t, err)
	assert.Equal(t, "done", run.State)
	assert.Empty(t, run.Reason)
	assert.Equal(t, [3]int{4, 4, 4}, [3]int{run.Total, run.Checked, run.Agreed})
	assert.Equal(t, []string{"B3", "B4"}, gw.asked, "what the killed run checked is not asked again")
}
