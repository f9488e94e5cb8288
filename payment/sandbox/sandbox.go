// Package sandbox is a payment gateway simulator that speaks the protocol of
// docs/protocol.md, signature checks included. The last two digits of a payment
// code choose what happens, so that every path can be played by typing a
// code. It keeps a ledger that tests compare with what posd believes.
package sandbox

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"example.com/posd/payment"
)

// The built-in merchant: documented, public, useless on a real gateway.
const (
	MerchantID = "sandbox_merchant_001"
	Key        = "posd-sandbox-key-0000000000000000"
)

// Options tune the simulator. Zero values are fine for tests.
type Options struct {
	MerchantID string
	Key        string
	// SlowDelay is how long a code ending in 83 makes pay wait before it
	// answers; it must be longer than the client's timeout to play its row.
	SlowDelay time.Duration
	// Delay is added before every answer.
	Delay time.Duration
	// RefundingAfterReverse: a reverse that refunds a paid order leaves it
	// in trade_state 1 (refund in progress), as some gateways of the
	// family report it, instead of 4.
	RefundingAfterReverse bool
	// RefundKeepsTradeState: the order keeps showing trade_state 0 after a
	// refund, as some gateways of the family do (docs/protocol.md, "Refunds");
	// refund_query still answers the refund.
	RefundKeepsTradeState bool
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Order is one order in the ledger, as GET /_sandbox/orders shows it.
type Order struct {
	MchTradeID     string `json:"mch_trade_id"`
	TradeID        string `json:"trade_id"`
	OutTradeID     string `json:"out_trade_id"`
	PayType        string `json:"pay_type"`
	DeviceInfo     string `json:"device_info"`
	TotalFee       int64  `json:"total_fee"`
	AuthCode       string `json:"auth_code"`
	AuthCodeSHA256 string `json:"auth_code_sha256"`
	Scene          string `json:"scene"`
	TradeState     int    `json:"trade_state"`
	// Charged is what the customer is out of pocket now: total_fee while
	// paid, 0 once reversed or refunded.
	Charged     int64     `json:"charged"`
	RefundedFee int64     `json:"refunded_fee"`
	WasPaid     bool      `json:"was_paid"`
	Queries     int       `json:"queries"`
	Reverses    int       `json:"reverses"`
	Closes      int       `json:"closes"`
	CreatedAt   time.Time `json:"created_at"`

	scenario int
	refunds  []*Refund
}

// The sandbox's refund limits, the gateway family's: posd's defaults for
// refunds.max_per_order and refunds.max_age are the same.
const (
	MaxRefunds   = 50
	RefundWindow = 365 * 24 * time.Hour
)

// Refund is one refund the gateway made, through its API or in the
// merchant's back office.
type Refund struct {
	MchRefundID string `json:"mch_refund_id"`
	RefundID    string `json:"refund_id"`
	MchTradeID  string `json:"mch_trade_id"`
	RefundFee   int64  `json:"refund_fee"`
	BackOffice  bool   `json:"back_office,omitempty"`
}

// RefundIDReuse is a refund request whose mch_refund_id had already been
// used for another refund (another amount or order). The gateway answers
// it as the first refund and moves no money: the caller believes a refund
// was made that never was.
type RefundIDReuse struct {
	MchRefundID string `json:"mch_refund_id"`
	MchTradeID  string `json:"mch_trade_id"`
	FirstFee    int64  `json:"first_fee"`
	Fee         int64  `json:"fee"`
}

// PayRequest records every pay that arrived, whether or not it created an order.
type PayRequest struct {
	MchTradeID     string    `json:"mch_trade_id"`
	AuthCode       string    `json:"auth_code"`
	AuthCodeSHA256 string    `json:"auth_code_sha256"`
	TotalFee       int64     `json:"total_fee"`
	Answer         string    `json:"answer"`
	At             time.Time `json:"at"`
}

// Ledger is the JSON of GET /_sandbox/orders.
type Ledger struct {
	Orders         []Order         `json:"orders"`
	PayRequests    []PayRequest    `json:"pay_requests"`
	Refunds        []Refund        `json:"refunds"`
	RefundIDReuses []RefundIDReuse `json:"refund_id_reuses"`
}

// Refunded is what the gateway gave back of an order through refunds
// (a reverse's money is not a refund: see Order.RefundedFee).
func (l Ledger) Refunded(mchTradeID string) int64 {
	var sum int64
	for _, r := range l.Refunds {
		if r.MchTradeID == mchTradeID {
			sum += r.RefundFee
		}
	}
	return sum
}

// Sandbox is the simulator; it is an http.Handler.
type Sandbox struct {
	opt Options

	mu       sync.Mutex
	seq      int
	orders   map[string]*Order // by mch_trade_id
	byTrade  map[string]*Order // by trade_id
	codes    map[string]string // code hash -> mch_trade_id
	refunds  map[string]*Refund
	reuses   []RefundIDReuse
	office   int // back-office refunds made
	requests []PayRequest
	mux      *http.ServeMux
}

// New returns a sandbox with an empty ledger.
func New(opt Options) *Sandbox {
	if opt.MerchantID == "" {
		opt.MerchantID = MerchantID
	}
	if opt.Key == "" {
		opt.Key = Key
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	s := &Sandbox{
		opt:     opt,
		orders:  map[string]*Order{},
		byTrade: map[string]*Order{},
		codes:   map[string]string{},
		refunds: map[string]*Refund{},
		mux:     http.NewServeMux(),
	}
	s.mux.HandleFunc("POST /pay", s.gateway(s.pay))
	s.mux.HandleFunc("POST /query", s.gateway(s.query))
	s.mux.HandleFunc("POST /reverse", s.gateway(s.reverse))
	s.mux.HandleFunc("POST /order_close", s.gateway(s.close))
	s.mux.HandleFunc("POST /refund", s.gateway(s.refund))
	s.mux.HandleFunc("POST /refund_query", s.gateway(s.refundQuery))
	s.mux.HandleFunc("GET /_sandbox/orders", s.ledger)
	s.mux.HandleFunc("POST /_sandbox/backoffice/refund", s.backOfficeRefund)
	return s
}

func (s *Sandbox) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// answer is what a call handler decides; the wrapper signs and writes it.
type answer struct {
	status  int // HTTP status; 0 means 200
	code    int
	msg     string
	data    []payment.Param
	badSign bool
	wait    time.Duration
}

func fail(code int, msg string) answer { return answer{code: code, msg: msg} }

type request struct {
	params []payment.Param
}

func (r request) get(k string) string {
	for _, p := range r.params {
		if p.Key == k {
			return p.Value
		}
	}
	return ""
}

func (r request) int(k string) (int64, bool) {
	n, err := strconv.ParseInt(r.get(k), 10, 64)
	return n, err == nil
}

func (s *Sandbox) gateway(h func(request) answer) http.HandlerFunc {
	return func(w http.ResponseWriter, hr *http.Request) {
		a := s.check(hr)
		if a.code == 0 && a.status == 0 {
			params, _, _ := payment.ParamsFromJSON(a.raw)
			a.answer = h(request{params: params})
		}
		wait := s.opt.Delay + a.wait
		if wait > 0 {
			select {
			case <-time.After(wait):
			case <-hr.Context().Done():
				return
			}
		}
		s.write(w, a.answer)
	}
}

type checked struct {
	answer
	raw []byte
}

// check parses and authenticates a request: 100 unparsable, 101 bad
// signature, 200 unknown merchant.
func (s *Sandbox) check(hr *http.Request) checked {
	body, err := io.ReadAll(io.LimitReader(hr.Body, 64<<10))
	if err != nil {
		return checked{answer: fail(payment.CodeParseError, "read body: "+err.Error())}
	}
	params, sig, err := payment.ParamsFromJSON(body)
	if err != nil {
		return checked{answer: fail(payment.CodeParseError, "JSON parse error")}
	}
	if sig == "" {
		return checked{answer: fail(payment.CodeMissingField, "sign missing")}
	}
	if !payment.Verify(params, s.opt.Key, sig) {
		return checked{answer: fail(payment.CodeSignError, "signature error")}
	}
	if (request{params}).get("merchant_id") != s.opt.MerchantID {
		return checked{answer: fail(payment.CodeMerchantAbsent, "merchant not found")}
	}
	return checked{raw: body}
}

func (s *Sandbox) write(w http.ResponseWriter, a answer) {
	if a.status != 0 && a.status != http.StatusOK {
		http.Error(w, http.StatusText(a.status), a.status)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if a.code != 0 {
		_, _ = w.Write(Failure(a.code, a.msg))
		return
	}
	_, _ = w.Write(Answer(a.data, s.opt.Key, a.badSign))
}

// Failure is an envelope with a non-zero code: no data, no signature.
func Failure(code int, msg string) []byte {
	m, _ := json.Marshal(msg)
	return fmt.Appendf(nil, `{"code":%d,"msg":%s,"version":"1.0"}`, code, m)
}

// Answer is a signed envelope carrying data (sorted in place), its
// signature broken on purpose when badSign.
func Answer(data []payment.Param, key string, badSign bool) []byte {
	slices.SortFunc(data, func(x, y payment.Param) int { return strings.Compare(x.Key, y.Key) })
	sign := payment.Sign(data, key)
	if badSign {
		sign = "0" + sign[1:]
		if sign == payment.Sign(data, key) {
			sign = "1" + sign[1:]
		}
	}
	return fmt.Appendf(nil, `{"code":0,"msg":null,"data":%s,"version":"1.0","sign_type":"MD5","sign":%q}`, payment.EncodeObject(data), sign)
}

func (s *Sandbox) ledger(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	l := Ledger{Orders: []Order{}, PayRequests: slices.Clone(s.requests), Refunds: []Refund{}, RefundIDReuses: slices.Clone(s.reuses)}
	for _, o := range s.orders {
		l.Orders = append(l.Orders, *o)
	}
	for _, r := range s.refunds {
		l.Refunds = append(l.Refunds, *r)
	}
	s.mu.Unlock()
	if l.PayRequests == nil {
		l.PayRequests = []PayRequest{}
	}
	if l.RefundIDReuses == nil {
		l.RefundIDReuses = []RefundIDReuse{}
	}
	slices.SortFunc(l.Orders, func(a, b Order) int { return strings.Compare(a.MchTradeID, b.MchTradeID) })
	slices.SortFunc(l.Refunds, func(a, b Refund) int { return strings.Compare(a.MchRefundID, b.MchRefundID) })
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(l)
}

// Ledger returns a copy of the ledger, for in-process tests.
func (s *Sandbox) Ledger() Ledger {
	rec := &captureWriter{header: http.Header{}}
	s.ledger(rec, nil)
	var l Ledger
	_ = json.Unmarshal(rec.body, &l)
	return l
}

type captureWriter struct {
	header http.Header
	body   []byte
}

func (c *captureWriter) Header() http.Header { return c.header }
func (c *captureWriter) Write(b []byte) (int, error) {
	c.body = append(c.body, b...)
	return len(b), nil
}
func (c *captureWriter) WriteHeader(int) {}
