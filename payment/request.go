package payment

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Call names a gateway call; it is also the path appended to the base URL.
type Call string

const (
	CallPay         Call = "pay"
	CallQuery       Call = "query"
	CallReverse     Call = "reverse"
	CallClose       Call = "order_close"
	CallRefund      Call = "refund"
	CallRefundQuery Call = "refund_query"
)

// PayRequest is a micropay: a scanned code submitted for an amount.
type PayRequest struct {
	MchTradeID     string
	PayType        string
	DeviceInfo     string
	Subject        string
	Body           string
	Attach         string
	TotalFee       int64
	SpbillCreateIP string
	AuthCode       string
	TimeStart      int64
	TimeExpire     int64
	OpUserID       string
	StoreID        string
	OpDeviceID     string
	GoodsTag       string
	Scene          string
	// SettleType is sent only when set: 0 asks for D0 settlement.
	SettleType *int
}

// OrderRef names an order for query, reverse and order_close; trade_id
// wins over mch_trade_id at the gateway when both are sent.
type OrderRef struct {
	MchTradeID string
	TradeID    string
}

// RefundRequest refunds part or all of a paid order.
type RefundRequest struct {
	OrderRef
	MchRefundID string
	RefundFee   int64
}

// RefundQueryRequest asks after a refund.
type RefundQueryRequest struct {
	MchRefundID string
	RefundID    string
}

// ErrInvalidRequest wraps every field problem found before a request leaves.
var ErrInvalidRequest = errors.New("invalid request")

// RequestError is an ErrInvalidRequest about one field of the request, by
// its name on the wire.
type RequestError struct {
	Field string
	Msg   string
}

func (e *RequestError) Error() string { return ErrInvalidRequest.Error() + ": " + e.Msg }
func (e *RequestError) Unwrap() error { return ErrInvalidRequest }

