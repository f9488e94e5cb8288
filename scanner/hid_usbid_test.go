package scanner

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The libusb backend reads its id with device.ParseUSBID, before asking
// libusb anything: an id the config would refuse never reaches it.
func TestHIDOpenReadsTheIDWithTheOneParser(t *testing.T) {
	for _, id := range []string{"403:6001", "0403", "0x03:6001", "1:2"} {
		_, err := (&HID{USB: id}).open()
		require.Error(t, err, id)
		assert.Contains(t, err.Error(), `usb "`+id+`"`, id)
	}
}
