package poller

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/journal"
	"example.com/posd/internal/money"
	"example.com/posd/payment"
)

// A final order the gateway still holds open (a reconciliation's finding)
// is reversed and confirmed by the normal flow; a paid one, or one still
// driven, is refused and left as it is.
func TestReopen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw := &fakeGateway{answer: func(c payment.Call, _ string, n int) payment.Result {
			if c == payment.CallReverse && n == 1 {
				return res(payment.Pending, 6) // recall: the customer is entering a password
			}
			return res(payment.NotPaid, 4)
		}}
		var updates []money.Order
		p, j := newTestPoller(t, gw, func(o money.Order, _ money.Settled) { updates = append(updates, o) })
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go p.Run(ctx)

		now := time.Now()
		final := func(id string, st money.State) {
			o := newJournalOrder(t, j, id, now)
			o.Phase, o.State, o.FinishedAt = money.PhaseDone, st, now
			require.NoError(t, j.Update(func(tx *journal.Tx) error { return saveOrder(tx, o) }))
		}
		final("DECLINED1", money.Declined)
		final("PAID00001", money.Paid)
		newJournalOrder(t, j, "DRIVEN001", now)

		_, err := p.Reopen("PAID00001", "test", now)
		require.ErrorIs(t, err, ErrNotReopenable, "a paid order is an operator's decision")
		_, err = p.Reopen("DRIVEN001", "test", now)
		require.Error(t, err, "an order in its pay phase is driven already")
		_, err = p.Reopen("NOSUCH", "test", now)
		require.Error(t, err)
		assert.Zero(t, p.Pending(), "nothing refused is held")

		o, err := p.Reopen("DECLINED1", "reconciliation of 2026-11-26", now)
		require.NoError(t, err)
		assert.Equal(t, money.PhaseReverse, o.Phase)
		_, err = p.Reopen("DECLINED1", "twice", now)
		require.ErrorIs(t, err, ErrBusy)
		time.Sleep(time.Minute)
		synctest.Wait()

		var got money.Order
		require.NoError(t, j.View(func(tx *journal.Tx) error { got, _, err = tx.Order("DECLINED1"); return err }))
		assert.Equal(t, money.Reversed, got.State, "final as the gateway has it")
		assert.True(t, got.Final())
		assert.Equal(t, "reconciliation of 2026-11-26", got.Reopened)
		var calls []payment.Call
		for _, c := range gw.callsOf("DECLINED1") {
			calls = append(calls, c.call)
		}
		assert.Equal(t, []payment.Call{payment.CallReverse, payment.CallReverse, payment.CallQuery}, calls,
			"a reverse refused while the customer enters a password is retried, then confirmed")
		assert.Empty(t, gw.callsOf("PAID00001"))
		require.NotEmpty(t, updates)
		assert.Equal(t, money.Reversed, updates[len(updates)-1].State, "the lane hears every step")
		assert.Zero(t, p.Pending())
	})
}

// A reconciliation's signed answer showed an order posd ended failed
// (its first run met only a lagging replica's 301s, and used up its
// queries): reopened, the 301s of the replica still lagging are never
// "nothing was created" again.
func TestAReopenedOrderIsNotFailedOnALaggingReplicasFirst301(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A lagging replica answers 301 to everything, its reverse too: no
		// reverse lands, so its queries stay 301.
		gw := &fakeGateway{answer: func(payment.Call, string, int) payment.Result { return res(payment.NotFound, payment.NoTradeState) }}
		p, j := newTestPoller(t, gw, nil)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go p.Run(ctx)

		now := time.Now()
		o := newJournalOrder(t, j, "LAGGING01", now)
		o.Phase, o.State, o.FinishedAt, o.Queries, o.AuthCode = money.PhaseDone, money.Failed, now, DefaultPolicy().QueryAttempts, ""
		require.NoError(t, j.Update(func(tx *journal.Tx) error { return saveOrder(tx, o) }))
		_, err := p.Reopen("LAGGING01", "reconciliation: open at the gateway, final in the journal", now)
		require.NoError(t, err)
		time.Sleep(3 * time.Minute)
		synctest.Wait()

		var got money.Order
		require.NoError(t, j.View(func(tx *journal.Tx) error { got, _, err = tx.Order("LAGGING01"); return err }))
		assert.False(t, got.Final(), "the gateway showed it: a 301 is a lagging replica, not an end (%s)", got.State)
		assert.Equal(t, money.Unknown, got.State, "asked again until the gateway answers")
	})
}

// answersQueries is the script of a gateway that answers every query q:
// a reverse fails ("system error"), so none lands and the answer to
// queries stays q, and every other call is Unknown. The refunds are the
// gateway's own (keepsRefunds).
func answersQueries(q payment.Result) func(payment.Call, string, int) payment.Result {
	return func(c payment.Call, _ string, _ int) payment.Result {
		switch c {
		case payment.CallQuery:
			return q
		case payment.CallReverse:
			return payment.Result{Outcome: payment.Unknown, TradeState: payment.NoTradeState, Reason: "system error"}
		}
		return payment.Result{Outcome: payment.Unknown, TradeState: payment.NoTradeState}
	}
}

