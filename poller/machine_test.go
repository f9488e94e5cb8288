package poller

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/money"
	"example.com/posd/payment"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func res(o payment.Outcome, ts int) payment.Result {
	return payment.Result{Outcome: o, TradeState: ts, Reason: "test"}
}

func fresh() money.Order {
	return money.NewOrder(money.Order{MchTradeID: "S1_L1_ABCDEF1", TotalFee: 100, DeviceInfo: "L1", AuthCode: "281234567890123456"}, t0)
}

// run feeds answers to the machine, one per call, and returns the calls
// made and the final order.
func run(t *testing.T, p Policy, answers func(call payment.Call, n int) payment.Result) ([]payment.Call, money.Order) {
	t.Helper()
	o := fresh()
	now := t0
	var calls []payment.Call
	counts := map[payment.Call]int{}
	for i := 0; o.Active(); i++ {
		require.Less(t, i, 200, "the machine must end: %+v", o)
		if o.NextAt.After(now) {
			now = o.NextAt
		}
		c := o.Call()
		counts[c]++
		calls = append(calls, c)
		o = Step(o, answers(c, counts[c]), now, p)
		if o.Phase != money.PhasePay {
			assert.Empty(t, o.AuthCode, "the full code leaves the record once the pay has an outcome")
		}
	}
	return calls, o
}

func TestMachineScenarios(t *testing.T) {
	p := DefaultPolicy()
	cases := []struct {
		name    string
		answer  func(payment.Call, int) payment.Result
		state   money.State
		queries int
		calls   []payment.Call
	}{
		{
			name:   "paid at once",
			answer: func(payment.Call, int) payment.Result { return res(payment.Paid, 0) },
			state:  money.Paid, calls: []payment.Call{"pay"},
		},
		{
			name:   "declined final",
			answer: func(payment.Call, int) payment.Result { return res(payment.NotPaid, 7) },
			state:  money.Declined, calls: []payment.Call{"pay"},
		},
		{
			name: "paying, paid on the 3rd query",
			answer: func(c payment.Call, n int) payment.Result {
				if c == payment.CallQuery && n == 3 {
					return res(payment.Paid, 0)
				}
				return res(payment.Pending, 6)
			},
			state: money.Paid, calls: []payment.Call{"pay", "query", "query", "query"},
		},
		{
			name: "timeout then paid: unknown is never a decline",
			answer: func(c payment.Call, n int) payment.Result {
				if c == payment.CallPay {
					return res(payment.Unknown, payment.NoTradeState)
				}
				return res(payment.Paid, 0)
			},
			state: money.Paid, calls: []payment.Call{"pay", "query"},
		},
		{
			name: "paying forever, reversed",
			answer: func(c payment.Call, n int) payment.Result {
				switch c {
				case payment.CallReverse:
					return res(payment.NotPaid, 4)
				case payment.CallQuery:
					if n > 6 {
						return res(payment.NotPaid, 4)
					}
				}
				return res(payment.Pending, 6)
			},
			state: money.Reversed,
			calls: []payment.Call{"pay", "query", "query", "query", "query", "query", "query", "reverse", "query"},
		},
		{
			name: "reverse recall Y twice",
			answer: func(c payment.Call, n int) payment.Result {
				switch {
				case c == payment.CallReverse && n <= 2:
					return res(payment.Pending, 5)
				case c == payment.CallReverse:
					return res(payment.NotPaid, 4)
				case c == payment.CallQuery && n > 6:
					return res(payment.NotPaid, 4)
				}
				return res(payment.Pending, 6)
			},
			state: money.Reversed,
			calls: []payment.Call{"pay", "query", "query", "query", "query", "query", "query", "reverse", "reverse", "reverse", "query"},
		},
		{
			name: "nothing created: 500 then 301 everywhere",
			answer: func(c payment.Call, n int) payment.Result {
				if c == payment.CallPay {
					return res(payment.Unknown, payment.NoTradeState)
				}
				return res(payment.NotFound, payment.NoTradeState)
			},
			state: money.Failed,
			calls: []payment.Call{"pay", "query", "query", "query", "query", "query", "query", "reverse", "query"},
		},
		{
			name: "no reverse: fallback closes the unpaid order",
			answer: func(c payment.Call, n int) payment.Result {
				switch c {
				case payment.CallReverse:
					return res(payment.NoReverse, payment.NoTradeState)
				case payment.CallClose:
					return res(payment.Done, 3)
				case payment.CallQuery:
					if n == 8 {
						return res(payment.NotPaid, 3)
					}
				}
				return res(payment.Pending, 6)
			},
			state: money.Closed,
			calls: []payment.Call{"pay", "query", "query", "query", "query", "query", "query", "reverse", "query", "order_close", "query"},
		},
		{
			name: "no reverse: fallback refunds a late payment",
			answer: func(c payment.Call, n int) payment.Result {
				switch c {
				case payment.CallReverse:
					return res(payment.NoReverse, payment.NoTradeState)
				case payment.CallRefund:
					return res(payment.Done, payment.NoTradeState)
				case payment.CallQuery:
					if n == 7 {
						return res(payment.Paid, 0)
					}
					if n == 8 {
						return res(payment.Paid, 1)
					}
				}
				return res(payment.Pending, 6)
			},
			state: money.Reversed,
			calls: []payment.Call{"pay", "query", "query", "query", "query", "query", "query", "reverse", "query", "refund_query", "refund"},
		},
		{
			name: "rejected pay is checked once",
			answer: func(c payment.Call, n int) payment.Result {
				if c == payment.CallPay {
					return res(payment.Rejected, payment.NoTradeState)
				}
				return res(payment.NotFound, payment.NoTradeState)
			},
			state: money.Failed, calls: []payment.Call{"pay", "query"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			calls, o := run(t, p, c.answer)
			assert.Equal(t, c.calls, calls)
			assert.Equal(t, c.state, o.State)
			assert.Equal(t, money.PhaseDone, o.Phase)
		})
	}
}

