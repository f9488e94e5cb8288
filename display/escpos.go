package display

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// Receipt is what a receipt printer prints for a paid or refunded order.
type Receipt struct {
	ID         string    `json:"id"`
	Store      string    `json:"store"`
	Lane       string    `json:"lane"`
	Time       time.Time `json:"time"`
	TotalFee   int64     `json:"total_fee"`
	Wallet     string    `json:"wallet"`
	MchTradeID string    `json:"mch_trade_id"`
	TradeID    string    `json:"trade_id"`
	OutTradeID string    `json:"out_trade_id"`
	// What the customer paid and the discount, when the wallet gave one.
	BuyerPayAmount int64 `json:"buyer_pay_amount,omitempty"`
	CouponFee      int64 `json:"coupon_fee,omitempty"`
	Refund         bool  `json:"refund,omitempty"`
	Reprint        bool  `json:"reprint,omitempty"`
	Sandbox        bool  `json:"sandbox,omitempty"`
	// A refund's receipt names it: the till's refund_id and posd's.
	RefundID    string `json:"refund_id,omitempty"`
	MchRefundID string `json:"mch_refund_id,omitempty"`
	// Refunds are what a payment's receipt lists as given back since.
	Refunds []ReceiptRefund `json:"refunds,omitempty"`
}

// ReceiptRefund is one refund on a payment's receipt.
type ReceiptRefund struct {
	RefundID    string    `json:"refund_id"`
	MchRefundID string    `json:"mch_refund_id"`
	RefundFee   int64     `json:"refund_fee"`
	Time        time.Time `json:"time"`
}

// ReceiptOf makes the receipt of an event (paid, refunded or a reprint).
func ReceiptOf(e Event, store string) Receipt {
	return Receipt{
		ID: fmt.Sprintf("%s-%d", e.MchTradeID, e.Seq), Store: store, Lane: e.Lane, Time: e.Time,
		TotalFee: e.TotalFee, Wallet: e.Wallet, MchTradeID: e.MchTradeID, TradeID: e.TradeID,
		OutTradeID: e.OutTradeID, Refund: e.Kind == Refunded, Reprint: e.Kind == Reprint, Sandbox: e.Sandbox,
		RefundID: e.TillRefundID, MchRefundID: e.RefundID,
		BuyerPayAmount: e.BuyerPayAmount, CouponFee: e.CouponFee,
	}
}

// ESC/POS commands.
var (
	posInit       = []byte{0x1b, 0x40}             // ESC @
	posCenter     = []byte{0x1b, 0x61, 0x01}       // ESC a 1
	posLeft       = []byte{0x1b, 0x61, 0x00}       // ESC a 0
	posDouble     = []byte{0x1d, 0x21, 0x11}       // GS ! double width and height
	posNormal     = []byte{0x1d, 0x21, 0x00}       // GS ! normal
	posCut        = []byte{0x1d, 0x56, 0x01}       // GS V 1: partial cut
	posFeed       = []byte{0x1b, 0x64, 0x04}       // ESC d 4
	posDrawer     = []byte{0x1b, 0x70, 0, 25, 250} // ESC p 0: pin 2, 50 ms on, 500 ms off
	posChinese    = []byte{0x1c, 0x26}             // FS &: Chinese character mode
	statusOnline  = []byte{0x10, 0x04, 0x01}       // DLE EOT 1
	statusPaper   = []byte{0x10, 0x04, 0x04}       // DLE EOT 4
	statusCause   = []byte{0x10, 0x04, 0x02}       // DLE EOT 2: why it is offline
	qrModel2      = []byte{0x1d, 0x28, 0x6b, 0x04, 0x00, 0x31, 0x41, 0x32, 0x00}
	qrErrCorrectM = []byte{0x1d, 0x28, 0x6b, 0x03, 0x00, 0x31, 0x45, 0x31}
	qrPrint       = []byte{0x1d, 0x28, 0x6b, 0x03, 0x00, 0x31, 0x51, 0x30}
)

// QRCommand is the GS ( k sequence that prints data as a QR code: model 2,
// module size, error correction M, the data with its length header
// (len+3, little-endian), print.
func QRCommand(data string, module byte) []byte {
	var b bytes.Buffer
	b.Write(qrModel2)
	b.Write([]byte{0x1d, 0x28, 0x6b, 0x03, 0x00, 0x31, 0x43, module})
	b.Write(qrErrCorrectM)
	n := len(data) + 3
	b.Write([]byte{0x1d, 0x28, 0x6b, byte(n), byte(n >> 8), 0x31, 0x50, 0x30})
	b.WriteString(data)
	b.Write(qrPrint)
	return b.Bytes()
}

