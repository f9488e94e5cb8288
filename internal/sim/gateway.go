package sim

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"example.com/posd/payment"
	"example.com/posd/payment/sandbox"
)

// The gateway model: a ledger that is the truth, answering each call with
// a behaviour PROTOCOL.md allows. Every choice comes from the seed and the
// call (order id, call kind, how many such calls came before), never from
// the order in which goroutines happen to run.

const (
	merchantID = "SIM_MERCHANT"
	merchantKy = "sim-key-0000000000000000000000000"
)

// How the customer behaves, per order.
type behaviour int

const (
	payNow       behaviour = iota // paid at once
	payLater                      // paying; paid on the k-th query
	payNever                      // paying until reversed
	decline                       // declined at once (trade_state 7)
	payAtReverse                  // pays just before the reverse, which refunds it
)

// fault is what happens to one call on the way.
type fault int

const (
	noFault      fault = iota
	dropBefore         // lost before the gateway: nothing done, no answer
	dropAfter          // done, the answer lost
	lateAnswer         // done, answered after the client's timeout
	http500            // nothing done, HTTP 500
	http502After       // done, HTTP 502
	code600            // pay: done, answered 600/601
	badSign            // done, the answer's signature broken
	refuse             // refund: answered 108 (refused), nothing done
)

var faultNames = [...]string{"", "drop-before", "drop-after", "late-answer", "http-500", "http-502-after", "code-600", "bad-sign", "refuse-108"}

type ledgerOrder struct {
	ID, CodeHash, Device string
	TotalFee             int64
	TradeID              string
	State                int
	Charged, Refunded    int64
	WasPaid              bool
	how                  behaviour
	payAfter             int // payLater: the query that finds it paid
	recallY              int // reverses answered "recall Y" first
	ts1                  bool
	lagUntil             time.Time // answers 301 until then: a lagging replica
	queries, reverses    int
	refunds              []string
	generation           int // the journal lineage that created it (restores start new ones)
}

type ledgerRefund struct {
	ID, Order, RefundID string
	Fee                 int64
}

// Gateway is the model. Its methods are safe for concurrent use.
type Gateway struct {
	seed uint64

	mu         sync.Mutex
	orders     map[string]*ledgerOrder
	byCode     map[string]string // code hash -> the first order id that used it
	refunds    map[string]*ledgerRefund
	calls      map[string]int // "id/call" -> how many so far
	linkDown   bool
	faulty     bool
	noReverse  bool
	generation int
	seq        int
	violations []string
	log        func(string)
	payCount   map[string]int  // id -> pay requests received
	written    map[string]bool // code hashes of every pay that was written
}

func newGateway(seed uint64, log func(string)) *Gateway {
	g := &Gateway{seed: seed, orders: map[string]*ledgerOrder{}, byCode: map[string]string{},
		refunds: map[string]*ledgerRefund{}, calls: map[string]int{}, payCount: map[string]int{}, written: map[string]bool{}, log: log}
	g.noReverse = g.rng("gateway", "no-reverse", 0).IntN(8) == 0
	return g
}

// rng is the random source of one decision.
func (g *Gateway) rng(a, b string, n int) *rand.Rand {
	h := fnv.New64a()
	var buf [8]byte
	binary.LittleEndian.PutUint64(buf[:], g.seed)
	h.Write(buf[:])
	h.Write([]byte(a))
	h.Write([]byte{0})
	h.Write([]byte(b))
	binary.LittleEndian.PutUint64(buf[:], uint64(n))
	h.Write(buf[:])
	s := h.Sum64()
	return rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15))
}

func (g *Gateway) violate(format string, a ...any) {
	g.violations = append(g.violations, fmt.Sprintf(format, a...))
}

// transport is one posd process's way to the gateway: once the process is
// dead, nothing it still tries reaches the gateway.
type transport struct {
	g     *Gateway
	alive func() bool
}

var errDead = errors.New("sim: the process is dead")