func paidAnswer() payment.Result {
	return payment.Result{Outcome: payment.Paid, TradeState: payment.StatePaid, TradeID: "T1"}
}

// rulesWorld is a journal holding one charge and its attempts, and a poller.
type rulesWorld struct {
	j       *journal.Journal
	p       *Poller
	mu      sync.Mutex
	updates []money.Order
	charges []money.Charge
}

func newRulesWorld(t *testing.T, gw *fakeGateway) *rulesWorld {
	w := &rulesWorld{}
	w.p, w.j = newTestPoller(t, gw, func(o money.Order, st money.Settled) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.updates = append(w.updates, o)
		if st.Found {
			w.charges = append(w.charges, st.Charge)
		}
	})
	return w
}

// order journals a final attempt of charge "CH1" (before the charge, so
// that nothing moves it).
func (w *rulesWorld) order(t *testing.T, id string, st money.State, now time.Time, edit func(*money.Order)) {
	o := money.NewOrder(money.Order{MchTradeID: id, ChargeID: "CH1", Lane: "L1", TotalFee: 100, DeviceInfo: "L1",
		AuthCode: "28123456789012345" + id[len(id)-1:], PayType: "alipay.micro", Subject: "s", Body: "b", ClientIP: "127.0.0.1"}, now)
	o.Phase, o.State, o.FinishedAt, o.TradeState = money.PhaseDone, st, now, payment.StatePaid
	if edit != nil {
		edit(&o)
	}
	require.NoError(t, w.j.Update(func(tx *journal.Tx) error { _, err := tx.SaveStep(&o, now); return err }))
}

func (w *rulesWorld) charge(t *testing.T, st money.State, refunded int64, now time.Time, attempts ...string) {
	c := money.Charge{ID: "CH1", Lane: "L1", TotalFee: 100, State: st, RefundedFee: refunded, AttemptIDs: attempts,
		CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute), UpdatedAt: now}
	require.NoError(t, w.j.Update(func(tx *journal.Tx) error { return tx.OpenCharge(&c) }))
}

func (w *rulesWorld) get(t *testing.T, id string) money.Order {
	var o money.Order
	require.NoError(t, w.j.View(func(tx *journal.Tx) error { o, _, _ = tx.Order(id); return nil }))
	return o
}

func (w *rulesWorld) getCharge(t *testing.T) money.Charge {
	var c money.Charge
	require.NoError(t, w.j.View(func(tx *journal.Tx) error { c, _, _ = tx.Charge("CH1"); return nil }))
	return c
}

// Rule: never shown as refunded when it is not, and a till's refund moves
// money once. A restored journal's order: the gateway holds a refund of
// 30 made (under the till's T1) after the copy. The operator resolves it
// "paid, 30 refunded"; the till's next refund (T2, 70) moves 70 under an id
// of its own, and the till retrying T1 finds the refund made, moving
// nothing more.
func TestRestoredOrderRefundsUnderTheTillsIDs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw := &fakeGateway{answer: answersQueries(payment.Result{Outcome: payment.Paid, TradeState: payment.StateRefunding, TradeID: "T1"}),
			keepsRefunds: true}
		gw.refunds = map[string]int64{RefundIDFor("A0000001", "T1"): 30}
		w := newRulesWorld(t, gw)
		now := time.Now()
		w.order(t, "A0000001", money.Paid, now, nil)
		w.charge(t, money.Paid, 0, now, "A0000001")
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go w.p.Run(ctx)
		// As Resume takes up a restored journal's paid order.
		_, err := w.p.takeUp("A0000001", now, func(_ *journal.Tx, o *money.Order) error {
			o.Phase, o.NextAt, o.Restored = money.PhaseVerify, now, true
			return nil
		})
		require.NoError(t, err)
		time.Sleep(time.Hour)
		synctest.Wait()
		a := w.get(t, "A0000001")
		require.True(t, a.NeedsAttention(), "a refund posd cannot account for: %s/%s %s", a.State, a.Phase, a.Reason)
		assert.Contains(t, a.Reason, "at least 0 of 100")

		_, err = w.p.Resolve("A0000001", Decision{Paid: true, RefundedFee: 30, By: "op", Why: "gateway shows paid, 30 refunded"}, time.Now())
		require.NoError(t, err)
		r := money.Refund{RefundID: "T2", MchRefundID: RefundIDFor("A0000001", "T2"), RefundFee: 70}
		_, err = w.p.StartRefund("A0000001", &r, time.Now())
		require.NoError(t, err)
		time.Sleep(time.Hour)
		synctest.Wait()
		assert.Equal(t, int64(70), gw.given, "the 70 fen asked for were given back")
		a = w.get(t, "A0000001")
		assert.Equal(t, money.Refunded, a.State)
		assert.Equal(t, money.Refunded, w.getCharge(t).State)

		again := money.Refund{RefundID: "T1", MchRefundID: RefundIDFor("A0000001", "T1"), RefundFee: 30}
		_, err = w.p.StartRefund("A0000001", &again, time.Now())
		require.Error(t, err, "nothing is left to refund")
		assert.Equal(t, int64(70), gw.given)
		assert.NotContains(t, gw.refundRQ, RefundIDFor("A0000001", "T1"), "the refund made is never asked again as new")
		cancel()
		w.p.Wait(time.Second)
	})
}