// CodePages are the single-byte code pages a printer can be set to with
// ESC t n (Epson numbering), by the name used in the config's encoding.
var CodePages = map[string]struct {
	N       byte
	Charmap *charmap.Charmap
}{
	"cp437":  {0, charmap.CodePage437},
	"cp850":  {2, charmap.CodePage850},
	"cp860":  {3, charmap.CodePage860},
	"cp863":  {4, charmap.CodePage863},
	"cp865":  {5, charmap.CodePage865},
	"cp1252": {16, charmap.Windows1252},
	"cp866":  {17, charmap.CodePage866},
	"cp858":  {19, charmap.CodePage858},
}

// ReceiptBytes renders a receipt for a printer of width characters per
// line in encoding "gb18030" (China-market printers), a code page of
// CodePages (selected with ESC t), or "ascii".
// receiptText is s in the printer's encoding: GB18030, a code page, or
// ASCII with the rest transliterated; control characters never reach it.
func receiptText(s, encoding string) []byte {
	s = noControl(s)
	if encoding == "gb18030" {
		if g, err := simplifiedchinese.GB18030.NewEncoder().Bytes([]byte(s)); err == nil {
			return g
		}
	}
	cp, hasCP := CodePages[encoding]
	var out []byte
	for _, c := range s {
		switch {
		case c < 0x80:
			out = append(out, byte(c))
		case hasCP:
			if b, ok := cp.Charmap.EncodeRune(c); ok {
				out = append(out, b)
				continue
			}
			out = append(out, translit(c)...)
		default:
			out = append(out, translit(c)...)
		}
	}
	return out
}

func ReceiptBytes(r Receipt, width int, encoding string, drawer bool) []byte {
	if width <= 0 {
		width = 32
	}
	zh := encoding == "gb18030"
	cp, hasCP := CodePages[encoding]
	var b bytes.Buffer
	line := func(s string) { b.Write(receiptText(s, encoding)); b.WriteByte('\n') }
	b.Write(posInit)
	if zh {
		b.Write(posChinese)
	}
	if hasCP {
		b.Write([]byte{0x1b, 0x74, cp.N}) // ESC t n: select the code page
	}
	b.Write(posCenter)
	b.Write(posDouble)
	line(r.Store)
	b.Write(posNormal)
	head, body := ReceiptLines(r, width, zh)
	for _, l := range head {
		line(l)
	}
	b.Write(posLeft)
	for _, l := range body {
		line(l)
	}
	b.Write(posCenter)
	if id := noControl(r.TradeID); id != "" && len(id) <= qrMaxData {
		b.Write(QRCommand(id, 6))
		b.WriteByte('\n')
	}
	b.Write(posFeed)
	b.Write(posCut)
	if drawer && !r.Refund && !r.Reprint {
		b.Write(posDrawer)
	}
	return b.Bytes()
}

// ReceiptLines are a receipt's lines below the store's name: the centred
// head (title, reprint, sandbox) and the body, width characters wide. The
// printer and the till's copy (GET /v1/charges/{id}/receipt) print the same.
func ReceiptLines(r Receipt, width int, zh bool) (head, body []string) {
	if width <= 0 {
		width = 32
	}
	pair := func(k, v string) {
		v = noControl(v)
		pad := width - len(k) - len(v)
		if pad < 1 {
			body = append(body, k, "  "+v)
			return
		}
		body = append(body, k+strings.Repeat(" ", pad)+v)
	}
	title := "PAYMENT RECEIPT"
	if zh {
		title = "支付凭证 PAYMENT RECEIPT"
	}
	if r.Refund {
		title = "REFUND"
		if zh {
			title = "退款凭证 REFUND"
		}
	}
	head = append(head, title)
	if r.Reprint {
		head = append(head, "-- REPRINT --")
	}
	if r.Sandbox {
		head = append(head, "*** SANDBOX: NOT A REAL PAYMENT ***")
	}
	body = append(body, strings.Repeat("-", width))
	pair("Lane", r.Lane)
	pair("Time", r.Time.Local().Format("2006-01-02 15:04:05"))
	amount := "RMB " + Yuan(r.TotalFee)
	if r.Refund {
		amount = "-" + amount
	}
	pair("Amount", amount)
	if r.CouponFee > 0 && !r.Refund {
		pair("Discount", "-RMB "+Yuan(r.CouponFee))
	}
	if r.BuyerPayAmount > 0 && r.BuyerPayAmount != r.TotalFee && !r.Refund {
		pair("Customer paid", "RMB "+Yuan(r.BuyerPayAmount))
	}
	pair("Wallet", r.Wallet)
	if r.Refund && r.RefundID != "" {
		pair("Refund", r.RefundID)
	}
	var back int64
	for _, f := range r.Refunds {
		pair("Refund "+f.Time.Local().Format("01-02 15:04"), "-RMB "+Yuan(f.RefundFee))
		back += f.RefundFee
	}
	if back > 0 {
		pair("Net", "RMB "+Yuan(r.TotalFee-back))
	}
	body = append(body, "Order "+r.MchTradeID, "Trade "+r.TradeID, "Ref   "+r.OutTradeID, strings.Repeat("-", width))
	return head, body
}

