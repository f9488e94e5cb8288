package display

import (
	"fmt"
	"io"
	"strings"
)

// Terminal prints one line per event: the development display.
type Terminal struct {
	W io.Writer
}

// Show writes the event as a line.
func (t *Terminal) Show(e Event) error {
	_, err := io.WriteString(t.W, Line(e)+"\n")
	return err
}

// Line is the event as one human-readable line.
func Line(e Event) string {
	var b strings.Builder
	if e.Sandbox {
		b.WriteString("[SANDBOX] ")
	}
	fmt.Fprintf(&b, "lane %s: ", e.Lane)
	switch e.Kind {
	case AwaitingScan:
		fmt.Fprintf(&b, "¥%s due, show your payment code", Yuan(e.TotalFee))
	case Paying:
		fmt.Fprintf(&b, "paying ¥%s with %s (%s)…", Yuan(e.TotalFee), e.Wallet, e.MchTradeID)
	case Paid:
		fmt.Fprintf(&b, "PAID ¥%s with %s — order %s, trade %s, wallet ref %s", Yuan(e.TotalFee), e.Wallet, e.MchTradeID, e.TradeID, e.OutTradeID)
	case Declined:
		fmt.Fprintf(&b, "NOT PAID ¥%s (%s): %s — show a new code", Yuan(e.TotalFee), e.MchTradeID, e.Reason)
	case NeedsAttention:
		fmt.Fprintf(&b, "NEEDS ATTENTION ¥%s (%s): %s — the outcome is not known yet; do not take the money again", Yuan(e.TotalFee), e.MchTradeID, e.Reason)
	case Canceled:
		fmt.Fprintf(&b, "charge canceled: %s", e.Reason)
	case Refunded:
		fmt.Fprintf(&b, "REFUNDED ¥%s (%s)", Yuan(e.TotalFee), e.MchTradeID)
	case Device:
		fmt.Fprintf(&b, "device: %s", e.Reason)
	case Lines:
		b.WriteString(strings.Join(e.Text, " | "))
	case Reprint:
		fmt.Fprintf(&b, "receipt reprinted for %s", e.MchTradeID)
	case Rejected:
		fmt.Fprintf(&b, "scan refused: %s", e.Reason)
	case OutOfService:
		fmt.Fprintf(&b, "OUT OF SERVICE: %s", e.Reason)
	case Offline:
		fmt.Fprintf(&b, "OFFLINE — NOT CHARGED: %s", e.Reason)
	case LateResult:
		fmt.Fprintf(&b, "%s ¥%s (%s)", e.Reason, Yuan(e.TotalFee), e.MchTradeID)
	case Idle:
		b.WriteString("ready")
		if e.Reason != "" {
			b.WriteString(": " + e.Reason)
		}
	default:
		fmt.Fprintf(&b, "%s", e.Kind)
	}
	return b.String()
}
