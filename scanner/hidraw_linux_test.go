package scanner

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"example.com/posd/internal/device"
)

// addUSB adds a USB device to a fake sysfs, under the root hub usb1
// (itself a USB device, 1d6b:0002), and returns its directory.
func addUSB(t *testing.T, sysfs, port, vid, pid, serial string) string {
	t.Helper()
	hub := filepath.Join(sysfs, "devices", "pci0000:00", "0000:00:14.0", "usb1")
	dir := filepath.Join(hub, port)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	write := func(dir, name, v string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o644))
	}
	write(hub, "idVendor", "1d6b")
	write(hub, "idProduct", "0002")
	write(dir, "idVendor", vid)
	write(dir, "idProduct", pid)
	if serial != "" {
		write(dir, "serial", serial)
	}
	return dir
}

// addHIDRaw adds a HID device named hid (0003:VVVV:PPPP.NNNN for USB) under
// dir/sub, with its hidraw node, as the kernel lays them out: class/hidraw
// links to the node's directory, whose device link is the HID device.
func addHIDRaw(t *testing.T, sysfs, dir, sub, hid, node string) {
	t.Helper()
	hidDir := filepath.Join(dir, sub, hid)
	nodeDir := filepath.Join(hidDir, "hidraw", node)
	require.NoError(t, os.MkdirAll(nodeDir, 0o755))
	require.NoError(t, os.Symlink("../../../"+hid, filepath.Join(nodeDir, "device")))
	class := filepath.Join(sysfs, "class", "hidraw")
	require.NoError(t, os.MkdirAll(class, 0o755))
	rel, err := filepath.Rel(class, nodeDir)
	require.NoError(t, err)
	require.NoError(t, os.Symlink(rel, filepath.Join(class, node)))
}

// fakeSysfs: two identical scanners told apart by serial, a third device
// without a serial, a Bluetooth keyboard behind a USB adapter, and a node
// whose device is gone.
func fakeSysfs(t *testing.T) string {
	sysfs := t.TempDir()
	a := addUSB(t, sysfs, "1-1", "0c2e", "0b6a", "A100")
	addHIDRaw(t, sysfs, a, "1-1:1.0", "0003:0C2E:0B6A.0001", "hidraw2")
	b := addUSB(t, sysfs, "1-2", "0c2e", "0b6a", "B200")
	addHIDRaw(t, sysfs, b, "1-2:1.0", "0003:0C2E:0B6A.0002", "hidraw10")
	c := addUSB(t, sysfs, "1-3", "05e0", "1200", "")
	addHIDRaw(t, sysfs, c, "1-3:1.0", "0003:05E0:1200.0003", "hidraw3")
	bt := addUSB(t, sysfs, "1-4", "8087", "0a2b", "")
	addHIDRaw(t, sysfs, bt, "1-4:1.0/bluetooth/hci0/hci0:256", "0005:05AC:024F.0004", "hidraw4")
	require.NoError(t, os.Symlink("../../devices/nowhere", filepath.Join(sysfs, "class", "hidraw", "hidraw5")))
	return sysfs
}

func TestFindHIDRaw(t *testing.T) {
	sysfs := fakeSysfs(t)
	for usb, want := range map[string]string{
		"0c2e:0b6a":      "hidraw2", // either scanner: the lowest number
		"0C2E:0B6A":      "hidraw2",
		"0c2e:0b6a:A100": "hidraw2",
		"0c2e:0b6a:B200": "hidraw10",
		"05e0:1200":      "hidraw3",
		"05e0:1200:X":    "", // it has no serial
		"0c2e:0b6a:C300": "", // no such serial
		"8087:0a2b":      "", // the Bluetooth adapter is not its keyboard
		"05ac:024f":      "", // a Bluetooth keyboard is not on USB
		"1d6b:0002":      "", // the root hub is above the interface, not it
		"1234:5678":      "",
	} {
		got, err := findHIDRaw(sysfs, usb)
		if want == "" {
			assert.ErrorIs(t, err, device.ErrNotFound, usb)
			continue
		}
		require.NoError(t, err, usb)
		assert.Equal(t, want, got, usb)
	}
	_, err := findHIDRaw(filepath.Join(sysfs, "missing"), "0c2e:0b6a")
	assert.ErrorIs(t, err, device.ErrNotFound)
	_, err = findHIDRaw(sysfs, "0c2e")
	assert.Error(t, err)
}