func TestMachineQuerySchedule(t *testing.T) {
	p := DefaultPolicy()
	o := fresh()
	o = Step(o, res(payment.Pending, 6), t0, p)
	require.Equal(t, money.PhaseQuery, o.Phase)
	assert.Equal(t, t0.Add(5*time.Second), o.NextAt, "first query one interval after the pay")
	last := o.NextAt
	for i := 1; i < p.QueryAttempts; i++ {
		o = Step(o, res(payment.Pending, 6), last, p)
		require.Equal(t, money.PhaseQuery, o.Phase)
		assert.Equal(t, last.Add(5*time.Second), o.NextAt)
		last = o.NextAt
	}
	o = Step(o, res(payment.Pending, 6), last, p)
	assert.Equal(t, money.PhaseReverse, o.Phase, "after the 6th query")
	assert.Equal(t, t0.Add(30*time.Second), last, "the window from pay to the last query is 30s")
}

func TestMachineUnresolvedGoesToReconcile(t *testing.T) {
	p := DefaultPolicy()
	o := fresh()
	o.Phase = money.PhaseConfirm
	o = Step(o, res(payment.Unknown, payment.NoTradeState), t0, p)
	assert.Equal(t, money.PhaseReconcile, o.Phase)
	assert.Equal(t, money.Unknown, o.State)
	assert.Equal(t, t0.Add(time.Minute), o.NextAt)
	o = Step(o, res(payment.Unknown, payment.NoTradeState), o.NextAt, p)
	assert.Equal(t, 2*time.Minute, o.NextAt.Sub(t0.Add(time.Minute)), "backs off")
	for range 20 {
		o = Step(o, res(payment.Unknown, payment.NoTradeState), o.NextAt, p)
	}
	assert.Equal(t, money.PhaseReconcile, o.Phase)
	assert.Equal(t, o.UpdatedAt.Add(p.ReconcileMax), o.NextAt, "capped")
	o = Step(o, res(payment.Pending, 6), o.NextAt, p)
	assert.Equal(t, money.PhaseReverse, o.Phase, "still open at the gateway: reverse again")
	o = Step(o, res(payment.NotPaid, 4), o.NextAt, p)
	o = Step(o, res(payment.Paid, 0), o.NextAt, p)
	assert.Equal(t, money.Paid, o.State, "the confirming query decides")
}