// ReceiptText is the receipt as plain text, for a till that prints it on
// its own printer.
func ReceiptText(r Receipt, width int) string {
	head, body := ReceiptLines(r, width, true)
	var b strings.Builder
	for _, l := range append(append([]string{noControl(r.Store)}, head...), body...) {
		b.WriteString(noControl(l))
		b.WriteByte('\n')
	}
	return b.String()
}

// qrMaxData is what a QR code holds at correction M. It also keeps the
// two-byte length header from wrapping, which would let the printer read
// the rest of the data as commands.
const qrMaxData = 2331

// noControl drops the control characters of text bound for the printer:
// an ESC, GS or DLE in a trade id (from the gateway, the journal or the
// API) would otherwise be a command, such as opening the drawer.
func noControl(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}

// PrinterStatus is what DLE EOT answers tell.
type PrinterStatus struct {
	Known    bool // false: no valid answer, which is never "ok"
	Online   bool
	PaperOut bool
	PaperLow bool
	// Why an offline printer is offline (DLE EOT 2), when it told.
	CoverOpen bool
	PaperEnd  bool // printing stopped by a paper end
	Error     bool
	Reason    string
}

// OK reports whether a receipt can be printed now.
func (s PrinterStatus) OK() bool { return s.Known && s.Online && !s.PaperOut && !s.CoverOpen }

func (s PrinterStatus) String() string {
	switch {
	case !s.Known:
		return "unknown: " + s.Reason
	case s.CoverOpen:
		return "cover open"
	case !s.Online && s.PaperEnd:
		return "offline: paper end"
	case !s.Online && s.Error:
		return "offline: error"
	case !s.Online:
		return "offline"
	case s.PaperOut:
		return "out of paper"
	case s.PaperLow:
		return "paper low"
	}
	return "ok"
}

// validStatus: every status byte has the bit pattern 0xx1xx10.
func validStatus(b byte) bool { return b&0x93 == 0x12 }

// ParseStatus reads the answers to DLE EOT 1 (online) and DLE EOT 4
// (paper). An answer that does not have the status bit pattern makes the
// status unknown.
func ParseStatus(online, paper byte) PrinterStatus {
	if !validStatus(online) || !validStatus(paper) {
		return PrinterStatus{Reason: fmt.Sprintf("invalid status bytes %#02x %#02x", online, paper)}
	}
	return PrinterStatus{
		Known:    true,
		Online:   online&0x08 == 0,
		PaperOut: paper&0x60 == 0x60,
		PaperLow: paper&0x0c == 0x0c,
	}
}

// WithOfflineCause adds the answer to DLE EOT 2 (the offline cause: 0x04
// cover open, 0x20 stopped by a paper end, 0x40 an error) to an offline
// status. An answer without the status bit pattern adds nothing: the
// printer stays "offline", cause unknown.
func WithOfflineCause(st PrinterStatus, cause byte) PrinterStatus {
	if !st.Known || st.Online || !validStatus(cause) {
		return st
	}
	st.CoverOpen = cause&0x04 != 0
	st.PaperEnd = cause&0x20 != 0
	st.Error = cause&0x40 != 0
	return st
}

// errNoAnswer: the printer did not answer a status request in time.
var errNoAnswer = errors.New("no answer to DLE EOT")