func invalid(field, format string, a ...any) error {
	return &RequestError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// ValidTradeID reports whether id fits the gateway's mch_trade_id rule:
// 5 to 32 characters of [A-Za-z0-9_].
func ValidTradeID(id string) bool {
	if len(id) < 5 || len(id) > 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func validTime(t int64) bool { return t >= 1_000_000_000 && t <= 9_999_999_999 }

// Validate checks every field rule of docs/protocol.md, "Field rules
// checked on the box", before the pay leaves.
func (r *PayRequest) Validate() error {
	switch {
	case !ValidTradeID(r.MchTradeID):
		return invalid("mch_trade_id", "mch_trade_id %q: 5-32 characters of A-Z a-z 0-9 _", r.MchTradeID)
	case r.TotalFee <= 0:
		return invalid("total_fee", "total_fee %d: must be > 0 fen", r.TotalFee)
	case r.PayType == "":
		return invalid("pay_type", "pay_type missing")
	case r.DeviceInfo == "":
		return invalid("device_info", "device_info missing")
	case r.Subject == "":
		return invalid("subject", "subject missing")
	case r.Body == "":
		return invalid("body", "body missing")
	case r.SpbillCreateIP == "":
		return invalid("spbill_create_ip", "spbill_create_ip missing")
	case r.AuthCode == "":
		return invalid("auth_code", "auth_code missing")
	case r.TimeStart != 0 && !validTime(r.TimeStart):
		return invalid("time_start", "time_start %d: 10-digit Unix seconds", r.TimeStart)
	case r.TimeExpire != 0 && !validTime(r.TimeExpire):
		return invalid("time_expire", "time_expire %d: 10-digit Unix seconds", r.TimeExpire)
	case r.Scene != "" && r.Scene != "bar_code" && r.Scene != "wave_code":
		return invalid("scene", "scene %q: bar_code or wave_code", r.Scene)
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{
		{"subject", r.Subject, MaxSubject}, {"body", r.Body, MaxBody}, {"attach", r.Attach, MaxAttach},
		{"device_info", r.DeviceInfo, 32}, {"op_user_id", r.OpUserID, 32}, {"goods_tag", r.GoodsTag, 32},
	} {
		if !utf8.ValidString(f.v) {
			return invalid(f.name, "%s is not valid UTF-8", f.name)
		}
		if len(f.v) > f.max {
			return invalid(f.name, "%s is %d bytes: at most %d (UTF-8)", f.name, len(f.v), f.max)
		}
	}
	return nil
}

// Text bounds of a pay, in UTF-8 bytes: the wallets' own (WeChat's body
// and attach are 128 and 127 bytes, Alipay's subject 256 characters).
const (
	MaxSubject = 256
	MaxBody    = 128
	MaxAttach  = 127
)

func num(v int64) string { return strconv.FormatInt(v, 10) }

func optNum(v int64) string {
	if v == 0 {
		return ""
	}
	return num(v)
}

// params lists the request in byte order of keys, so Sign never sorts.
// Empty values are skipped both when signing and when encoding.
func (r *PayRequest) params(merchantID, nonce string) []Param {
	var dst [payParams]Param
	return r.appendParams(dst[:0], merchantID, nonce)
}

const payParams = 20

// appendParams is params into the caller's storage: no allocation on the
// pay path.
func (r *PayRequest) appendParams(dst []Param, merchantID, nonce string) []Param {
	settle := ""
	if r.SettleType != nil {
		settle = strconv.Itoa(*r.SettleType)
	}
	return append(dst,
		Param{Key: "attach", Value: r.Attach},
		Param{Key: "auth_code", Value: r.AuthCode},
		Param{Key: "body", Value: r.Body},
		Param{Key: "device_info", Value: r.DeviceInfo},
		Param{Key: "goods_tag", Value: r.GoodsTag},
		Param{Key: "mch_trade_id", Value: r.MchTradeID},
		Param{Key: "merchant_id", Value: merchantID},
		Param{Key: "nonce_str", Value: nonce},
		Param{Key: "op_device_id", Value: r.OpDeviceID},
		Param{Key: "op_user_id", Value: r.OpUserID},
		Param{Key: "pay_type", Value: r.PayType},
		Param{Key: "scene", Value: r.Scene},
		Param{Key: "settle_type", Value: settle, Num: true},
		Param{Key: "sign_type", Value: "MD5"},
		Param{Key: "spbill_create_ip", Value: r.SpbillCreateIP},
		Param{Key: "store_id", Value: r.StoreID},
		Param{Key: "subject", Value: r.Subject},
		Param{Key: "time_expire", Value: optNum(r.TimeExpire), Num: true},
		Param{Key: "time_start", Value: optNum(r.TimeStart), Num: true},
		Param{Key: "total_fee", Value: num(r.TotalFee), Num: true},
	)
}

func (o OrderRef) validate() error {
	if o.MchTradeID == "" && o.TradeID == "" {
		return invalid("mch_trade_id", "mch_trade_id or trade_id required")
	}
	if o.MchTradeID != "" && !ValidTradeID(o.MchTradeID) {
		return invalid("mch_trade_id", "mch_trade_id %q: 5-32 characters of A-Z a-z 0-9 _", o.MchTradeID)
	}
	return nil
}

func (o OrderRef) params(merchantID, nonce string) []Param {
	return []Param{
		{Key: "mch_trade_id", Value: o.MchTradeID},
		{Key: "merchant_id", Value: merchantID},
		{Key: "nonce_str", Value: nonce},
		{Key: "sign_type", Value: "MD5"},
		{Key: "trade_id", Value: o.TradeID},
	}
}

func (r *RefundRequest) validate() error {
	if err := r.OrderRef.validate(); err != nil {
		return err
	}
	if !ValidTradeID(r.MchRefundID) {
		return invalid("mch_refund_id", "mch_refund_id %q: 5-32 characters of A-Z a-z 0-9 _", r.MchRefundID)
	}
	if r.RefundFee <= 0 {
		return invalid("refund_fee", "refund_fee %d: must be > 0 fen", r.RefundFee)
	}
	return nil
}

func (r *RefundRequest) params(merchantID, nonce string) []Param {
	return []Param{
		{Key: "mch_refund_id", Value: r.MchRefundID},
		{Key: "mch_trade_id", Value: r.MchTradeID},
		{Key: "merchant_id", Value: merchantID},
		{Key: "nonce_str", Value: nonce},
		{Key: "refund_fee", Value: num(r.RefundFee), Num: true},
		{Key: "sign_type", Value: "MD5"},
		{Key: "trade_id", Value: r.TradeID},
	}
}

func (r *RefundQueryRequest) params(merchantID, nonce string) []Param {
	return []Param{
		{Key: "mch_refund_id", Value: r.MchRefundID},
		{Key: "merchant_id", Value: merchantID},
		{Key: "nonce_str", Value: nonce},
		{Key: "refund_id", Value: r.RefundID},
		{Key: "sign_type", Value: "MD5"},
	}
}
