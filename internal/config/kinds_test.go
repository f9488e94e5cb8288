package config_test

// The scanner and display kinds register from internal/daemon
// (scanners.go, displaykinds.go, in init functions). This external test
// package imports it, so the package's test binary links the kinds and
// every test of the package, package config's own too, loads a file as
// posd does.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/config"
	_ "example.com/posd/internal/daemon" // registers the kinds
)

// lane is a file with one lane whose scanners and displays are given.
func lane(scanners, displays string) string {
	return `
lanes:
  - id: L1
    device_info: POS01
    scanners: [` + scanners + `]
    displays: [` + displays + `]
`
}

func load(t *testing.T, src string) (config.Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(src), 0o600))
	c, _, err := config.Load(path)
	return c, err
}

func TestKindsRegistered(t *testing.T) {
	assert.Equal(t, []string{"evdev", "hid", "serial", "stdin"}, config.ScannerTypes())
	assert.Equal(t, []string{"escpos", "terminal", "vfd", "web"}, config.DisplayTypes())
}

// An unknown type is a configuration error naming the entry and the types
// there are: never a scanner that silently reads stdin.
func TestLoadRefusesUnknownTypes(t *testing.T) {
	_, err := load(t, lane(`{type: stdin}, {type: laser}`, `{type: terminal}, {type: hologram}`))
	require.Error(t, err)
	assert.ErrorIs(t, err, config.ErrConfig, "posd exits 78")
	assert.Contains(t, err.Error(), `lanes[0].scanners[1].type "laser": not a scanner type (evdev, hid, serial or stdin)`)
	assert.Contains(t, err.Error(), `lanes[0].displays[1].type "hologram": not a display type (escpos, terminal, vfd or web)`)
	assert.NotContains(t, err.Error(), "scanners[0]")
	assert.NotContains(t, err.Error(), "displays[0]")

	_, err = load(t, lane(`{type: ""}`, `{type: terminal}`))
	assert.ErrorContains(t, err, `lanes[0].scanners[0].type "": not a scanner type`, "type left out")
	_, err = load(t, lane(`{type: Stdin}`, `{type: terminal}`))
	assert.ErrorContains(t, err, `type "Stdin": not a scanner type`, "types are lower case")
}