func TestMachineDuplicateIsNeverOurs(t *testing.T) {
	p := DefaultPolicy()
	// posd never sends a pay twice: a 107 means the id names an order
	// that is not this code's (a restored or cloned journal).
	o := Step(fresh(), res(payment.Duplicate, payment.NoTradeState), t0, p)
	assert.Equal(t, money.PhaseDone, o.Phase)
	assert.Equal(t, money.Failed, o.State, "nothing was created for this code")
	assert.Contains(t, o.ErrMsg, "107")

	legacy := fresh()
	legacy.Phase, legacy.Adopt = money.PhaseQuery, true
	l := Step(legacy, payment.Result{Outcome: payment.Paid, TradeState: 0, TotalFee: 100, DeviceInfo: "L1"}, t0, p)
	assert.Equal(t, money.PhaseAttention, l.Phase, "an order an older posd adopted is never settled by itself")
	assert.Equal(t, money.Unknown, l.State)
}

func TestMachineTradeState1IsNeverPaid(t *testing.T) {
	p := DefaultPolicy()
	// (defect.ReverseTakenForPaid) the customer pays just before posd's reverse, which
	// refunds it; the confirming query reports trade_state 1.
	o := fresh()
	o = Step(o, res(payment.Pending, 6), t0, p)
	for o.Phase == money.PhaseQuery {
		o = Step(o, res(payment.Pending, 6), o.NextAt, p)
	}
	require.Equal(t, money.PhaseReverse, o.Phase)
	require.True(t, o.ReverseSent)
	o = Step(o, res(payment.Unknown, payment.NoTradeState), o.NextAt, p)
	for o.Phase == money.PhaseReverse {
		o = Step(o, res(payment.Unknown, payment.NoTradeState), o.NextAt, p)
	}
	o = Step(o, res(payment.Paid, payment.StateRefunding), o.NextAt, p)
	assert.Equal(t, money.Reversed, o.State, "posd's own reverse refunded it: the money went back")

	// An order posd never refunded or reversed, and knows no refund of:
	// a refund it cannot account for, never "refunded in full".
	q := Step(fresh(), res(payment.Pending, 6), t0, p)
	q = Step(q, res(payment.Paid, payment.StateRefunding), q.NextAt, p)
	assert.True(t, q.NeedsAttention(), "%s/%s", q.State, q.Phase)
	assert.Contains(t, q.Reason, "at least 0 of 100")
}

// A restored journal's paid order: posd asks refund_query for every refund
// id it knows of the order (an older posd's numbered ones, its own, the
// till's), whatever trade_state says, adds up what went back, and never
// sends a refund.
func TestMachineDiscoversRefundsAfterARestore(t *testing.T) {
	p := DefaultPolicy()
	restored := func() money.Order {
		o := fresh()
		o.Phase, o.State, o.FinishedAt, o.Restored = money.PhaseVerify, money.Paid, t0, true
		o.RefundSeq = 1 // an older posd's R1
		o.Refunds = []string{RefundIDFor(o.MchTradeID, "T1"), RefundIDFor(o.MchTradeID, "T2")}
		return o
	}
	found := map[string]int64{RefundIDN(fresh().MchTradeID, 1): 30, RefundIDFor(fresh().MchTradeID, "T2"): 25}
	discover := func(o money.Order, ts int) (money.Order, []string) {
		o = Step(o, res(payment.Paid, ts), t0, p)
		var asked []string
		for o.Phase == money.PhaseRefundQuery {
			require.Equal(t, payment.CallRefundQuery, o.Call(), "a discovery only asks")
			asked = append(asked, o.RefundID)
			r := res(payment.NotFound, payment.NoTradeState)
			if fee := found[o.RefundID]; fee > 0 {
				r = payment.Result{Outcome: payment.Done, Status: 0, RefundFee: fee, TradeState: payment.NoTradeState}
			}
			o = Step(o, r, o.NextAt, p)
		}
		return o, asked
	}

	o, asked := discover(restored(), payment.StateRefunding)
	assert.Equal(t, KnownRefunds(&o), slices.Compact(asked), "every known id asked, in order")
	assert.True(t, o.NeedsAttention(), "refunded in part since the copy: no proof there are no others")
	assert.Contains(t, o.Reason, "at least 55 of 100")

	o, asked = discover(restored(), payment.StatePaid)
	assert.Len(t, slices.Compact(asked), 3, "asked whatever trade_state says: some gateways keep 0 after a refund")
	assert.Equal(t, money.Paid, o.State, "55 of 100 went back: still paid, partly refunded")
	assert.Equal(t, int64(55), o.RefundedFee)
}

