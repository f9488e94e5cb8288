package poller

import (
	"context"
	"sync"
	"testing"
	"time"

	"example.com/posd/internal/journal"
	"example.com/posd/internal/journal/journaltest"
	"example.com/posd/internal/money"
	"example.com/posd/payment"
)

type callRec struct {
	call payment.Call
	id   string
	at   time.Time
}

// fakeGateway answers by a script and records every call with its time.
// A reverse it answered NotPaid has landed, and from then on it answers
// queries of that order reversed, whatever the script says: as a gateway
// does, and so that a script need not follow each order's history. A
// reverse that failed, or was answered by a lagging replica, changes
// nothing.
type fakeGateway struct {
	// answer is the script: the answer to the n-th call of its kind about
	// order id (for a refund query, its mch_refund_id less the last two
	// characters: the order's id under RefundIDN's first refunds). Nil
	// answers Unknown to everything.
	answer func(call payment.Call, id string, n int) payment.Result
	// keepsRefunds makes refunds the gateway's own rather than scripted:
	// the first refund under a mch_refund_id gives its fee back and is
	// kept; a refund asked again under the same id is answered as the one
	// made, and a refund query answers from what was kept, as WeChat-like
	// gateways and the simulation's gateway do.
	keepsRefunds bool

	mu       sync.Mutex
	calls    []callRec
	counts   map[string]int
	reversed map[string]bool
	refunds  map[string]int64 // mch_refund_id -> fee given back (keepsRefunds)
	refundRQ []string         // mch_refund_id of each refund request
	given    int64            // money given back by refunds made here (keepsRefunds)
}

// record notes a call and returns its number among the calls of its kind
// about id; g.mu is held.
func (g *fakeGateway) record(c payment.Call, id string) int {
	if g.counts == nil {
		g.counts, g.reversed = map[string]int{}, map[string]bool{}
	}
	g.counts[string(c)+id]++
	g.calls = append(g.calls, callRec{c, id, time.Now()})
	return g.counts[string(c)+id]
}

// scripted records a call and answers it by the script; g.mu is held.
func (g *fakeGateway) scripted(c payment.Call, id string) payment.Result {
	n := g.record(c, id)
	if c == payment.CallQuery && g.reversed[id] {
		return res(payment.NotPaid, payment.StateReversed)
	}
	if g.answer == nil {
		return payment.Result{Outcome: payment.Unknown, TradeState: payment.NoTradeState}
	}
	r := g.answer(c, id, n)
	if c == payment.CallReverse && r.Outcome == payment.NotPaid {
		g.reversed[id] = true
	}
	return r
}

func (g *fakeGateway) call(c payment.Call, id string) payment.Result {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.scripted(c, id)
}

func (g *fakeGateway) Pay(_ context.Context, r *payment.PayRequest) payment.Result {
	return g.call(payment.CallPay, r.MchTradeID)
}
func (g *fakeGateway) Query(_ context.Context, r payment.OrderRef, _ int64) payment.Result {
	return g.call(payment.CallQuery, r.MchTradeID)
}
func (g *fakeGateway) Reverse(_ context.Context, r payment.OrderRef) payment.Result {
	return g.call(payment.CallReverse, r.MchTradeID)
}
func (g *fakeGateway) Close(_ context.Context, r payment.OrderRef) payment.Result {
	return g.call(payment.CallClose, r.MchTradeID)
}

func (g *fakeGateway) Refund(_ context.Context, r *payment.RefundRequest) payment.Result {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refundRQ = append(g.refundRQ, r.MchRefundID)
	if !g.keepsRefunds {
		return g.scripted(payment.CallRefund, r.MchTradeID)
	}
	g.record(payment.CallRefund, r.MchTradeID)
	if g.refunds == nil {
		g.refunds = map[string]int64{}
	}
	if fee, ok := g.refunds[r.MchRefundID]; ok {
		// The same mch_refund_id is the same refund: answered as made.
		return payment.Result{Outcome: payment.Done, TradeState: payment.NoTradeState, RefundFee: fee}
	}
	g.refunds[r.MchRefundID] = r.RefundFee
	g.given += r.RefundFee
	return payment.Result{Outcome: payment.Done, TradeState: payment.NoTradeState, RefundFee: r.RefundFee}
}

func (g *fakeGateway) RefundQuery(_ context.Context, r *payment.RefundQueryRequest) payment.Result {
	g.mu.Lock()
	defer g.mu.Unlock()
	id := r.MchRefundID[:len(r.MchRefundID)-2]
	if !g.keepsRefunds {
		return g.scripted(payment.CallRefundQuery, id)
	}
	g.record(payment.CallRefundQuery, id)
	if fee, ok := g.refunds[r.MchRefundID]; ok {
		return payment.Result{Outcome: payment.Done, TradeState: payment.NoTradeState, RefundFee: fee}
	}
	return payment.Result{Outcome: payment.NotFound, TradeState: payment.NoTradeState}
}

func (g *fakeGateway) callsOf(id string) []callRec {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []callRec
	for _, c := range g.calls {
		if c.id == id {
			out = append(out, c)
		}
	}
	return out
}

// newTestPoller is a poller with the default policy asking gw, on a fresh
// journal of its own; onUpdate may be nil.
func newTestPoller(t testing.TB, gw *fakeGateway, onUpdate func(money.Order, money.Settled)) (*Poller, *journal.Journal) {
	t.Helper()
	j := journaltest.Open(t)
	return New(Options{Gateway: gw, Journal: j, Policy: DefaultPolicy(), OnUpdate: onUpdate}), j
}