func (t transport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(req.Body)
	req.Body.Close()
	if !t.alive() {
		return nil, errDead
	}
	call := payment.Call(strings.TrimPrefix(req.URL.Path, "/"))
	t.g.mu.Lock()
	if t.g.linkDown {
		t.g.mu.Unlock()
		// No connection: the request is never written (no trace hook).
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	}
	t.g.mu.Unlock()
	if ct := httptrace.ContextClientTrace(req.Context()); ct != nil {
		if ct.WroteHeaders != nil {
			ct.WroteHeaders()
		}
		if ct.WroteRequest != nil {
			ct.WroteRequest(httptrace.WroteRequestInfo{})
		}
	}
	status, answer, f := t.g.handle(call, body)
	respond := func() (*http.Response, error) {
		return &http.Response{StatusCode: status, Body: io.NopCloser(bytes.NewReader(answer)),
			Header: http.Header{"Content-Type": {"application/json"}}, Request: req}, nil
	}
	switch f {
	case dropBefore, dropAfter:
		return nil, errors.New("sim: connection reset by peer")
	case lateAnswer:
		<-req.Context().Done() // the client gives up first
		return nil, req.Context().Err()
	}
	return respond()
}

// probe is the link probe: a handshake, never a payment call.
func (g *Gateway) probe(alive func() bool) func(context.Context) error {
	return func(context.Context) error {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.linkDown || !alive() {
			return &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
		}
		return nil
	}
}

