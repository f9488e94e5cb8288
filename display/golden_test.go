package display

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/text/encoding/simplifiedchinese"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./display -update to create it")
	assert.Equal(t, want, got, "byte stream differs from %s (go test ./display -update if the change is intended)", path)
}

var paidAt = time.Date(2026, 11, 25, 13, 45, 0, 0, time.UTC)

func TestVFDGolden(t *testing.T) {
	for _, c := range []struct {
		name string
		vfd  VFD
	}{
		{"vfd-en-ascii", VFD{Language: "en", Encoding: "ascii"}},
		{"vfd-zh-gb18030", VFD{Language: "zh", Encoding: "gb18030"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := c.vfd
			var stream []byte
			for _, e := range []Event{
				{Lane: "L1", Kind: Idle},
				{Lane: "L1", Kind: AwaitingScan, TotalFee: 1234},
				{Lane: "L1", Kind: Paying, TotalFee: 1234},
				{Lane: "L1", Kind: Paid, TotalFee: 1234},
				{Lane: "L1", Kind: Declined, Reason: "余额不足"},
			} {
				stream = append(stream, v.Frame(e)...)
			}
			golden(t, c.name, stream)
			screen, err := ParseVFD(stream, v.Encoding)
			require.NoError(t, err)
			if v.Language == "zh" {
				assert.Equal(t, [2]string{"支付失败", "余额不足"}, screen)
			} else {
				assert.Equal(t, [2]string{"Not paid", "Show a new code"}, screen)
			}
		})
	}
}

func TestVFDRepaintsOnlyChangedLines(t *testing.T) {
	v := VFD{Language: "en", Encoding: "ascii"}
	first := v.Frame(Event{Kind: AwaitingScan, TotalFee: 100})
	assert.True(t, bytes.HasPrefix(first, []byte{0x1b, 0x40}), "init first")
	assert.NotContains(t, string(first), "\x1bQ", "never string mode")
	second := v.Frame(Event{Kind: Paying, TotalFee: 100})
	assert.Equal(t, append([]byte{0x1b, 0x6c, 1, 1}, []byte("Paying...           ")...), second, "only line 1 changed, padded to 20")
	assert.Empty(t, v.Frame(Event{Kind: Paying, TotalFee: 100}), "nothing changed, nothing sent")
}

func TestVFDEncoding(t *testing.T) {
	assert.Equal(t, []byte("Y1.00               "), VFDEncoder("ascii").Encode("¥1.00", 20))
	g := VFDEncoder("gb18030").Encode("支付成功 谢谢", 20)
	assert.Len(t, g, 20)
	d, _ := simplifiedchinese.GB18030.NewDecoder().Bytes(g)
	assert.Equal(t, "支付成功 谢谢       ", string(d))
	cut := VFDEncoder("gb18030").Encode("a一二三四五六七八九十", 20)
	assert.Len(t, cut, 20, "cut at a character boundary and padded")
	assert.Equal(t, byte(' '), cut[19], "the last character would split: left out")
}

func receipt(sandbox bool) Receipt {
	return Receipt{ID: "x", Store: "S001", Lane: "L1", Time: paidAt, TotalFee: 1234, Wallet: "alipay",
		MchTradeID: "S001_POS01_ABCDEF1", TradeID: "SBX000000000001", OutTradeID: "SBXOUT000000000001", Sandbox: sandbox}
}

// utc makes receipts (which print the store's local time) the same on
// every machine.
func utc(t *testing.T) {
	saved := time.Local
	time.Local = time.UTC
	t.Cleanup(func() { time.Local = saved })
}

func TestReceiptGolden(t *testing.T) {
	utc(t)
	golden(t, "receipt-ascii", ReceiptBytes(receipt(false), 32, "ascii", true))
	golden(t, "receipt-gb18030-sandbox", ReceiptBytes(receipt(true), 42, "gb18030", false))
	r := receipt(false)
	r.Refund = true
	golden(t, "receipt-refund", ReceiptBytes(r, 32, "ascii", true))
}

func TestReceiptCodePage(t *testing.T) {
	utc(t)
	r := receipt(false)
	r.Store = "Café Zürich"
	b := ReceiptBytes(r, 32, "cp858", false)
	assert.Contains(t, string(b), "\x1bt\x13", "ESC t 19 selects CP858")
	assert.Contains(t, string(b), "Caf\x82 Z\x81rich", "é and ü in CP858")
	golden(t, "receipt-cp858", b)
}

func TestReceiptParts(t *testing.T) {
	b := ReceiptBytes(receipt(false), 32, "ascii", true)
	assert.True(t, bytes.HasPrefix(b, []byte{0x1b, 0x40}))
	assert.Contains(t, string(b), "RMB 12.34")
	assert.Contains(t, string(b), "S001_POS01_ABCDEF1")
	assert.Contains(t, string(b), string(QRCommand("SBX000000000001", 6)))
	assert.True(t, bytes.HasSuffix(b, append([]byte{0x1d, 0x56, 0x01}, posDrawer...)), "cut, then the drawer")
	r := receipt(true)
	r.Refund = true
	b = ReceiptBytes(r, 32, "ascii", true)
	assert.Contains(t, string(b), "SANDBOX")
	assert.Contains(t, string(b), "-RMB 12.34")
	assert.False(t, bytes.HasSuffix(b, posDrawer), "no drawer for a refund")
}

func TestQRCommandLengthHeader(t *testing.T) {
	data := string(bytes.Repeat([]byte{'A'}, 300))
	q := QRCommand(data, 6)
	i := bytes.Index(q, []byte{0x31, 0x50, 0x30})
	require.Greater(t, i, 2)
	assert.Equal(t, []byte{byte(303 & 0xff), byte(303 >> 8)}, q[i-2:i], "len+3, little-endian")
	golden(t, "qr-short", QRCommand("SBX1", 6))
}

func TestParseStatus(t *testing.T) {
	cases := []struct {
		online, paper byte
		ok, known     bool
		says          string
	}{
		{0x12, 0x12, true, true, "ok"},
		{0x1a, 0x12, false, true, "offline"},
		{0x12, 0x72, false, true, "out of paper"},
		{0x12, 0x1e, true, true, "paper low"},
		{0x00, 0x12, false, false, "unknown"},
		{0xff, 0x12, false, false, "unknown"},
		{0x12, 0x13, false, false, "unknown"},
		{0x92, 0x12, false, false, "unknown"},
	}
	for _, c := range cases {
		s := ParseStatus(c.online, c.paper)
		assert.Equal(t, c.ok, s.OK(), "%#x %#x", c.online, c.paper)
		assert.Equal(t, c.known, s.Known)
		assert.Contains(t, s.String(), c.says)
	}
}

func FuzzParseVFD(f *testing.F) {
	v := VFD{Language: "zh", Encoding: "gb18030"}
	f.Add(v.Frame(Event{Kind: Paid, TotalFee: 5}))
	f.Add([]byte{0x1b, 0x6c, 30, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseVFD(b, "gb18030")
		_, _ = ParseVFD(b, "ascii")
	})
}
