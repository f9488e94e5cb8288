package payment

import (
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCleanText(t *testing.T) {
	long := strings.Repeat("A", 10000)
	cases := []struct {
		name, in string
		max      int
		want     string
	}{
		{"plain", "4200001234", 64, "4200001234"},
		{"empty", "", 64, ""},
		{"escpos drawer and cut", "G1\x1bp\x00\x19\xfa\x1dV\x00", 64, "G1pV"},
		{"dle realtime request", "G1\x10\x14\x01\x00\x01", 64, "G1"},
		{"del and c1", "a\x7fb\u0085c\u009bd", 64, "abcd"},
		{"newline and tab", "line1\nline2\tx\r", 64, "line1line2x"},
		{"10000 bytes", long, 64, long[:64]},
		{"invalid utf-8", "ab\xffc\xc3(d\xe4\xb8", 64, "abc(d"},
		{"chinese cut on a rune boundary", "余额不足请换卡", 10, "余额不"},
		{"chinese exact fit", "余额不足", 12, "余额不足"},
		{"U+FFFD sent is kept", "a\uFFFDb", 64, "a\uFFFDb"},
		{"zero max", "abc", 0, ""},
		{"negative max", "abc", -1, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := CleanText(c.in, c.max)
			assert.Equal(t, c.want, got)
			assert.LessOrEqual(t, len(got), max(c.max, 0))
			assert.True(t, utf8.ValidString(got))
		})
	}
}

// A signed answer is believed, but its text is still not sent to a printer
// as it came: the signature covers the raw bytes, the Result the clean ones.
func TestClassifyCleansGatewayText(t *testing.T) {
	// ESC p 0 25 250 opens the drawer, GS V 0 cuts; JSON carries 250 as ú.
	evil := "G1\x1bp\x00\x19\u00fa\x1dV\x00"
	body := signed(tk,
		Param{Key: "merchant_id", Value: "M1"}, Param{Key: "mch_trade_id", Value: "T0001"},
		Param{Key: "total_fee", Value: "100", Num: true}, Param{Key: "trade_id", Value: evil},
		Param{Key: "out_trade_id", Value: "O1\x1b@" + strings.Repeat("9", 200)},
		Param{Key: "device_info", Value: "L1\x10\x04\x01"},
		Param{Key: "err_msg", Value: "ok\x1bd\x05" + strings.Repeat("长", 100)},
		Param{Key: "trade_state", Value: "0", Num: true})
	r := Classify(CallPay, Expect{MerchantID: "M1", MchTradeID: "T0001", TotalFee: 100}, tk, http.StatusOK, body, nil)
	require.Equal(t, Paid, r.Outcome, r.Reason)
	for _, s := range []string{r.TradeID, r.OutTradeID, r.DeviceInfo, r.ErrMsg} {
		assert.Equal(t, -1, strings.IndexFunc(s, func(c rune) bool { return c < 0x20 || c == 0x7f }), "%q", s)
		assert.True(t, utf8.ValidString(s), "%q", s)
	}
	assert.Equal(t, "G1p\u00faV", r.TradeID)
	assert.Len(t, r.OutTradeID, 64)
	assert.Equal(t, "L1", r.DeviceInfo)
	assert.Equal(t, "okd"+strings.Repeat("长", 41), r.ErrMsg, "cut to 128 bytes on a rune boundary")

	r = Classify(CallPay, Expect{MerchantID: "M1", MchTradeID: "T0001", TotalFee: 100}, tk, http.StatusOK,
		[]byte(`{"code":108,"msg":"closed\u001bp\u0000\u0019\u00fa"}`), nil)
	assert.Equal(t, Rejected, r.Outcome)
	assert.Equal(t, "closedp\u00fa", r.ErrMsg)
	assert.NotContains(t, r.Reason, "\x1b")
}