// The checks each kind registers: what internal/config checked before the
// kinds had tables, with the same messages.
func TestKindChecks(t *testing.T) {
	for _, c := range []struct {
		scanner, display string
		want             string // "": valid
	}{
		{`{type: stdin}`, `{type: terminal}`, ""},
		{`{type: serial, port: /dev/ttyS0}`, ``, ""},
		{`{type: serial, port: /dev/ttyS0, baud: 0, data_bits: 0, parity: "", stop_bits: 0}`, ``, ""},
		{`{type: serial, usb: "0403:6001", baud: 115200, data_bits: 7, parity: even, stop_bits: 2}`, ``, ""},
		{`{type: serial}`, ``, "lanes[0].scanners[0]: port or usb (one of them)"},
		{`{type: serial, port: /dev/ttyS0, usb: "0403:6001"}`, ``, "port or usb (one of them)"},
		{`{type: serial, port: /dev/ttyS0, baud: -1}`, ``, "baud must be positive and data_bits 5-8"},
		{`{type: serial, port: /dev/ttyS0, data_bits: 9}`, ``, "baud must be positive and data_bits 5-8"},
		{`{type: serial, port: /dev/ttyS0, data_bits: 4}`, ``, "baud must be positive and data_bits 5-8"},
		{`{type: serial, port: /dev/ttyS0, parity: mark}`, ``, `scanners[0].parity "mark": none, odd or even`},
		{`{type: serial, port: /dev/ttyS0, stop_bits: 3}`, ``, `scanners[0].stop_bits 3: 1 or 2`},
		{`{type: evdev, name: "Scanner"}`, ``, ""},
		{`{type: evdev, device: /dev/input/event3, usb: "0c2e:0b61"}`, ``, "exactly one of device, name or usb"},
		{`{type: evdev}`, ``, "exactly one of device, name or usb"},
		{`{type: evdev, name: x, layout: de}`, ``, `scanners[0].layout "de": us or fr`},
		{`{type: hid, usb: "0c2e:0b6a", mode: pos, backend: hidraw}`, ``, ""},
		{`{type: hid}`, ``, "scanners[0]: usb required"},
		{`{type: hid, usb: "0c2e:0b6a", mode: serial}`, ``, `scanners[0].mode "serial": keyboard or pos`},
		{`{type: hid, usb: "0c2e:0b6a", layout: de}`, ``, `layout "de": us or fr`},
		{`{type: stdin, scene: face}`, ``, `scanners[0].scene "face": bar_code or wave_code`},

		{``, `{type: vfd, port: /dev/ttyUSB0, language: zh, encoding: gb18030}`, ""},
		{``, `{type: vfd}`, "displays[0]: port or usb required"},
		{``, `{type: vfd, port: /dev/ttyUSB0, usb: "0403:6001"}`, "port or usb, not both"},
		{``, `{type: vfd, port: /dev/ttyUSB0, baud: -1}`, "displays[0].baud: must be positive"},
		{``, `{type: vfd, port: /dev/ttyUSB0, encoding: cp437}`, `encoding "cp437": ascii or gb18030`},
		{``, `{type: vfd, port: /dev/ttyUSB0, language: fr}`, `language "fr": zh or en`},
		{``, `{type: vfd, port: /dev/ttyUSB0, language: zh}`, "language zh needs encoding gb18030"},
		{``, `{type: escpos, address: "printer:9100", encoding: cp858, width: 48}`, ""},
		{``, `{type: escpos, usb: "0416:5011"}`, ""},
		{``, `{type: escpos, port: /dev/usb/lp0, address: ":9100"}`, "exactly one of port, usb or address"},
		{``, `{type: escpos, address: printer}`, `address "printer": host:port`},
		{``, `{type: escpos, port: /dev/usb/lp0, width: 8}`, "width 8: 16 to 64 characters"},
		{``, `{type: escpos, port: /dev/usb/lp0, encoding: cp999}`,
			`encoding "cp999": ascii, gb18030 or a code page (cp437, cp850, cp858, cp860, cp863, cp865, cp866, cp1252)`},
		{``, `{type: web}`, ""},
		{``, `{type: web, listen: "0.0.0.0:8080"}`, `listen "0.0.0.0:8080": host:port on loopback`},
		{``, `{type: web, listen: "unix:/run/web.sock"}`, `host:port on loopback`},
	} {
		scanners := c.scanner
		if scanners == "" {
			scanners = "{type: stdin}"
		}
		_, err := load(t, lane(scanners, c.display))
		if c.want == "" {
			assert.NoError(t, err, "%s %s", c.scanner, c.display)
			continue
		}
		require.Error(t, err, "%s %s", c.scanner, c.display)
		assert.ErrorIs(t, err, config.ErrConfig)
		assert.Contains(t, err.Error(), c.want, "%s %s", c.scanner, c.display)
	}

	// web: the API on a unix socket needs the display's own address
	_, err := load(t, "api: {listen: \"unix:/run/posd/api.sock\"}\n"+lane(`{type: stdin}`, `{type: web}`))
	assert.ErrorContains(t, err, "displays[0]: the API is on a unix socket, so the web display needs its own listen address")
	_, err = load(t, "api: {listen: \"unix:/run/posd/api.sock\"}\n"+lane(`{type: stdin}`, `{type: web, listen: "127.0.0.1:8322"}`))
	assert.NoError(t, err)

	// one stdin in the whole file, across lanes
	_, err = load(t, lane(`{type: stdin}`, ``)+`  - id: L2
    device_info: POS02
    scanners: [{type: stdin}]
`)
	assert.ErrorContains(t, err, "lanes: 2 stdin scanners; there is one standard input")
}

// Serial settings left out stay unset in the config: the defaults are
// device.Serial's, written there once.
func TestSerialDefaultsLeftToTheDevice(t *testing.T) {
	c, err := load(t, lane(`{type: serial, port: /dev/ttyS0}`, `{type: vfd, port: /dev/ttyUSB0}, {type: escpos, port: /dev/usb/lp0}`))
	require.NoError(t, err)
	sc := c.Lanes[0].Scanners[0]
	assert.Zero(t, sc.Baud)
	assert.Zero(t, sc.DataBits)
	assert.Zero(t, sc.Parity)
	assert.Zero(t, sc.StopBits)
	assert.Zero(t, sc.KeyGap, "scanner.KeyDecoder's default")
	assert.Zero(t, c.Lanes[0].Displays[0].Baud)
	assert.Zero(t, c.Lanes[0].Displays[1].Width, "display.ReceiptBytes's default")
}

