package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/test/harness"
)

// A serial scanner (here a sound-wave receiver) on a pseudo-terminal: the
// code written on the device side is paid at the sandbox, with its scene.
func TestSerialScannerOnPTY(t *testing.T) {
	t.Parallel()
	port := newPTY(t)
	g := startSandbox(t)
	d := newDaemon(t, g, opts{lanes: `
  - id: L1
    device_info: POS01
    scanners: [{type: serial, port: ` + port.slave.Name() + `, baud: 115200, scene: wave_code}]
`})
	d.start()
	harness.WaitFor(t, 10*time.Second, func() bool {
		_, body := d.do("GET", "/v1/devices", nil)
		return strings.Contains(string(body), `"connected"`)
	}, "scanner connected")
	c := d.openCharge("L1", 4321)
	code := harness.AlipayCode(42)
	_, err := port.master.Write([]byte(code[:7])) // a code split across reads
	require.NoError(t, err)
	time.Sleep(20 * time.Millisecond)
	_, err = port.master.Write([]byte(code[7:] + "\r\n"))
	require.NoError(t, err)
	got := d.settle(c.ID, 10*time.Second)
	require.Equal(t, "paid", got.State)
	assert.Equal(t, "wave_code", got.Attempts[0].Scene)
	l := g.ledger(t)
	checkLedger(t, l, got)
	require.Len(t, l.Orders, 1)
	assert.Equal(t, "wave_code", l.Orders[0].Scene, "the gateway got the scene")
}
