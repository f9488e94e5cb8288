package device

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ParseUSBID is the one parser of USB ids. It refuses every id the three
// parsers it replaced refused (config's validUSB, the strictest: 4 hex
// digits each; scanner.ParseUSB; its own older self), and says which part
// is wrong.
func TestParseUSBIDRefusesWhatTheOldParsersRefused(t *testing.T) {
	for id, want := range map[string]string{
		"":              `usb "": VVVV:PPPP or VVVV:PPPP:SERIAL`,
		"0403":          `usb "0403": VVVV:PPPP or VVVV:PPPP:SERIAL`,
		"04036001":      `VVVV:PPPP or VVVV:PPPP:SERIAL`,
		":":             `vendor id "" is not 4 hex digits`,
		"0403:":         `product id "" is not 4 hex digits`,
		":6001":         `vendor id "" is not 4 hex digits`,
		"403:6001":      `vendor id "403" is not 4 hex digits`, // scanner.ParseUSB took it
		"1:2":           `vendor id "1" is not 4 hex digits`,   // scanner.ParseUSB took it
		"0403:601":      `product id "601" is not 4 hex digits`,
		"04031:6001":    `vendor id "04031" is not 4 hex digits`,
		"0403:60011":    `product id "60011" is not 4 hex digits`,
		"g403:6001":     `vendor id "g403" is not 4 hex digits`,
		"0403:600z":     `product id "600z" is not 4 hex digits`,
		"0x03:6001":     `vendor id "0x03" is not 4 hex digits`,
		"+403:6001":     `vendor id "+403" is not 4 hex digits`,
		"-403:6001":     `vendor id "-403" is not 4 hex digits`,
		"0403:-001":     `product id "-001" is not 4 hex digits`,
		" 403:6001":     `vendor id " 403" is not 4 hex digits`,
		"0403 :6001":    `vendor id "0403 " is not 4 hex digits`,
		"0403:6001 ":    `product id "6001 " is not 4 hex digits`,
		"04_3:6001":     `vendor id "04_3" is not 4 hex digits`,
		"٠٤٠٣:6001":     `is not 4 hex digits`, // Arabic-Indic digits
		"0403:6001\n":   `product id "6001\n" is not 4 hex digits`,
		"vvvv:pppp":     `vendor id "vvvv" is not 4 hex digits`,
		"0403:6001x:AB": `product id "6001x" is not 4 hex digits`,
	} {
		_, err := ParseUSBID(id)
		require.Error(t, err, "%q", id)
		assert.Contains(t, err.Error(), want, "%q", id)
	}
}

// What it reads: hex ids in either case, kept as written; the serial
// number is the rest, colons and all; none or empty matches any.
func TestParseUSBIDReads(t *testing.T) {
	for id, want := range map[string]USBID{
		"0403:6001":          {VID: "0403", PID: "6001"},
		"0C2E:0b6a":          {VID: "0C2E", PID: "0b6a"},
		"0403:6001:":         {VID: "0403", PID: "6001"},
		"0403:6001:A9":       {VID: "0403", PID: "6001", Serial: "A9"},
		"0403:6001:A9:X":     {VID: "0403", PID: "6001", Serial: "A9:X"},
		"1eab:1d06:NLS 0001": {VID: "1eab", PID: "1d06", Serial: "NLS 0001"},
	} {
		u, err := ParseUSBID(id)
		require.NoError(t, err, id)
		assert.Equal(t, want, u, id)
	}
	u, _ := ParseUSBID("0403:6001")
	assert.True(t, u.Match("0403", "6001", "anything"), "no serial: any")
	u, _ = ParseUSBID("0403:6001:A9")
	assert.True(t, u.Match("0403", "6001", "A9"))
	assert.False(t, u.Match("0403", "6001", "a9"), "serial numbers compared exactly")
	assert.False(t, u.Match("0403", "6002", "A9"))
}

func TestUSBIDStringIsWhatTheConfigTakes(t *testing.T) {
	for _, s := range []string{"0c2e:0b61", "1eab:1d06:NLS0001", "0403:6001:A9:X"} {
		u, err := ParseUSBID(s)
		require.NoError(t, err)
		require.Equal(t, s, u.String())
	}
	require.Equal(t, "04b8:0e15:TMT20SN0001", USBID{VID: "04B8", PID: "0E15", Serial: "TMT20SN0001"}.String(), "hex in lower case, the serial as it is")
}
