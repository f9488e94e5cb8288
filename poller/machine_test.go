package poller

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"posd/payment"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func res(o payment.Outcome, ts int) payment.Result {
	return payment.Result{Outcome: o, TradeState: ts, Reason: "test"}
}

func fresh() Order {
	return NewOrder(Order{MchTradeID: "S1_L1_ABCDEF1", TotalFee: 100, DeviceInfo: "L1", AuthCode: "281234567890123456"}, t0)
}

// run feeds answers to the machine, one per call, and returns the calls
// made and the final order.
func run(t *testing.T, p Policy, answers func(call payment.Call, n int) payment.Result) ([]payment.Call, Order) {
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
		if o.Phase != PhasePay {
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
		state   State
		queries int
		calls   []payment.Call
	}{
		{
			name:   "paid at once",
			answer: func(payment.Call, int) payment.Result { return res(payment.Paid, 0) },
			state:  Paid, calls: []payment.Call{"pay"},
		},
		{
			name:   "declined final",
			answer: func(payment.Call, int) payment.Result { return res(payment.NotPaid, 7) },
			state:  Declined, calls: []payment.Call{"pay"},
		},
		{
			name: "paying, paid on the 3rd query",
			answer: func(c payment.Call, n int) payment.Result {
				if c == payment.CallQuery && n == 3 {
					return res(payment.Paid, 0)
				}
				return res(payment.Pending, 6)
			},
			state: Paid, calls: []payment.Call{"pay", "query", "query", "query"},
		},
		{
			name: "timeout then paid: unknown is never a decline",
			answer: func(c payment.Call, n int) payment.Result {
				if c == payment.CallPay {
					return res(payment.Unknown, payment.NoTradeState)
				}
				return res(payment.Paid, 0)
			},
			state: Paid, calls: []payment.Call{"pay", "query"},
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
			state: Reversed,
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
			state: Reversed,
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
			state: Failed,
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
			state: Closed,
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
			state: Reversed,
			calls: []payment.Call{"pay", "query", "query", "query", "query", "query", "query", "reverse", "query", "refund", "query"},
		},
		{
			name: "rejected pay is checked once",
			answer: func(c payment.Call, n int) payment.Result {
				if c == payment.CallPay {
					return res(payment.Rejected, payment.NoTradeState)
				}
				return res(payment.NotFound, payment.NoTradeState)
			},
			state: Failed, calls: []payment.Call{"pay", "query"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			calls, o := run(t, p, c.answer)
			assert.Equal(t, c.calls, calls)
			assert.Equal(t, c.state, o.State)
			assert.Equal(t, PhaseDone, o.Phase)
		})
	}
}

func TestMachineQuerySchedule(t *testing.T) {
	p := DefaultPolicy()
	o := fresh()
	o = Step(o, res(payment.Pending, 6), t0, p)
	require.Equal(t, PhaseQuery, o.Phase)
	assert.Equal(t, t0.Add(5*time.Second), o.NextAt, "first query one interval after the pay")
	last := o.NextAt
	for i := 1; i < p.QueryAttempts; i++ {
		o = Step(o, res(payment.Pending, 6), last, p)
		require.Equal(t, PhaseQuery, o.Phase)
		assert.Equal(t, last.Add(5*time.Second), o.NextAt)
		last = o.NextAt
	}
	o = Step(o, res(payment.Pending, 6), last, p)
	assert.Equal(t, PhaseReverse, o.Phase, "after the 6th query")
	assert.Equal(t, t0.Add(30*time.Second), last, "the window from pay to the last query is 30s")
}

func TestMachineUnresolvedGoesToReconcile(t *testing.T) {
	p := DefaultPolicy()
	o := fresh()
	o.Phase = PhaseConfirm
	o = Step(o, res(payment.Unknown, payment.NoTradeState), t0, p)
	assert.Equal(t, PhaseReconcile, o.Phase)
	assert.Equal(t, Unknown, o.State)
	assert.Equal(t, t0.Add(time.Minute), o.NextAt)
	o = Step(o, res(payment.Unknown, payment.NoTradeState), o.NextAt, p)
	assert.Equal(t, 2*time.Minute, o.NextAt.Sub(t0.Add(time.Minute)), "backs off")
	for range 20 {
		o = Step(o, res(payment.Unknown, payment.NoTradeState), o.NextAt, p)
	}
	assert.Equal(t, PhaseReconcile, o.Phase)
	assert.Equal(t, o.UpdatedAt.Add(p.ReconcileMax), o.NextAt, "capped")
	o = Step(o, res(payment.Pending, 6), o.NextAt, p)
	assert.Equal(t, PhaseReverse, o.Phase, "still open at the gateway: reverse again")
	o = Step(o, res(payment.NotPaid, 4), o.NextAt, p)
	o = Step(o, res(payment.Paid, 0), o.NextAt, p)
	assert.Equal(t, Paid, o.State, "the confirming query decides")
}

func TestMachineDuplicateAdoption(t *testing.T) {
	p := DefaultPolicy()
	mine := payment.Result{Outcome: payment.Paid, TradeState: 0, TotalFee: 100, DeviceInfo: "L1"}
	o := Step(fresh(), res(payment.Duplicate, payment.NoTradeState), t0, p)
	require.True(t, o.Adopt)
	require.Equal(t, PhaseQuery, o.Phase)
	adopted := Step(o, mine, t0, p)
	assert.Equal(t, Paid, adopted.State, "our own order (same fee and device) is adopted")

	other := mine
	other.TotalFee = 999
	a := Step(o, other, t0, p)
	assert.Equal(t, PhaseAttention, a.Phase, "another order under our id is never adopted nor reversed")
	assert.Equal(t, Unknown, a.State)
	other = mine
	other.DeviceInfo = "L2"
	assert.Equal(t, PhaseAttention, Step(o, other, t0, p).Phase)

	for range p.QueryAttempts {
		o = Step(o, res(payment.Unknown, payment.NoTradeState), t0, p)
	}
	assert.Equal(t, PhaseAttention, o.Phase, "unverifiable ownership ends in attention, never a reverse")
}

func TestMachineOperatorRefund(t *testing.T) {
	p := DefaultPolicy()
	o := Step(fresh(), res(payment.Paid, 0), t0, p)
	o.Phase, o.RefundID, o.RefundBy = PhaseRefund, RefundID(o.MchTradeID), "operator"
	assert.Equal(t, payment.CallRefund, o.Call())
	r := Step(o, res(payment.Done, payment.NoTradeState), t0, p)
	assert.Equal(t, PhaseConfirm, r.Phase)
	assert.Equal(t, Refunded, Step(r, res(payment.Paid, 1), t0, p).State)

	refused := Step(o, res(payment.Rejected, payment.NoTradeState), t0, p)
	assert.Equal(t, Paid, refused.State)
	assert.Equal(t, PhaseDone, refused.Phase)
	assert.Contains(t, refused.ErrMsg, "refund refused")
}

func TestRefundIDFits(t *testing.T) {
	id := "S0010000_POS0100000_ABCDEFZZZZZZ"[:30]
	assert.True(t, payment.ValidTradeID(RefundID(id)))
}
