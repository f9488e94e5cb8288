package e2e

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/display"
	"example.com/posd/test/harness"
)

// fakeDevice is the far end of a pseudo-terminal: what posd writes to the
// pole display or the printer arrives here. As a printer it answers
// DLE EOT status requests while answering is set.
type fakeDevice struct {
	master, slave *os.File
	answering     atomic.Bool
	mu            sync.Mutex
	data          bytes.Buffer // everything but status requests
	statusAsked   atomic.Int64
}

func newPTY(t *testing.T) *fakeDevice {
	m, s, err := pty.Open()
	require.NoError(t, err)
	d := &fakeDevice{master: m, slave: s}
	t.Cleanup(func() { m.Close(); s.Close() })
	go d.read()
	return d
}

func (d *fakeDevice) read() {
	buf := make([]byte, 4096)
	var pend []byte
	for {
		n, err := d.master.Read(buf)
		if err != nil {
			return
		}
		pend = append(pend, buf[:n]...)
		for {
			i := bytes.Index(pend, []byte{0x10, 0x04})
			if i < 0 || i+2 >= len(pend) {
				break
			}
			d.mu.Lock()
			d.data.Write(pend[:i])
			d.mu.Unlock()
			d.statusAsked.Add(1)
			if d.answering.Load() {
				_, _ = d.master.Write([]byte{0x12}) // online, paper present
			}
			pend = pend[i+3:]
		}
		keep := 0
		if len(pend) > 0 && pend[len(pend)-1] == 0x10 {
			keep = 1
		}
		if len(pend) >= 2 && pend[len(pend)-2] == 0x10 && pend[len(pend)-1] == 0x04 {
			keep = 2
		}
		d.mu.Lock()
		d.data.Write(pend[:len(pend)-keep])
		d.mu.Unlock()
		pend = append([]byte(nil), pend[len(pend)-keep:]...)
	}
}

func (d *fakeDevice) bytes() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return bytes.Clone(d.data.Bytes())
}

func TestPoleDisplayAndPrinterEndToEnd(t *testing.T) {
	t.Parallel()
	vfd, printer := newPTY(t), newPTY(t)
	g := startSandbox(t)
	d := newDaemon(t, g, opts{lanes: `
  - id: L1
    device_info: POS01
    scanners: [{type: stdin}]
    displays:
      - {type: vfd, port: ` + vfd.slave.Name() + `, language: en, encoding: ascii}
      - {type: escpos, port: ` + printer.slave.Name() + `, encoding: ascii, width: 32}
`})
	d.start()
	c := d.openCharge("L1", 1234)
	harness.WaitFor(t, 5*time.Second, func() bool {
		s, err := display.ParseVFD(vfd.bytes(), "ascii")
		return err == nil && s[0] == "Please pay"
	}, "the pole display shows the amount due")

	// The printer does not answer its status: the payment still completes
	// at once, and the receipt waits.
	start := time.Now()
	d.scan(harness.AlipayCode(23))
	got := d.settle(c.ID, 5*time.Second)
	require.Equal(t, "paid", got.State)
	assert.Less(t, time.Since(start), 2*time.Second, "a silent printer delays nothing")
	var screen [2]string
	harness.WaitFor(t, 5*time.Second, func() bool {
		screen, _ = display.ParseVFD(vfd.bytes(), "ascii")
		return screen == [2]string{"Paid. Thank you!", "SANDBOX RMB 12.34"}
	}, "the pole display shows paid")
	time.Sleep(time.Second)
	screen, _ = display.ParseVFD(vfd.bytes(), "ascii")
	assert.Equal(t, "Paid. Thank you!", screen[0], "the result stays on screen for a while")
	harness.WaitFor(t, 5*time.Second, func() bool { return printer.statusAsked.Load() > 0 }, "status asked")
	assert.NotContains(t, string(printer.bytes()), "RMB 12.34", "no receipt while the status is unknown")

	code, body := d.do("GET", "/v1/devices", nil)
	require.Equal(t, 200, code)
	assert.Contains(t, string(body), `"degraded"`, "the printer's unknown status is reported: %s", body)

	printer.answering.Store(true)
	harness.WaitFor(t, 10*time.Second, func() bool { return strings.Contains(string(printer.bytes()), "RMB 12.34") }, "the receipt prints once the printer answers")
	r := string(printer.bytes())
	a := got.Attempts[0]
	for _, want := range []string{"S001", "PAYMENT RECEIPT", "SANDBOX", "Lane", "L1", a.MchTradeID, a.TradeID, a.OutTradeID, "alipay",
		string(display.QRCommand(a.TradeID, 6)), "\x1dV\x01"} {
		assert.Contains(t, r, want)
	}
	assert.Equal(t, 1, strings.Count(r, "PAYMENT RECEIPT"), "printed once")

	code, _ = d.do("POST", "/v1/charges/"+c.ID+"/receipt", nil)
	require.Equal(t, 202, code)
	harness.WaitFor(t, 10*time.Second, func() bool { return strings.Contains(string(printer.bytes()), "REPRINT") }, "reprint")
}

// A pole display that is not there (and comes later) never holds up a payment.
func TestMissingDisplayDelaysNothing(t *testing.T) {
	t.Parallel()
	g := startSandbox(t)
	d := newDaemon(t, g, opts{lanes: `
  - id: L1
    device_info: POS01
    scanners: [{type: stdin}]
    displays:
      - {type: vfd, port: /dev/nonexistent-vfd}
      - {type: escpos, address: "127.0.0.1:1"}
`})
	d.start()
	c := d.openCharge("L1", 100)
	start := time.Now()
	d.scan(harness.AlipayCode(11))
	got := d.settle(c.ID, 5*time.Second)
	assert.Equal(t, "paid", got.State)
	assert.Less(t, time.Since(start), 2*time.Second)
	_, body := d.do("GET", "/v1/devices", nil)
	assert.Contains(t, string(body), `"gone"`)
}