// A refund is asked for before it is sent: a run a restored journal does
// not remember may have made it. Found, it is this refund, with the
// gateway's amount; not found, it is sent under the same id.
func TestMachineRefundIsAskedBeforeItIsSent(t *testing.T) {
	p := DefaultPolicy()
	start := func() money.Order {
		o := fresh()
		o.Phase, o.State = money.PhaseDone, money.Paid
		startRefundOf(&o, "operator", 40, RefundIDFor(o.MchTradeID, "T1"), t0)
		return o
	}
	o := start()
	require.Equal(t, payment.CallRefundQuery, o.Call())
	sent := Step(o, res(payment.NotFound, payment.NoTradeState), t0, p)
	assert.Equal(t, payment.CallRefund, sent.Call())
	assert.Equal(t, o.RefundID, sent.RefundID, "sent under the id it was asked by")

	made := Step(start(), payment.Result{Outcome: payment.Done, Status: 0, RefundFee: 30}, t0, p)
	assert.Equal(t, money.Paid, made.State)
	assert.Equal(t, int64(30), made.RefundedFee, "the gateway's amount")
	assert.Equal(t, money.Refunded, made.RefundResult)
	assert.Contains(t, made.ErrMsg, "of 30 fen")

	u := start()
	for range 3 * p.ReverseAttempts {
		u = Step(u, res(payment.Unknown, payment.NoTradeState), u.NextAt, p)
	}
	assert.Equal(t, payment.CallRefundQuery, u.Call(), "no trusted answer: asked again, never sent blind")
	sent = Step(u, res(payment.NotFound, payment.NoTradeState), u.NextAt, p)
	assert.Equal(t, payment.CallRefund, sent.Call())

	// A retry beyond what posd has left, let through because an
	// operator's figure may count it: minutes of "no such refund", and
	// it fails unsent.
	e := fresh()
	e.Phase, e.State, e.RefundedFee, e.RefundedElsewhere = money.PhaseDone, money.Paid, 60, 60
	startRefundOf(&e, "operator", 60, RefundIDFor(e.MchTradeID, "T9"), t0)
	for range 100 {
		if e.Call() != payment.CallRefundQuery {
			break
		}
		e = Step(e, res(payment.NotFound, payment.NoTradeState), e.NextAt, p)
	}
	assert.Equal(t, money.Failed, e.RefundResult)
	assert.Equal(t, money.Paid, e.State)
	assert.Contains(t, e.ErrMsg, "not made")
}

func TestMachineNotFoundAfterSeenIsUnknown(t *testing.T) {
	p := DefaultPolicy()
	// (defect.NotFoundAfterSignedAnswer) a signed "paying" answer showed the order; a lagging
	// replica then answers 301.
	o := Step(fresh(), payment.Result{Outcome: payment.Pending, TradeState: 6, TradeID: "T1"}, t0, p)
	require.True(t, o.Seen)
	for o.Active() && o.Phase != money.PhaseReconcile {
		o = Step(o, res(payment.NotFound, payment.NoTradeState), o.NextAt, p)
		require.NotEqual(t, money.Failed, o.State, "301 after a signed answer is never 'nothing was created'")
	}
	assert.Equal(t, money.PhaseReconcile, o.Phase)
	assert.True(t, o.ReverseSent, "it went through the reverse")

	// Never seen: 301 is final.
	n := Step(fresh(), res(payment.Unknown, payment.NoTradeState), t0, p)
	for n.Active() {
		n = Step(n, res(payment.NotFound, payment.NoTradeState), n.NextAt, p)
	}
	assert.Equal(t, money.Failed, n.State)
}