// Rule: a refund ends, and the charge agrees with its attempt. decide()
// does not clear Restored (end() does): an order resolved "paid, 30
// refunded" after a restored journal's discovery stays Restored, so each
// later partial refund of it, though the gateway confirms it, is followed
// by a new discovery that ends the order "unknown"/attention again (the
// charge needs_attention) and leaves the till's refund record "pending"
// for ever (the discovery moved o.RefundID on before the step was saved).
func TestResolvedRestoredOrderPartialRefundEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw := &fakeGateway{answer: answersQueries(payment.Result{Outcome: payment.Unknown, TradeState: payment.NoTradeState}), keepsRefunds: true}
		gw.refunds = map[string]int64{RefundIDN("A0000001", 1): 30}
		w := newRulesWorld(t, gw)
		now := time.Now()
		// As endDiscovery leaves a restored order refunded in part.
		w.order(t, "A0000001", money.Unknown, now, func(o *money.Order) {
			o.Phase, o.FinishedAt, o.NextAt, o.Restored = money.PhaseAttention, time.Time{}, time.Time{}, true
			o.RefundSeq, o.RefundedFee, o.RefundsFound, o.RefundBy = 1, 30, 1, "operator"
		})
		w.charge(t, money.NeedsAttention, 0, now, "A0000001")
		_, err := w.p.Resolve("A0000001", Decision{Paid: true, RefundedFee: 30, By: "op", Why: "gateway shows paid, 30 refunded"}, now)
		require.NoError(t, err)
		require.Equal(t, money.PartiallyRefunded, w.getCharge(t).State)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go w.p.Run(ctx)

		r := money.Refund{RefundID: "T2", MchRefundID: RefundIDFor("A0000001", "T2"), RefundFee: 20}
		_, err = w.p.StartRefund("A0000001", &r, time.Now())
		require.NoError(t, err)
		time.Sleep(3 * time.Hour)
		synctest.Wait()
		a, c := w.get(t, "A0000001"), w.getCharge(t)
		var stored money.Refund
		require.NoError(t, w.j.View(func(tx *journal.Tx) error { stored, _, _ = tx.Refund(r.MchRefundID); return nil }))
		t.Logf("refund %s: gateway gave back %d; record %s; A %s/%s refunded_fee %d; charge %s refunded %d",
			r.MchRefundID, gw.given, stored.State, a.State, a.Phase, a.RefundedFee, c.State, c.RefundedFee)
		require.Equal(t, int64(20), gw.given)
		assert.Equal(t, money.Refunded, stored.State, "a refund the gateway made is never shown refunded")
		assert.Equal(t, money.Paid, a.State)
		assert.Equal(t, money.PartiallyRefunded, c.State)
		cancel()
		w.p.Wait(time.Second)
	})
}

// Rule: never paid twice, and a charge always says what its money did.
// Reopen takes up only the latest attempt of a charge that ended canceled;
// an earlier attempt (another attempt's state is the charge's) and a sale
// still open for the till are left to an operator. Taken up, an attempt
// whose reverse cannot land and that the gateway then finds paid makes
// its charge paid, with an event: never kept silently.
func TestReopenRefusesAnEarlierAttemptOrAnOpenSale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw := &fakeGateway{answer: answersQueries(paidAnswer()), keepsRefunds: true}
		w := newRulesWorld(t, gw)
		now := time.Now()
		w.order(t, "A0000001", money.Declined, now, nil)
		w.order(t, "A0000002", money.Paid, now, nil)
		w.charge(t, money.Paid, 0, now, "A0000001", "A0000002")
		_, err := w.p.Reopen("A0000001", "reconciliation", now)
		require.ErrorIs(t, err, ErrNotReopenable, "an earlier attempt of a charge another attempt paid")

		w2 := newRulesWorld(t, gw)
		w2.order(t, "A0000001", money.Declined, now, nil)
		w2.charge(t, money.AwaitingScan, 0, now, "A0000001")
		_, err = w2.p.Reopen("A0000001", "reconciliation", now)
		require.ErrorIs(t, err, ErrNotReopenable, "the till's sale is still open")

		w3 := newRulesWorld(t, gw)
		w3.order(t, "A0000001", money.Declined, now, nil)
		w3.charge(t, money.Canceled, 0, now, "A0000001")
		_, err = w3.p.Reopen("A0000001", "reconciliation", now)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go w3.p.Run(ctx)
		time.Sleep(time.Hour)
		synctest.Wait()
		assert.Equal(t, money.Paid, w3.get(t, "A0000001").State, "the reverse never landed; the gateway has it paid")
		assert.Equal(t, money.Paid, w3.getCharge(t).State, "the charge says so")
		w3.mu.Lock()
		last := w3.charges[len(w3.charges)-1]
		w3.mu.Unlock()
		assert.Equal(t, money.Paid, last.State, "and the lane was told")
		cancel()
		w3.p.Wait(time.Second)
	})
}
