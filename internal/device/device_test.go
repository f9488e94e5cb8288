package device

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeUSB adds a USB device with one interface to a fake sysfs tree, and
// a usbmisc node (lpN, hiddevN) under the interface, linked as real sysfs
// does: class/usbmisc/NODE -> ../../devices/.../IFACE/usbmisc/NODE, whose
// device link points back at the interface.
func fakeUSB(t *testing.T, sysfs, port, node string, attrs map[string]string) {
	t.Helper()
	dev := filepath.Join(sysfs, "devices", "pci0000:00", "0000:00:14.0", "usb1", port)
	iface := filepath.Join(dev, port+":1.0")
	nodeDir := filepath.Join(iface, "usbmisc", node)
	require.NoError(t, os.MkdirAll(nodeDir, 0o755))
	for k, v := range attrs {
		require.NoError(t, os.WriteFile(filepath.Join(dev, k), []byte(v+"\n"), 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(iface, "bInterfaceClass"), []byte("07\n"), 0o644))
	require.NoError(t, os.Symlink("../../../"+port+":1.0", filepath.Join(nodeDir, "device")))
	class := filepath.Join(sysfs, "class", "usbmisc")
	require.NoError(t, os.MkdirAll(class, 0o755))
	rel, err := filepath.Rel(class, nodeDir)
	require.NoError(t, err)
	require.NoError(t, os.Symlink(rel, filepath.Join(class, node)))
}

func TestFindUSBPrinter(t *testing.T) {
	sysfs := t.TempDir()
	// Two identical printers told apart by serial number, and a HID
	// scanner whose hiddev shares the usbmisc class (and, with dynamic
	// minors, the numbers) with usblp.
	fakeUSB(t, sysfs, "1-3", "lp0", map[string]string{"idVendor": "0416", "idProduct": "5011", "serial": "A1", "product": "POS58"})
	fakeUSB(t, sysfs, "1-2", "hiddev0", map[string]string{"idVendor": "0c2e", "idProduct": "0b61", "serial": "S1"})
	fakeUSB(t, sysfs, "1-1", "lp1", map[string]string{"idVendor": "0416", "idProduct": "5011", "serial": "B2"})

	for id, want := range map[string]string{
		"0416:5011:B2": "/dev/usb/lp1",
		"0416:5011:A1": "/dev/usb/lp0",
		"0416:5011":    "/dev/usb/lp0", // any serial: the first
		"0416:5011:b2": "",             // serial numbers match exactly
		"0c2e:0b61":    "",             // a scanner's hiddev is no printer
		"0416:5012":    "",
	} {
		got, err := FindUSBPrinter(sysfs, id)
		if want == "" {
			assert.ErrorIs(t, err, ErrNotFound, id)
			continue
		}
		require.NoError(t, err, id)
		assert.Equal(t, want, got, id)
	}
	_, err := FindUSBPrinter(sysfs, "0416")
	assert.Error(t, err)
	assert.False(t, errors.Is(err, ErrNotFound), "a malformed id is not a missing device")

	// Replugged, it comes back as lp2: found again on the next lookup.
	require.NoError(t, os.RemoveAll(filepath.Join(sysfs, "devices", "pci0000:00", "0000:00:14.0", "usb1", "1-1")))
	require.NoError(t, os.Remove(filepath.Join(sysfs, "class", "usbmisc", "lp1")))
	_, err = FindUSBPrinter(sysfs, "0416:5011:B2")
	assert.ErrorIs(t, err, ErrNotFound, "unplugged")
	fakeUSB(t, sysfs, "1-4", "lp2", map[string]string{"idVendor": "0416", "idProduct": "5011", "serial": "B2"})
	got, err := FindUSBPrinter(sysfs, "0416:5011:B2")
	require.NoError(t, err)
	assert.Equal(t, "/dev/usb/lp2", got)

	infos := USBPrinters(sysfs)
	require.Len(t, infos, 2)
	assert.Equal(t, USBPrinterInfo{Path: "/dev/usb/lp0", VID: "0416", PID: "5011", Serial: "A1", Product: "POS58"}, infos[0])

	// The opener opens the usblp node it found as a file (absent here).
	_, err = USBPrinter(sysfs, SerialOptions{USB: "0416:5011:B2"})()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "/dev/usb/lp2")
}

func TestParseUSBID(t *testing.T) {
	u, err := ParseUSBID("0403:6001")
	require.NoError(t, err)
	assert.Equal(t, USBID{VID: "0403", PID: "6001"}, u)
	u, err = ParseUSBID("0403:6001:A9:X")
	require.NoError(t, err)
	assert.Equal(t, "A9:X", u.Serial, "the serial number is the rest")
	assert.True(t, u.Match("0403", "6001", "A9:X"))
	assert.False(t, u.Match("0403", "6001", "A9"))
	u, _ = ParseUSBID("0c2e:0B61")
	assert.True(t, u.Match("0C2E", "0b61", "any"), "hex ids in either case")
	_, err = ParseUSBID("0403")
	assert.Error(t, err)
}
