package payment

import (
	"strconv"
	"strings"
	"time"
)

// PayDetail is what a paid answer (pay or query) says beyond the state:
// the seed's response table. Amounts are fen: the seed's table says Int
// (fen) and its example sends "buyer_pay_amount": "0.01" (yuan), so a
// value with a decimal point is yuan and any other an integer of fen.
type PayDetail struct {
	CouponFee      int64  `json:"coupon_fee,omitempty"`       // the discount the wallet gave
	BuyerPayAmount int64  `json:"buyer_pay_amount,omitempty"` // what the customer paid
	ReceiptAmount  int64  `json:"receipt_amount,omitempty"`   // what the merchant receives
	InvoiceAmount  int64  `json:"invoice_amount,omitempty"`
	PointAmount    int64  `json:"point_amount,omitempty"`
	TimeEnd        string `json:"time_end,omitempty"` // as the gateway wrote it
	BankType       string `json:"bank_type,omitempty"`
	FundBillList   string `json:"fund_bill_list,omitempty"` // its JSON, as sent
	BuyerLogonID   string `json:"buyer_logon_id,omitempty"` // masked
}

// Completed is when the gateway says the payment completed (time_end):
// Unix seconds as the seed has it, or milliseconds, which its note warns
// some systems send; false when absent or not a time.
func (d PayDetail) Completed() (time.Time, bool) {
	n, err := strconv.ParseInt(d.TimeEnd, 10, 64)
	switch {
	case err != nil || n <= 0:
		return time.Time{}, false
	case len(d.TimeEnd) == 13:
		return time.UnixMilli(n), true
	case len(d.TimeEnd) == 10:
		return time.Unix(n, 0), true
	}
	return time.Time{}, false
}

// payDetail reads the detail of a trusted answer.
func payDetail(env *Envelope) PayDetail {
	fen := func(k string) int64 {
		v, ok := env.Get(k)
		if !ok {
			return 0
		}
		n, ok := ParseFen(v)
		if !ok {
			return 0
		}
		return n
	}
	logon, _ := env.Get("buyer_logon_id")
	return PayDetail{
		CouponFee: fen("coupon_fee"), BuyerPayAmount: fen("buyer_pay_amount"), ReceiptAmount: fen("receipt_amount"),
		InvoiceAmount: fen("invoice_amount"), PointAmount: fen("point_amount"),
		TimeEnd: cleanField(env, "time_end", 32), BankType: cleanField(env, "bank_type", 32),
		FundBillList: cleanField(env, "fund_bill_list", 1024), BuyerLogonID: MaskLogon(CleanText(logon, 128)),
	}
}

// ParseFen reads an amount: "0.01" (yuan, at most two decimals) or "1"
// (fen). Negative or malformed amounts are refused.
func ParseFen(v string) (int64, bool) {
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, "-") || strings.HasPrefix(v, "+") {
		return 0, false
	}
	whole, frac, dot := strings.Cut(v, ".")
	if !dot {
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil && n >= 0
	}
	if len(frac) > 2 || whole == "" {
		return 0, false
	}
	frac += strings.Repeat("0", 2-len(frac))
	y, err1 := strconv.ParseInt(whole, 10, 64)
	f, err2 := strconv.ParseInt(frac, 10, 64)
	if err1 != nil || err2 != nil || y < 0 || y > 1e15 {
		return 0, false
	}
	return y*100 + f, true
}

// MaskLogon masks a buyer's account: the customer display, the receipt
// and the logs see only enough to recognise it.
func MaskLogon(s string) string {
	if s == "" {
		return ""
	}
	if name, domain, ok := strings.Cut(s, "@"); ok {
		keep := min(2, len(name))
		return name[:keep] + "***@" + domain
	}
	if len(s) > 7 {
		return s[:3] + strings.Repeat("*", len(s)-7) + s[len(s)-4:]
	}
	return s[:1] + "***"
}
