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
// a behaviour docs/protocol.md allows. Every choice comes from the seed and the
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
	refuse             // pay, refund: answered 108 (refused), nothing done
	refuseAfter        // pay: done, answered an error code all the same (an upstream's, relayed)
	refundFails        // refund: answered refund_status -1 (failed, may be tried again), nothing done
	noConnection       // the connection refused (an overloaded front end): never written, posd knows it
)

var faultNames = [...]string{"", "drop-before", "drop-after", "late-answer", "http-500", "http-502-after", "code-600", "bad-sign", "refuse-108",
	"refused-after", "refund-fails", "no-connection"}

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
	expireAt             time.Time // closed then if still unpaid (the gateway's time_expire)
	staleUntil           time.Time // a replica may answer "paying" until then, after it was paid or ended
	lagUntil             time.Time // answers 301 until then: a lagging replica
	queries, reverses    int
	refunds              []string
	refundedByRefund     bool      // a refund, not a reverse, gave money back
	noReverseAt          time.Time // a reverse was answered "none here": a query at once is the fallback's
	generation           int       // the journal lineage that created it (restores start new ones)
}

type ledgerRefund struct {
	ID, Order, RefundID string
	Fee                 int64
	processing          time.Time // said to be in progress (refund_status 1) until then
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
	calm       bool // the faults stopped for good (heal): no order is hostile any more
	noReverse  bool
	keepsTS0   bool // trade_state stays 0 after a refund (docs/protocol.md, "Refunds": some gateways of the family)
	generation int
	seq        int
	failed     map[string]string // mch_refund_id -> order, of refunds answered -1 and not made since
	violations []string
	log        func(string)
	payCount   map[string]int  // id -> pay requests received
	written    map[string]bool // code hashes of every pay that was written
}

func newGateway(seed uint64, log func(string)) *Gateway {
	g := &Gateway{seed: seed, orders: map[string]*ledgerOrder{}, byCode: map[string]string{},
		refunds: map[string]*ledgerRefund{}, calls: map[string]int{}, payCount: map[string]int{}, written: map[string]bool{},
		failed: map[string]string{}, log: log}
	g.noReverse = g.rng("gateway", "no-reverse", 0).IntN(8) == 0
	g.keepsTS0 = g.rng("gateway", "keeps-ts0", 0).IntN(4) == 0
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
	f, n := noFault, 0
	if !t.g.linkDown {
		f, n = t.g.draw(call, body)
	}
	down := t.g.linkDown || f == noConnection
	t.g.mu.Unlock()
	if down {
		// No connection: the request is never written (no trace hook).
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	}
	if ct := httptrace.ContextClientTrace(req.Context()); ct != nil {
		if ct.WroteHeaders != nil {
			ct.WroteHeaders()
		}
		if ct.WroteRequest != nil {
			ct.WroteRequest(httptrace.WroteRequestInfo{})
		}
	}
	status, answer := t.g.handle(call, body, f, n)
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

// draw picks what happens to a call: the n-th of its kind for its order
// (or refund).
func (g *Gateway) draw(call payment.Call, body []byte) (fault, int) {
	params, _, _ := payment.ParamsFromJSON(body)
	key := param(params, "mch_trade_id")
	if call == payment.CallRefundQuery {
		key = param(params, "mch_refund_id")
	}
	g.calls[key+"/"+string(call)]++
	n := g.calls[key+"/"+string(call)]
	f := g.fault(call, key, n)
	if f == noConnection && g.log != nil {
		g.log(fmt.Sprintf("gw %s %s -> [%s]", call, key, faultNames[f]))
	}
	return f, n
}

func param(params []payment.Param, k string) string {
	for _, p := range params {
		if p.Key == k {
			return p.Value
		}
	}
	return ""
}

func (g *Gateway) handle(call payment.Call, body []byte, f fault, n int) (int, []byte) {
	params, sig, err := payment.ParamsFromJSON(body)
	if err != nil || !payment.Verify(params, merchantKy, sig) {
		g.mu.Lock()
		g.violate("gateway: a %s request that does not verify", call)
		g.mu.Unlock()
		return 200, sandbox.Failure(payment.CodeSignError, "signature error")
	}
	get := func(k string) string { return param(params, k) }
	g.mu.Lock()
	defer g.mu.Unlock()
	key := get("mch_trade_id")
	if call == payment.CallPay {
		g.written[payment.CodeHash(get("auth_code"))] = true
	}
	if call == payment.CallRefundQuery {
		key = get("mch_refund_id")
	}
	apply := f != dropBefore && f != http500 && f != refuse && f != refundFails
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
	case refuseAfter:
		code = 1500
	case refundFails:
		data = g.refundFailed(get("mch_trade_id"), get("mch_refund_id"), get("refund_fee"))
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
		return status, []byte("injected")
	}
	if code != 0 {
		return status, sandbox.Failure(code, "sim")
	}
	return status, sandbox.Answer(data, merchantKy, f == badSign)
}