func TestMachineNotSent(t *testing.T) {
	p := DefaultPolicy()
	o := Step(fresh(), res(payment.NotSent, payment.NoTradeState), t0, p)
	assert.Equal(t, money.Failed, o.State)
	assert.True(t, o.NotSent)
	assert.Contains(t, o.ErrMsg, "not charged")

	q := Step(fresh(), res(payment.Unknown, payment.NoTradeState), t0, p)
	q = Step(q, res(payment.NotSent, payment.NoTradeState), q.NextAt, p)
	assert.Equal(t, money.PhaseQuery, q.Phase, "a query that could not leave is asked again")
	assert.False(t, q.NotSent)
}

// paidOrder is a paid order whose refund was asked for (not made yet)
// and is to be sent.
func paidOrder(p Policy) money.Order {
	o := Step(fresh(), res(payment.Paid, 0), t0, p)
	startRefund(&o, "operator", t0)
	return Step(o, res(payment.NotFound, payment.NoTradeState), t0, p)
}

func TestMachineOperatorRefund(t *testing.T) {
	p := DefaultPolicy()
	o := paidOrder(p)
	assert.Equal(t, payment.CallRefund, o.Call())
	assert.Equal(t, money.Refunded, Step(o, res(payment.Done, payment.NoTradeState), t0, p).State, "refund_status 0: done")

	refused := Step(o, res(payment.Rejected, payment.NoTradeState), t0, p)
	assert.Equal(t, money.Paid, refused.State, "refused at the first try: nothing was refunded")
	assert.Equal(t, money.PhaseDone, refused.Phase)
	assert.Contains(t, refused.ErrMsg, "refund refused")

	inProgress := Step(o, payment.Result{Outcome: payment.Done, Status: 1, TradeState: payment.NoTradeState}, t0, p)
	assert.Equal(t, money.PhaseRefundQuery, inProgress.Phase, "in progress: refund_query follows it")
	assert.Equal(t, payment.CallRefundQuery, inProgress.Call())
}

func TestMachineRefundTimeoutThenRefused(t *testing.T) {
	p := DefaultPolicy()
	// (defect.LostRefundAnswerTakenAsRefused) the first refund times out (it may have been carried
	// out), a retry is refused. posd asks refund_query before it says
	// anything, and never "refused" while the gateway may have refunded.
	o := Step(paidOrder(p), res(payment.Unknown, payment.NoTradeState), t0, p)
	require.Equal(t, money.PhaseRefundQuery, o.Phase, "a lost refund answer is asked after, never re-judged")
	require.True(t, o.RefundUnknown)
	o = Step(o, res(payment.Unknown, payment.NoTradeState), o.NextAt, p)
	assert.Equal(t, money.PhaseRefundQuery, o.Phase, "no trusted answer: ask again")
	done := Step(o, res(payment.Done, payment.NoTradeState), o.NextAt, p)
	assert.Equal(t, money.Refunded, done.State, "refund_query says done")

	// The gateway does not know the refund (a 301, maybe a lagging
	// replica): the same mch_refund_id is sent again; a refusal of that
	// resend still says nothing, since the first try may have been made.
	again := Step(o, res(payment.NotFound, payment.NoTradeState), o.NextAt, p)
	require.Equal(t, money.PhaseRefund, again.Phase)
	require.True(t, again.RefundUnknown, "once unknown, only refund_query's 'done' or hours of 'no such refund' settle it")
	refused := Step(again, res(payment.Rejected, payment.NoTradeState), again.NextAt, p)
	assert.Equal(t, money.PhaseRefundQuery, refused.Phase)
	assert.NotEqual(t, money.PhaseDone, refused.Phase)

	// Hours of "no such refund" after every send: not carried out.
	x := refused
	for i := 0; x.Phase != money.PhaseDone && i < 100; i++ {
		if x.Phase == money.PhaseRefund {
			x = Step(x, res(payment.Rejected, payment.NoTradeState), x.NextAt, p)
			continue
		}
		x = Step(x, res(payment.NotFound, payment.NoTradeState), x.NextAt, p)
	}
	assert.Equal(t, money.Paid, x.State)
	assert.Contains(t, x.ErrMsg, "not carried out")
	assert.GreaterOrEqual(t, x.UpdatedAt.Sub(t0), 5*time.Minute, "only after minutes of it")

	// Refused after an unknown try: refund_query decides.
	u := Step(paidOrder(p), res(payment.Unknown, payment.NoTradeState), t0, p)
	u.Phase = money.PhaseRefund // a resend in flight when the refusal comes
	r := Step(u, res(payment.Rejected, payment.NoTradeState), t0, p)
	assert.Equal(t, money.PhaseRefundQuery, r.Phase, "never 'refused' while an earlier try may have been carried out")

	// The order query's trade_state 0 after a refund is not the judge.
	assert.Equal(t, payment.CallRefundQuery, r.Call())
}

