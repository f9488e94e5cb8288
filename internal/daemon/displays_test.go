package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/config"
)

// A receipt printer under /dev/usb/lp* (usblp) is a file, not a serial
// port: the serial library's terminal settings fail on it.
func TestIsTTY(t *testing.T) {
	dir := t.TempDir()
	link := func(name, target string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.Symlink(target, p))
		return p
	}
	cases := []struct {
		path string
		tty  bool
	}{
		{"/dev/usb/lp0", false},
		{"/dev/usb/lp1", false},
		{"/dev/usb/lp12", false},
		{"/dev/ttyUSB0", true},
		{"/dev/ttyACM0", true},
		{"/dev/ttyS0", true},
		{"/dev/usb/hiddev0", true},
		// udev's links (posd/printer-%n -> ../usb/lpN), targets absent here
		{link("posd/printer-0", "/dev/usb/lp0"), false},
		{link("posd/printer-1", "printer-0"), false}, // a link to a link
		{link("posd/pole-0", "/dev/ttyACM0"), true},
		{link("posd/other", "../usb/lp0"), true}, // relative: resolves under dir, not /dev
	}
	for _, c := range cases {
		assert.Equal(t, c.tty, isTTY(c.path), c.path)
	}
	assert.Equal(t, filepath.Join(dir, "usb", "lp0"), resolveLinks(filepath.Join(dir, "posd", "other")), "relative targets are from the link's directory")
	assert.Equal(t, "/dev/usb/lp0", resolveLinks("/dev/usb/lp0"))

	// The opener of an escpos port on usblp opens a file; on a tty, a serial port.
	for _, c := range []struct {
		port, want string
	}{
		{"/dev/usb/lp9", "open /dev/usb/lp9"},
		{link("posd/printer-9", "/dev/usb/lp9"), "open " + filepath.Join(dir, "posd", "printer-9")},
		{"/dev/ttyUSB9", "serial /dev/ttyUSB9"},
	} {
		_, err := opener(config.Display{Type: "escpos", Port: c.port})()
		require.Error(t, err, c.port)
		assert.True(t, strings.HasPrefix(err.Error(), c.want), "%s: %v", c.port, err)
	}
}
