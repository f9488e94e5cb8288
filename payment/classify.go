package payment

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Outcome is what a gateway answer tells about an order. Results are
// classified, never thrown: a caller branches on the outcome.
type Outcome int

const (
	// Unknown: nothing trustworthy was learned (timeout, transport error,
	// HTTP error, 600/601, bad signature, an answer about another order).
	// The order may or may not exist and may or may not be paid.
	Unknown Outcome = iota
	// Paid: the payment happened (trade_state 0, or 1: a refund started).
	Paid
	// Pending: the order exists and is not final yet.
	Pending
	// NotPaid: the order is final and no money moved (3, 4, 7).
	NotPaid
	// Rejected: the gateway refused the request (code != 0): it did nothing.
	Rejected
	// NotFound: the gateway has no such order (301).
	NotFound
	// Duplicate: a pay's mch_trade_id already exists (107): query it.
	Duplicate
	// NoReverse: the gateway has no reverse call (HTTP 404, 100/103).
	NoReverse
	// Done: an order_close or refund was carried out (or already had been).
	Done
	// NotSent: the request never left the box (no connection could be
	// made), so the gateway did nothing. Only the client says this.
	NotSent
)

var outcomeNames = [...]string{"unknown", "paid", "pending", "not_paid", "rejected", "not_found", "duplicate", "no_reverse", "done", "not_sent"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// Gateway error codes (docs/protocol.md, "Error codes").
const (
	CodeOK             = 0
	CodeParseError     = 100
	CodeSignError      = 101
	CodeMissingField   = 103
	CodeDuplicate      = 107
	CodeOutsideHours   = 108
	CodeMerchantAbsent = 200
	CodeOrderNotFound  = 301
	CodeUpstreamError  = 600
	CodeUpstreamTimout = 601
)

// Trade states of the v1 table.
const (
	StatePaid      = 0
	StateRefunding = 1
	StateUnpaid    = 2
	StateClosed    = 3
	StateReversed  = 4
	StateRevoking  = 5
	StatePaying    = 6
	StateFailed    = 7
	StateInitial   = -1
	NoTradeState   = -99
)

// FinalTradeState reports whether a trade_state is final, and whether the
// payment happened in it.
func FinalTradeState(s int) (final, paid bool) {
	switch s {
	case StatePaid, StateRefunding:
		return true, true
	case StateClosed, StateReversed, StateFailed:
		return true, false
	}
	return false, false
}

// Result is a classified answer.
type Result struct {
	Outcome    Outcome
	TradeState int // NoTradeState when the answer had none
	TradeID    string
	OutTradeID string
	TotalFee   int64
	DeviceInfo string
	ErrMsg     string
	Recall     string // reverse: "Y" call again, "N" done
	Status     int    // close_status or refund_status when present
	RefundID   string
	RefundFee  int64     // refund and refund_query: the refund's amount, when the answer gives it
	Detail     PayDetail // pay and query: what a trusted answer says of the payment
	Code       int
	HTTPStatus int
	// Reason says, for logs, why an answer was not trusted or not final.
	Reason string
}

// Expect is what the caller sent; an answer about something else is not
// trusted.
type Expect struct {
	MerchantID string
	MchTradeID string
	TotalFee   int64 // 0: not checked (reverse, close)
	// MchRefundID, when set, must be the refund an answer is about.
	MchRefundID string
}

// Classify turns one HTTP exchange into a Result. err is the transport
// error, if any; body the response body. It never returns Paid for an
// answer whose signature does not verify or that is about another order.
func Classify(call Call, exp Expect, key string, status int, body []byte, err error) Result {
	r := Result{Outcome: Unknown, TradeState: NoTradeState, HTTPStatus: status}
	if err != nil {
		r.Reason = "transport: " + err.Error()
		return r
	}
	if status == http.StatusNotFound && call == CallReverse {
		r.Outcome, r.Reason = NoReverse, "gateway has no reverse (HTTP 404)"
		return r
	}
	if status != http.StatusOK {
		r.Reason = fmt.Sprintf("HTTP %d", status)
		return r
	}
	env, derr := DecodeEnvelope(body)
	if derr != nil {
		r.Reason = derr.Error()
		return r
	}
	r.Code = env.Code
	if env.Code != CodeOK {
		return classifyError(call, env, r)
	}
	if !env.HasData {
		r.Reason = "code 0 without data"
		return r
	}
	if !strings.EqualFold(env.SignType, "MD5") && env.SignType != "" {
		r.Reason = "unsupported sign_type " + env.SignType
		return r
	}
	if !Verify(env.Data, key, env.Sign) {
		r.Reason = "signature does not verify"
		return r
	}
	if reason := mismatch(&env, exp); reason != "" {
		r.Reason = reason
		return r
	}
	r.TradeID = cleanField(&env, "trade_id", maxIDLen)
	r.OutTradeID = cleanField(&env, "out_trade_id", maxIDLen)
	r.DeviceInfo = cleanField(&env, "device_info", maxIDLen)
	r.ErrMsg = cleanField(&env, "err_msg", maxMsgLen)
	r.TotalFee, _ = env.Int("total_fee")
	if call == CallPay || call == CallQuery {
		r.Detail = payDetail(&env)
	}
	if ts, ok := env.Get("trade_state"); ok {
		n, err := strconv.Atoi(ts)
		if err != nil {
			r.Reason = "trade_state " + strconv.Quote(ts) + " is not a number"
			return r
		}
		r.TradeState = n
	}
	switch call {
	case CallPay:
		return classifyPay(&env, r)
	case CallQuery:
		return classifyQuery(r)
	case CallReverse:
		return classifyReverse(&env, r)
	case CallClose:
		return classifyStatus(&env, r, "close_status")
	case CallRefund, CallRefundQuery:
		r.RefundID = cleanField(&env, "refund_id", maxIDLen)
		if fee, ok := env.Int("refund_fee"); ok && fee > 0 {
			r.RefundFee = fee
		}
		return classifyStatus(&env, r, "refund_status")
	}
	r.Reason = "unknown call " + string(call)
	return r
}

func classifyError(call Call, env Envelope, r Result) Result {
	r.ErrMsg = CleanText(env.Msg, maxMsgLen)
	r.Reason = fmt.Sprintf("code %d: %s", env.Code, r.ErrMsg)
	switch {
	case env.Code == CodeUpstreamError || env.Code == CodeUpstreamTimout:
		// The upstream may have acted: only a query can tell.
		r.Outcome = Unknown
	case env.Code == CodeOrderNotFound && call != CallPay:
		r.Outcome = NotFound
	case env.Code == CodeDuplicate && call == CallPay:
		r.Outcome = Duplicate
	case call == CallReverse && (env.Code == CodeParseError || env.Code == CodeMissingField):
		r.Outcome = NoReverse
	case call == CallPay || call == CallRefund || call == CallClose:
		r.Outcome = Rejected
	default:
		r.Outcome = Unknown
	}
	return r
}

// Bounds on gateway text copied into a Result: real ids are about 32 bytes
// and messages a short sentence.
const (
	maxIDLen  = 64
	maxMsgLen = 128
)

// cleanField is a data field made safe for a receipt or a display. Only the
// copy is cleaned: the signature was checked over the raw text.
func cleanField(env *Envelope, key string, max int) string {
	v, _ := env.Get(key)
	return CleanText(v, max)
}

// CleanText drops what a printer or a display would take as a command or
// garble (C0 and C1 controls, DEL, invalid UTF-8) and cuts s to at most max
// bytes without splitting a character. Gateway text ends up on receipts, and
// an ESC/POS printer opens the drawer on "\x1bp" and cuts on "\x1dV".
func CleanText(s string, max int) string {
	if len(s) <= max && printable(s) {
		return s // the usual case: no copy
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if keepRune(r, n) {
			if b.Len()+n > max {
				break
			}
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func printable(s string) bool {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !keepRune(r, n) {
			return false
		}
		i += n
	}
	return true
}

// keepRune: n == 1 with RuneError is an invalid byte; a U+FFFD actually
// sent is kept. unicode.IsControl is exactly C0, DEL and C1.
func keepRune(r rune, n int) bool {
	return !(r == utf8.RuneError && n == 1) && !unicode.IsControl(r)
}

// mismatch names the first field of the answer that differs from what was
// sent. A forged or misrouted answer about another order is never believed.
func mismatch(env *Envelope, exp Expect) string {
	check := func(field, want string) string {
		if want == "" {
			return ""
		}
		got, ok := env.Get(field)
		if ok && got != want {
			return fmt.Sprintf("%s in answer %q differs from %q sent", field, got, want)
		}
		return ""
	}
	if s := check("merchant_id", exp.MerchantID); s != "" {
		return s
	}
	if s := check("mch_trade_id", exp.MchTradeID); s != "" {
		return s
	}
	if s := check("mch_refund_id", exp.MchRefundID); s != "" {
		return s
	}
	if exp.TotalFee > 0 {
		if s := check("total_fee", strconv.FormatInt(exp.TotalFee, 10)); s != "" {
			return s
		}
	}
	return ""
}

func classifyPay(env *Envelope, r Result) Result {
	if r.TradeState == NoTradeState {
		r.Outcome, r.Reason = Pending, "no trade_state"
		return r
	}
	final, paid := FinalTradeState(r.TradeState)
	if paid {
		return paidResult(env, r)
	}
	nq, _ := env.Get("need_query")
	if final && nq == "N" {
		r.Outcome = NotPaid
		return r
	}
	r.Outcome = Pending
	r.Reason = fmt.Sprintf("trade_state %d, need_query %q", r.TradeState, nq)
	return r
}

// paidResult insists on the fields a paid answer must carry: a paid order
// whose amount cannot be checked is not believed.
func paidResult(env *Envelope, r Result) Result {
	if _, ok := env.Get("total_fee"); !ok {
		r.Outcome, r.Reason = Unknown, "paid answer without total_fee"
		return r
	}
	if _, ok := env.Get("mch_trade_id"); !ok {
		r.Outcome, r.Reason = Unknown, "paid answer without mch_trade_id"
		return r
	}
	r.Outcome = Paid
	return r
}

func classifyQuery(r Result) Result {
	if r.TradeState == NoTradeState {
		r.Outcome, r.Reason = Unknown, "query answer without trade_state"
		return r
	}
	final, paid := FinalTradeState(r.TradeState)
	switch {
	case paid:
		r.Outcome = Paid
	case final:
		r.Outcome = NotPaid
	default:
		r.Outcome = Pending
		r.Reason = fmt.Sprintf("trade_state %d", r.TradeState)
	}
	return r
}

func classifyReverse(env *Envelope, r Result) Result {
	r.Recall, _ = env.Get("recall")
	if r.Recall == "Y" {
		r.Outcome, r.Reason = Pending, "recall Y"
		return r
	}
	if final, paid := FinalTradeState(r.TradeState); final && !paid && r.Recall == "N" {
		r.Outcome = NotPaid
		return r
	}
	r.Outcome = Pending
	r.Reason = fmt.Sprintf("reverse answered recall %q, trade_state %d", r.Recall, r.TradeState)
	return r
}

func classifyStatus(env *Envelope, r Result, field string) Result {
	s, ok := env.Int(field)
	if !ok {
		r.Outcome, r.Reason = Unknown, field+" missing"
		return r
	}
	r.Status = int(s)
	switch {
	case s >= 0:
		r.Outcome = Done
	default:
		r.Outcome, r.Reason = Pending, field+" -1: failed, try again"
	}
	return r
}