func TestRefundIDFollowsTheTillsRefund(t *testing.T) {
	id := "S0010000_POS0100000_ABCDEFZZZZZZ"[:30]
	r := RefundIDFor(id, "T1")
	assert.True(t, payment.ValidTradeID(r), r)
	assert.Len(t, r, 32)
	assert.Equal(t, r, RefundIDFor(id, "T1"), "the same till refund, the same id")
	ids := []string{r, RefundIDFor(id, "T2"), RefundIDFor(id[:29], "T1"), RestRefundID(id), FallbackRefundID(id), RefundIDFor(id, "")}
	slices.Sort(ids)
	assert.Len(t, slices.Compact(ids), 6, "two refunds never share an id")
}

func TestAbortReversesAtOnce(t *testing.T) {
	p := DefaultPolicy()
	o := Step(fresh(), res(payment.Pending, 6), t0, p)
	require.Equal(t, money.PhaseQuery, o.Phase)
	a := abort(o, t0.Add(time.Second))
	assert.Equal(t, money.PhaseReverse, a.Phase, "no more waiting: reverse")
	assert.True(t, a.ReverseSent && a.Abort)
	assert.Equal(t, t0.Add(time.Second), a.NextAt)
	// Already reversing or confirming: it goes on as it was.
	r := o
	r.Phase = money.PhaseConfirm
	assert.Equal(t, money.PhaseConfirm, abort(r, t0).Phase)
	// A 301 right after a stopped pay whose answer was lost is not yet
	// "nothing was created".
	u := abort(Step(fresh(), res(payment.Unknown, payment.NoTradeState), t0, p), t0.Add(time.Second))
	r = u
	r.Phase = money.PhaseConfirm
	n := Step(r, res(payment.NotFound, payment.NoTradeState), t0.Add(2*time.Second), p)
	assert.NotEqual(t, money.Failed, n.State, "a replica may still lag")
	require.Equal(t, money.PhaseReconcile, n.Phase)
	assert.Equal(t, t0.Add(2*time.Second+p.ReconcileInterval), n.NextAt, "asked again a minute later")
	n = Step(n, res(payment.NotFound, payment.NoTradeState), n.NextAt, p)
	assert.Equal(t, money.Failed, n.State, "after a whole window of 301s it is")
	// The window is counted in queries, not read off the wall clock: a
	// clock that stepped a day ahead across a restart does not shorten it.
	n = Step(r, res(payment.NotFound, payment.NoTradeState), t0.Add(24*time.Hour), p)
	assert.NotEqual(t, money.Failed, n.State, "a clock's step is no window")
}