func (g *Gateway) handle(call payment.Call, body []byte) (int, []byte, fault) {
	params, sig, err := payment.ParamsFromJSON(body)
	if err != nil || !payment.Verify(params, merchantKy, sig) {
		g.mu.Lock()
		g.violate("gateway: a %s request that does not verify", call)
		g.mu.Unlock()
		return 200, sandbox.Failure(payment.CodeSignError, "signature error"), noFault
	}
	get := func(k string) string {
		for _, p := range params {
			if p.Key == k {
				return p.Value
			}
		}
		return ""
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	key := get("mch_trade_id")
	if call == payment.CallPay {
		g.written[payment.CodeHash(get("auth_code"))] = true
	}
	if call == payment.CallRefundQuery {
		key = get("mch_refund_id")
	}
	g.calls[key+"/"+string(call)]++
	n := g.calls[key+"/"+string(call)]
	f := g.fault(call, key, n)
	apply := f != dropBefore && f != http500 && f != refuse
	var data []payment.Param
	code := 0
	status := 200
	if apply {
		data, code = g.act(call, get, f)
	}
	switch f {
	case http500:
		status = 500
	case http502After:
		status = 502
	case code600:
		code = 600 + g.rng(key, "601", n).IntN(2)
	case refuse:
		code = 108
	}
	if g.log != nil {
		out := "code " + strconv.Itoa(code)
		if code == 0 {
			out = describe(data)
		}
		if f != noFault {
			out += " [" + faultNames[f] + "]"
		}
		g.log(fmt.Sprintf("gw %s %s -> %s", call, key, out))
	}
	if status != 200 {
		return status, []byte("injected"), f
	}
	if code != 0 {
		return status, sandbox.Failure(code, "sim"), f
	}
	return status, sandbox.Answer(data, merchantKy, f == badSign), f
}

// fault picks what happens to the n-th call of its kind for key, while
// faults are on.
func (g *Gateway) fault(call payment.Call, key string, n int) fault {
	if !g.faulty {
		return noFault
	}
	r := g.rng(key, string(call)+"/fault", n)
	if r.IntN(100) >= 35 {
		return noFault
	}
	all := []fault{dropBefore, dropAfter, lateAnswer, http500, http502After, badSign}
	switch call {
	case payment.CallPay:
		all = append(all, code600)
	case payment.CallRefund:
		all = append(all, refuse, refuse)
	}
	return all[r.IntN(len(all))]
}

func (g *Gateway) act(call payment.Call, get func(string) string, f fault) ([]payment.Param, int) {
	switch call {
	case payment.CallPay:
		return g.pay(get, f)
	case payment.CallQuery:
		return g.query(get("mch_trade_id"))
	case payment.CallReverse:
		return g.reverse(get("mch_trade_id"))
	case payment.CallClose:
		return g.close(get("mch_trade_id"))
	case payment.CallRefund:
		fee, _ := strconv.ParseInt(get("refund_fee"), 10, 64)
		return g.refund(get("mch_trade_id"), get("mch_refund_id"), fee)
	case payment.CallRefundQuery:
		rf := g.refunds[get("mch_refund_id")]
		if rf == nil {
			return nil, payment.CodeOrderNotFound
		}
		return g.refundData(rf, 0), 0
	}
	return nil, payment.CodeParseError
}

func (g *Gateway) pay(get func(string) string, f fault) ([]payment.Param, int) {
	id, codeHash := get("mch_trade_id"), payment.CodeHash(get("auth_code"))
	g.payCount[id]++
	if g.payCount[id] > 1 {
		g.violate("pay for %s sent %d times: posd never sends a pay twice", id, g.payCount[id])
	}
	if o := g.orders[id]; o != nil {
		if o.CodeHash != codeHash {
			g.violate("mch_trade_id %s used for two orders (two payment codes)", id)
		}
		return nil, payment.CodeDuplicate
	}
	if prev, ok := g.byCode[codeHash]; ok && prev != id && g.orders[prev] != nil && g.orders[prev].generation == g.generation {
		g.violate("a payment code sent under two ids: %s and %s", prev, id)
	}
	fee, _ := strconv.ParseInt(get("total_fee"), 10, 64)
	g.seq++
	o := &ledgerOrder{ID: id, CodeHash: codeHash, Device: get("device_info"), TotalFee: fee,
		TradeID: fmt.Sprintf("SIMT%08d", g.seq), State: payment.StatePaying, generation: g.generation}
	r := g.rng(codeHash, "behaviour", 0)
	switch p := r.IntN(100); {
	case p < 45:
		o.how = payNow
	case p < 60:
		o.how, o.payAfter = payLater, 1+r.IntN(8)
	case p < 75:
		o.how, o.recallY = payNever, r.IntN(3)
	case p < 88:
		o.how = decline
	default:
		o.how, o.ts1 = payAtReverse, r.IntN(2) == 0
	}
	if _, used := g.byCode[codeHash]; used {
		o.how = decline // a wallet refuses a code it has seen
	} else {
		g.byCode[codeHash] = id
	}
	if g.faulty && r.IntN(4) == 0 {
		// A lagging replica. Once posd has a signed answer about the order
		// it may lag through the whole confirmation window; otherwise only
		// for seconds: a 301 through every query and the reverse, with no
		// signed answer ever, is what "nothing was created" looks like
		// (PROTOCOL.md, row 86), and posd rightly takes it so.
		lag := time.Duration(1+r.IntN(20)) * time.Second
		if f == noFault {
			lag = time.Duration(1+r.IntN(300)) * time.Second
		}
		o.lagUntil = now().Add(lag)
	}
	g.orders[id] = o
	switch o.how {
	case payNow:
		g.paid(o)
	case decline:
		o.State = payment.StateFailed
	}
	nq := "Y"
	if o.State == payment.StateFailed {
		nq = "N"
	}
	return append(g.orderData(o), payment.Param{Key: "need_query", Value: nq}), 0
}

func (g *Gateway) paid(o *ledgerOrder) {
	o.State, o.Charged, o.WasPaid = payment.StatePaid, o.TotalFee, true
}

func (g *Gateway) lagging(o *ledgerOrder) bool { return now().Before(o.lagUntil) }

// now is the simulation's clock: inside the synctest bubble, virtual.
func now() time.Time { return time.Now() }
