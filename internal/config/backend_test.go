package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHIDBackend(t *testing.T) {
	for backend, bad := range map[string]bool{"": false, "libusb": false, "hidraw": false, "hiddev": true, "HIDRAW": true} {
		src := strings.Replace(good, "scanners: [{type: stdin}]",
			`scanners: [{type: hid, usb: "0c2e:0b6a", mode: pos, backend: "`+backend+`"}]`, 1)
		c, err := Parse([]byte(src))
		require.NoError(t, err, backend)
		assert.Equal(t, backend, c.Lanes[0].Scanners[0].Backend)
		_, err = c.Validate()
		if !bad {
			assert.NoError(t, err, backend)
			continue
		}
		require.Error(t, err, backend)
		assert.Contains(t, err.Error(), `lanes[0].scanners[0].backend "`+backend+`": libusb or hidraw`)
	}
}
