package display

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// VFD columns and rows: the common 2 × 20 pole display.
const (
	VFDCols = 20
	VFDRows = 2
)

// CD5220 / Epson-compatible commands. String mode (ESC Q A/B) is never
// used: it locks the display until a clear.
var (
	vfdInit      = []byte{0x1b, 0x40}       // ESC @
	vfdClear     = []byte{0x0c}             // clear
	vfdCursorOff = []byte{0x1b, 0x5f, 0x00} // ESC _ 0
)

func vfdMove(col, row int) []byte { return []byte{0x1b, 0x6c, byte(col), byte(row)} } // ESC l x y

// VFDText is the two lines a pole display shows for an event, in the
// display's language. Amounts are yuan.
func VFDText(e Event, lang string) [VFDRows]string {
	amount := "RMB " + Yuan(e.TotalFee)
	zh := lang == "zh"
	if zh {
		amount = "¥" + Yuan(e.TotalFee)
	}
	pick := func(en, cn string) string {
		if zh {
			return cn
		}
		return en
	}
	var l [VFDRows]string
	switch e.Kind {
	case AwaitingScan:
		l = [2]string{pick("Please pay", "请付款"), amount}
	case Paying:
		l = [2]string{pick("Paying...", "支付中..."), amount}
	case Paid:
		l = [2]string{pick("Paid. Thank you!", "支付成功 谢谢"), amount}
	case Declined:
		l = [2]string{pick("Not paid", "支付失败"), pick("Show a new code", shortReason(e.Reason, "请重新出示付款码"))}
	case NeedsAttention:
		l = [2]string{pick("Please wait", "请稍候"), pick("Checking payment", "正在确认支付")}
	case Canceled:
		l = [2]string{pick("Canceled", "已取消"), ""}
		if e.Reason == "payment stopped" {
			l = [2]string{pick("Payment stopped", "支付已停止"), pick("Not charged", "未扣款")}
		}
	case Refunded:
		l = [2]string{pick("Refunded", "已退款"), amount}
	case Rejected:
		l = [2]string{pick("Code not accepted", "付款码无效"), pick("Please show again", "请重新出示")}
	case OutOfService:
		l = [2]string{pick("Out of service", "暂停服务"), pick("Please use another", "请到其他收银台")}
	case Offline:
		l = [2]string{pick("Offline: not charged", "网络中断 未扣款"), pick("Pay another way", "请换其他方式付款")}
	case Lines:
		// The pole shows the last two (the latest item, the total).
		for i, j := len(e.Text)-2, 0; j < VFDRows; i, j = i+1, j+1 {
			if i >= 0 && i < len(e.Text) {
				l[j] = e.Text[i]
			}
		}
	default:
		l = [2]string{pick("Welcome", "欢迎光临"), ""}
	}
	if e.Sandbox {
		l[1] = "SANDBOX " + l[1]
	}
	return l
}

func shortReason(r, fallback string) string {
	if r == "" || utf8.RuneCountInString(r) > 9 {
		return fallback
	}
	return r
}

// VFDEncoder turns display text into the device's bytes: "ascii" (anything
// else transliterated) or "gb18030" (for displays with a Chinese font; a
// Chinese character takes two columns).
type VFDEncoder string

// Encode returns the bytes of s padded or cut to exactly cols columns,
// never splitting a character.
func (enc VFDEncoder) Encode(s string, cols int) []byte {
	var out []byte
	for _, r := range s {
		var b []byte
		switch {
		case r < 0x80:
			b = []byte{byte(r)}
		case enc == "gb18030":
			g, err := simplifiedchinese.GB18030.NewEncoder().Bytes([]byte(string(r)))
			if err != nil {
				g = []byte{'?'}
			}
			b = g
		default:
			b = []byte(translit(r))
		}
		if len(out)+len(b) > cols {
			break
		}
		out = append(out, b...)
	}
	return append(out, bytes.Repeat([]byte{' '}, cols-len(out))...)
}

// translit maps what an ASCII display cannot show.
func translit(r rune) string {
	switch r {
	case '¥', '￥':
		return "Y"
	case '…':
		return "..."
	}
	return "?"
}

// VFD drives a pole display: it repaints only the lines that changed.
// It is not safe for concurrent use; one display goroutine owns it.
type VFD struct {
	W        io.Writer
	Language string     // "en" or "zh"
	Encoding VFDEncoder // "ascii" or "gb18030"

	shown  [VFDRows][]byte
	inited bool
}

// Reset forgets what the display shows: the next Show repaints it all
// (after a reconnect).
func (v *VFD) Reset() { v.inited = false; v.shown = [VFDRows][]byte{} }

// Show paints the event.
func (v *VFD) Show(e Event) error {
	if !e.ForCustomer() {
		return nil // for the cashier or the till, not the customer
	}
	_, err := v.W.Write(v.Frame(e))
	if err != nil {
		v.Reset()
	}
	return err
}

// Frame is the bytes that bring the display from what it shows to e.
func (v *VFD) Frame(e Event) []byte {
	var b bytes.Buffer
	if !v.inited {
		b.Write(vfdInit)
		b.Write(vfdCursorOff)
		b.Write(vfdClear)
		v.inited = true
	}
	text := VFDText(e, v.Language)
	for row, line := range text {
		enc := v.Encoding.Encode(line, VFDCols)
		if bytes.Equal(enc, v.shown[row]) {
			continue
		}
		b.Write(vfdMove(1, row+1))
		b.Write(enc)
		v.shown[row] = enc
	}
	return b.Bytes()
}

// ParseVFD reads a byte stream sent to a pole display back into the two
// lines it shows: for tests, and for anyone checking a capture.
func ParseVFD(stream []byte, enc VFDEncoder) ([VFDRows]string, error) {
	var screen [VFDRows][]byte
	for r := range screen {
		screen[r] = bytes.Repeat([]byte{' '}, VFDCols)
	}
	col, row := 0, 0
	for i := 0; i < len(stream); i++ {
		c := stream[i]
		switch {
		case c == 0x1b && i+1 < len(stream) && stream[i+1] == 0x40:
			i++
		case c == 0x1b && i+2 < len(stream) && stream[i+1] == 0x5f:
			i += 2
		case c == 0x1b && i+3 < len(stream) && stream[i+1] == 0x6c:
			col, row = int(stream[i+2])-1, int(stream[i+3])-1
			i += 3
			if col < 0 || col >= VFDCols || row < 0 || row >= VFDRows {
				return [2]string{}, fmt.Errorf("cursor out of range at byte %d", i)
			}
		case c == 0x0c:
			for r := range screen {
				screen[r] = bytes.Repeat([]byte{' '}, VFDCols)
			}
			col, row = 0, 0
		case c == 0x1b:
			return [2]string{}, fmt.Errorf("unknown escape at byte %d", i)
		default:
			if col < VFDCols {
				screen[row][col] = c
				col++
			}
		}
	}
	var out [VFDRows]string
	for r, line := range screen {
		s := string(line)
		if enc == "gb18030" {
			d, err := simplifiedchinese.GB18030.NewDecoder().Bytes(line)
			if err != nil {
				return out, err
			}
			s = string(d)
		}
		out[r] = strings.TrimRight(s, " ")
	}
	return out, nil
}