// fault picks what happens to the n-th call of its kind for key: what a
// hostile order meets, or, while faults are on, what a third of the calls
// meet.
func (g *Gateway) fault(call payment.Call, key string, n int) fault {
	if f := g.hostile(call, key, n); f != noFault {
		return f
	}
	if !g.faulty {
		return noFault
	}
	r := g.rng(key, string(call)+"/fault", n)
	if r.IntN(100) >= 35 {
		return noFault
	}
	all := []fault{dropBefore, dropAfter, lateAnswer, http500, http502After, badSign, noConnection}
	switch call {
	case payment.CallPay:
		all = append(all, code600, refuse, refuseAfter)
	case payment.CallRefund:
		all = append(all, refuse, refuse, refundFails)
	}
	return all[r.IntN(len(all))]
}

// hostile: a few orders meet a gateway that fails every call of one kind
// about them, whether faults are on or not, until they stop for good: so
// that every retry of a phase is used up, which faults drawn call by call
// almost never do (six queries, five reverses, verifying queries backed
// off to their longest wait). Some orders' queries fail only until the query phase
// is used up, so that the phases after it meet trusted answers. A pay is
// made and its answer lost; a refund fails (-1) or never arrives. An
// order the gateway gave money back for is answered again: posd keeps
// asking a verify it cannot confirm, and never takes the copy's "paid".
func (g *Gateway) hostile(call payment.Call, key string, n int) fault {
	if g.calm {
		return noFault
	}
	if o := g.orders[key]; call == payment.CallQuery && o != nil && o.Refunded > 0 {
		return noFault
	}
	// One way for all the calls: so that the last try, too, is of each.
	ways, odds, upTo := [][]fault{{noConnection}, {dropBefore, dropAfter, lateAnswer, http500, http502After, badSign}}, 12, 0
	r := g.rng(key, string(call)+"/hostile", 0)
	switch call {
	case payment.CallPay:
		ways = [][]fault{{dropAfter, lateAnswer, http502After, badSign, code600}}
	case payment.CallQuery:
		if r.IntN(2) == 0 {
			upTo = 6 + r.IntN(2)
		}
	case payment.CallRefund:
		// It fails; it never arrives; it is refused after one that was lost.
		ways, odds = [][]fault{{refundFails}, {dropBefore, http500, noConnection}, {dropBefore, refuse}}, 4
	}
	if r.IntN(odds) != 0 || upTo > 0 && n > upTo {
		return noFault
	}
	all := ways[r.IntN(len(ways))]
	return all[g.rng(key, string(call)+"/hostile", n).IntN(len(all))]
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
		rid := get("mch_refund_id")
		rf := g.refunds[rid]
		switch {
		case rf == nil && g.failed[rid] != "":
			return g.refundData(&ledgerRefund{ID: rid, Order: g.failed[rid]}, -1), 0
		case rf == nil:
			return nil, payment.CodeOrderNotFound
		}
		return g.refundData(rf, rf.status()), 0
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
	fee, _ := strconv.ParseInt(get("total_fee"), 10, 64)
	if g.rng(id, "foreign", 0).IntN(150) == 0 {
		// Another box (a clone of this one) used the id first: its
		// order, closed unpaid, is not posd's.
		g.orders[id] = &ledgerOrder{ID: id, CodeHash: "another box's", TotalFee: fee, TradeID: "SIMT_OTHER_" + id,
			State: payment.StateClosed, generation: g.generation}
		return nil, payment.CodeDuplicate
	}
	if prev, ok := g.byCode[codeHash]; ok && prev != id && g.orders[prev] != nil && g.orders[prev].generation == g.generation {
		g.violate("a payment code sent under two ids: %s and %s", prev, id)
	}
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
		switch x := g.rng(id, "never", 0); {
		case f == refuseAfter && x.IntN(2) == 0:
			o.State = payment.StateClosed // the upstream's error closed it
		case x.IntN(4) == 0:
			o.recallY = 5 + x.IntN(3) // the customer keeps the password prompt open past every reverse
		case x.IntN(3) == 0:
			o.expireAt = now().Add(time.Duration(15+x.IntN(120)) * time.Second)
		}
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
	if g.faulty && r.IntN(4) == 0 && f != refuseAfter { // a refused pay is checked once: see stepPay
		// A lagging replica. Once posd has a signed answer about the order
		// it may lag through the whole confirmation window; otherwise only
		// for seconds: a 301 through every query and the reverse, with no
		// signed answer ever, is what "nothing was created" looks like
		// (docs/protocol.md, "The sandbox gateway", row 86), and posd rightly
		// takes it so.
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

// has says whether the ledger holds an order.
func (g *Gateway) has(id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.orders[id] != nil
}