func TestHIDIOCSFEATURE(t *testing.T) {
	assert.Equal(t, uintptr(0xC0024806), hidiocsfeature(2)) // _IOWR('H', 0x06, 2 bytes)
}

// hidrawNode stands in for /dev/hidrawN with a FIFO: the reader opens it
// O_RDWR (HIDIOCSFEATURE fails on it, harmlessly). send writes one report
// and waits until it is read (TIOCINQ is FIONREAD), so that each read is one report, as hidraw
// gives them.
type hidrawNode struct {
	t *testing.T
	f *os.File
}

func newHIDRawNode(t *testing.T, dev, name string) *hidrawNode {
	path := filepath.Join(dev, name)
	require.NoError(t, unix.Mkfifo(path, 0o600))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return &hidrawNode{t: t, f: f}
}

func (n *hidrawNode) send(report []byte) {
	n.t.Helper()
	_, err := n.f.Write(report)
	require.NoError(n.t, err)
	rc, err := n.f.SyscallConn()
	require.NoError(n.t, err)
	for end := time.Now().Add(3 * time.Second); ; time.Sleep(time.Millisecond) {
		var queued int
		var ierr error
		require.NoError(n.t, rc.Control(func(fd uintptr) { queued, ierr = unix.IoctlGetInt(int(fd), unix.TIOCINQ) }))
		require.NoError(n.t, ierr)
		if queued == 0 {
			return
		}
		if time.Now().After(end) {
			n.t.Fatalf("report not read: %d bytes queued", queued)
		}
	}
}

// posReport is a HID-POS input report (ID 2, 64 bytes).
func posReport(data string, more bool) []byte {
	r := make([]byte, 64)
	r[0] = HIDPOSReportID
	r[1] = byte(len(data))
	copy(r[2:5], "]E0")
	copy(r[5:], data)
	if more {
		r[1+hidposMore] = 1
	}
	return r
}

type hidRun struct {
	mu     sync.Mutex
	scans  []Scan
	states []string
	cancel context.CancelFunc
	done   chan error
}

func (r *hidRun) got() ([]Scan, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Scan(nil), r.scans...), append([]string(nil), r.states...)
}

