package display

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// No event field reaches the printer as a command: ESC p opens the drawer,
// GS V 0 cuts, DLE DC4 pulses the drawer in real time, ESC @ resets.
func TestReceiptDropsInjectedCommands(t *testing.T) {
	utc(t)
	inject := "\x1bp\x00\x19\x7f\x1dV\x00\x10\x14\x01\x00\x05\x1b@\u009b"
	dirty := Event{Seq: 7, Lane: "L1" + inject, Kind: Paid, Time: paidAt, TotalFee: 1234, Wallet: "alipay" + inject,
		MchTradeID: "S001_POS01_ABCDEF1" + inject, TradeID: "SBX" + inject + "000000000001", OutTradeID: inject + "SBXOUT000000000001"}
	clean := dirty
	for _, f := range []*string{&clean.Lane, &clean.Wallet, &clean.MchTradeID, &clean.TradeID, &clean.OutTradeID} {
		*f = strings.ReplaceAll(*f, inject, "pV@")
	}
	for _, enc := range []string{"ascii", "gb18030", "cp858"} {
		got := ReceiptBytes(ReceiptOf(dirty, "S001"+inject), 32, enc, false)
		assert.Equal(t, ReceiptBytes(ReceiptOf(clean, "S001pV@"), 32, enc, false), got, enc)
		for _, cmd := range []string{"\x1bp", "\x1dV\x00", "\x10\x14", "\x1b@\n"} {
			assert.NotContains(t, string(got), cmd, "%s: %q", enc, cmd)
		}
	}
}