// USB ids are read by device.ParseUSBID alone, wherever a usb key is.
func TestUSBIDsCheckedByTheOneParser(t *testing.T) {
	for usb, want := range map[string]string{
		"0403":           `VVVV:PPPP or VVVV:PPPP:SERIAL (VVVV and PPPP 4 hex digits each)`,
		"":               "", // left out
		"403:6001":       `vendor id "403" is not 4 hex digits (VVVV:PPPP or VVVV:PPPP:SERIAL)`,
		"0403:601":       `product id "601" is not 4 hex digits`,
		"04031:6001":     `vendor id "04031" is not 4 hex digits`,
		"0x03:6001":      `vendor id "0x03" is not 4 hex digits`,
		"04g3:6001":      `vendor id "04g3" is not 4 hex digits`,
		"0403:+001":      `product id "+001" is not 4 hex digits`,
		"0403:6001":      "",
		"0403:6001:A9":   "",
		"0403:6001:A9:X": "", // a serial number may hold a colon
	} {
		if want != "" {
			want = `usb "` + usb + `": ` + want
		}
		for _, entry := range []struct{ scanner, display, at string }{
			{`{type: serial, usb: "` + usb + `"}`, `{type: terminal}`, "lanes[0].scanners[0]."},
			{`{type: evdev, usb: "` + usb + `"}`, `{type: terminal}`, "lanes[0].scanners[0]."},
			{`{type: hid, usb: "` + usb + `"}`, `{type: terminal}`, "lanes[0].scanners[0]."},
			{`{type: stdin}`, `{type: vfd, usb: "` + usb + `"}`, "lanes[0].displays[0]."},
			{`{type: stdin}`, `{type: escpos, usb: "` + usb + `"}`, "lanes[0].displays[0]."},
		} {
			_, err := load(t, lane(entry.scanner, entry.display))
			if usb == "" {
				if err != nil {
					assert.NotContains(t, err.Error(), ".usb", "%s %s", entry.scanner, entry.display)
				}
				continue
			}
			if want == "" {
				assert.NoError(t, err, "%s %s", entry.scanner, entry.display)
				continue
			}
			require.Error(t, err, "%s %s", entry.scanner, entry.display)
			assert.Contains(t, err.Error(), entry.at+want, "%s %s", entry.scanner, entry.display)
			assert.Equal(t, 1, strings.Count(err.Error(), "\n  - "), "one problem, one line: %v", err)
		}
	}
}

// The label of each kind names the device in GET /v1/devices.
func TestLabels(t *testing.T) {
	for want, s := range map[string]config.Scanner{
		"stdin":             {Type: "stdin"},
		"/dev/ttyS0":        {Type: "serial", Port: "/dev/ttyS0"},
		"usb:0403:6001":     {Type: "serial", USB: "0403:6001"},
		"/dev/input/event3": {Type: "evdev", Device: "/dev/input/event3"},
		"input:Scanner":     {Type: "evdev", Name: "Scanner"},
		"usb:0c2e:0b61":     {Type: "evdev", USB: "0c2e:0b61"},
		"usb:0c2e:0b6a:X":   {Type: "hid", USB: "0c2e:0b6a:X"},
		"laser":             {Type: "laser", Port: "/dev/ttyS0"},
	} {
		assert.Equal(t, want, s.Label())
	}
	for want, d := range map[string]config.Display{
		"terminal":      {Type: "terminal"},
		"/dev/ttyUSB0":  {Type: "vfd", Port: "/dev/ttyUSB0"},
		"usb:0403:6001": {Type: "vfd", USB: "0403:6001"},
		"/dev/usb/lp0":  {Type: "escpos", Port: "/dev/usb/lp0"},
		"usb:0416:5011": {Type: "escpos", USB: "0416:5011"},
		"printer:9100":  {Type: "escpos", Address: "printer:9100"},
		"web":           {Type: "web"},
	} {
		assert.Equal(t, want, d.Name())
	}
}
