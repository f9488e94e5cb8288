package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/config"
)

// The commands posd's tests run as processes live in test/e2e; these are
// the command's own pieces.

func TestUnknownCommandExitsTwo(t *testing.T) {
	assert.Equal(t, 2, run([]string{"frobnicate"}))
	assert.Equal(t, 0, run([]string{"version"}))
}

// What `posd devices` prints for a HID scanner is a stanza the config
// takes as written, with the mode and backend it says.
func TestHIDStanzaIsConfig(t *testing.T) {
	for _, tc := range []struct {
		backend string
		pos     bool
		mode    string
	}{{"", false, "keyboard"}, {"", true, "pos"}, {"hidraw", true, "pos"}, {"libusb", false, "keyboard"}} {
		stanza := hidStanza("05e0:1200:S123", tc.backend, tc.pos)
		c, err := config.Parse([]byte("lanes:\n  - id: L1\n    device_info: POS01\n    scanners:\n      - " + stanza + "\n"))
		require.NoError(t, err, stanza)
		_, err = c.Validate()
		require.NoError(t, err, stanza)
		sc := c.Lanes[0].Scanners[0]
		assert.Equal(t, "hid", sc.Type, stanza)
		assert.Equal(t, "05e0:1200:S123", sc.USB, stanza)
		assert.Equal(t, tc.mode, sc.Mode, stanza)
		assert.Equal(t, tc.backend, sc.Backend, stanza)
	}
}