func startHID(t *testing.T, h *HID) *hidRun {
	r := &hidRun{done: make(chan error, 1)}
	h.Report = func(s device.State, detail string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.states = append(r.states, string(s)+" "+detail)
	}
	h.Backoff = Backoff{Min: 5 * time.Millisecond, Max: 10 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		r.done <- h.Run(ctx, func(s Scan) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.scans = append(r.scans, s)
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(3 * time.Second):
			t.Error("Run did not end with its context")
		}
	})
	return r
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(2 * time.Millisecond) {
		if f() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestHIDRawPOS(t *testing.T) {
	sysfs, dev := t.TempDir(), t.TempDir()
	h := &HID{USB: "0c2e:0b6a:B200", Mode: "pos", Backend: "hidraw", Scene: SceneBarCode, sysfs: sysfs, dev: dev}
	r := startHID(t, h)

	// Not plugged in yet: gone, and looked for again.
	waitFor(t, "not found", func() bool {
		_, st := r.got()
		return len(st) >= 2
	})
	_, st := r.got()
	assert.Equal(t, "gone hidraw 0c2e:0b6a:B200: device not found", st[0])

	// Plugged in: found by serial, opened, read one report at a time.
	a := addUSB(t, sysfs, "1-1", "0c2e", "0b6a", "A100")
	addHIDRaw(t, sysfs, a, "1-1:1.0", "0003:0C2E:0B6A.0001", "hidraw0")
	b := addUSB(t, sysfs, "1-2", "0c2e", "0b6a", "B200")
	addHIDRaw(t, sysfs, b, "1-2:1.0", "0003:0C2E:0B6A.0002", "hidraw1")
	other := newHIDRawNode(t, dev, "hidraw0")
	node := newHIDRawNode(t, dev, "hidraw1")
	_, err := other.f.Write(posReport("999999", false)) // the other scanner: never read
	require.NoError(t, err)
	waitFor(t, "connected", func() bool {
		_, st := r.got()
		return st[len(st)-1] == "connected "
	})
	node.send(posReport("134567890123456789", false))
	node.send([]byte{0x01, 0x00, 0x1e}) // another report ID: ignored
	node.send(posReport("28294123456789", true))
	node.send(posReport("0123\r", false))
	waitFor(t, "two scans", func() bool { s, _ := r.got(); return len(s) >= 2 })

	// A pending read ends with the context.
	r.cancel()
	select {
	case err := <-r.done:
		assert.ErrorIs(t, err, context.Canceled)
		r.done <- err
	case <-time.After(3 * time.Second):
		t.Fatal("Run blocked in a read after its context ended")
	}
	scans, _ := r.got()
	assert.Equal(t, []Scan{
		{Code: "134567890123456789", Scene: SceneBarCode, Source: "hid:0c2e:0b6a:B200"},
		{Code: "282941234567890123", Scene: SceneBarCode, Source: "hid:0c2e:0b6a:B200"},
	}, scans)
}

func TestHIDRawKeyboard(t *testing.T) {
	sysfs, dev := fakeSysfs(t), t.TempDir()
	node := newHIDRawNode(t, dev, "hidraw3")
	h := &HID{USB: "05e0:1200", Mode: "keyboard", Backend: "hidraw", Layout: "us", Scene: SceneBarCode, Gap: time.Minute, sysfs: sysfs, dev: dev}
	r := startHID(t, h)
	up := make([]byte, 8)
	for _, u := range []byte{0x1e, 0x1f, 0x20, 0x20, 0x27, usageEnter} { // 1 2 3 3 0 Enter
		node.send([]byte{0, 0, u, 0, 0, 0, 0, 0})
		node.send(up)
	}
	waitFor(t, "a scan", func() bool { s, _ := r.got(); return len(s) > 0 })
	scans, _ := r.got()
	assert.Equal(t, []Scan{{Code: "12330", Scene: SceneBarCode, Source: "hid:05e0:1200"}}, scans)
}

func TestHIDRawOpenErrors(t *testing.T) {
	sysfs, dev := fakeSysfs(t), t.TempDir()
	h := &HID{USB: "0c2e:0b6a:A100", Mode: "pos", Backend: "hidraw", sysfs: sysfs, dev: dev}

	// Found in sysfs, but no node (udev has not made it yet).
	_, err := h.openHIDRaw()
	assert.ErrorIs(t, err, fs.ErrNotExist)

	// A node that cannot be polled (here a plain file) is refused: a read
	// on it could not be ended by Close.
	path := filepath.Join(dev, "hidraw2")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	_, err = h.openHIDRaw()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a hidraw node")
	require.NoError(t, os.Remove(path))

	// No access: the error says so (the device shows permission_denied).
	require.NoError(t, unix.Mkfifo(path, 0o000))
	if os.Geteuid() == 0 {
		t.Log("running as root: the permission check is not testable")
	} else {
		_, err = h.openHIDRaw()
		assert.ErrorIs(t, err, fs.ErrPermission)
		assert.Equal(t, device.PermissionDenied, device.StateOf(err))
	}

	h.USB = "0c2e:0b6a:C300"
	_, err = h.openHIDRaw()
	assert.ErrorIs(t, err, device.ErrNotFound)
	assert.True(t, errors.Is(err, device.ErrNotFound) && strings.Contains(err.Error(), "0c2e:0b6a:C300"))
}
