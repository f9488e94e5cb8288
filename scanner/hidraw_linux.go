package scanner

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"example.com/posd/internal/device"
)

// hidrawOS: this OS has hidraw.
const hidrawOS = true

// hidiocsfeature is HIDIOCSFEATURE(n): _IOC(_IOC_WRITE|_IOC_READ, 'H',
// 0x06, n), which sends a feature report of n bytes, report ID first.
func hidiocsfeature(n int) uintptr { return 0xC0000000 | uintptr(n)<<16 | 'H'<<8 | 0x06 }

// openHIDRaw finds the scanner's /dev/hidrawN by its USB id and opens it.
func (h *HID) openHIDRaw() (io.ReadCloser, error) {
	sysfs, dev := h.sysfs, h.dev
	if sysfs == "" {
		sysfs = device.Sysfs
	}
	if dev == "" {
		dev = "/dev"
	}
	name, err := findHIDRaw(sysfs, h.USB)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dev, name)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err // permission denied as such: the device's health says so
	}
	// A Close (at shutdown, reload, or ctx's end) must end a pending Read:
	// that takes the poller, which hidraw supports. A node without it is
	// not a hidraw node, and a Read on it could not be interrupted.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: not a hidraw node: %w", path, err)
	}
	if h.Mode == "pos" {
		_ = hidrawSetFeature(f, []byte{0xfe, 0x01}) // enter HID-POS mode; others ignore it
	}
	return f, nil
}

// hidrawSetFeature sends a feature report (report ID first).
func hidrawSetFeature(f *os.File, report []byte) error {
	// Through SyscallConn, not Fd(): Fd() puts the file in blocking mode.
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, hidiocsfeature(len(report)), uintptr(unsafe.Pointer(&report[0])))
	}); err != nil {
		return err
	}
	if errno != 0 {
		return fmt.Errorf("HIDIOCSFEATURE: %w", errno)
	}
	return nil
}

// HIDRawInfo is a USB HID device's hidraw node as sysfs shows it.
type HIDRawInfo struct {
	Node                  string // hidrawN
	VID, PID, Serial      string
	Manufacturer, Product string
	POS                   bool // its report descriptor opens with usage page 0x8C: a HID-POS scanner
}

// HIDRawDevices lists the hidraw nodes of USB HID devices under sysfs
// (normally "/sys"), in node order: for each class/hidraw/hidrawN, its
// device link is the HID device (0003:VVVV:PPPP.NNNN, bus 0003 being USB),
// and the nearest directory above it with an idVendor is the USB device.
func HIDRawDevices(sysfs string) []HIDRawInfo {
	root := sysfs
	if r, err := filepath.EvalSymlinks(sysfs); err == nil {
		root = r
	}
	ents, _ := filepath.Glob(filepath.Join(sysfs, "class", "hidraw", "hidraw*"))
	num := func(e string) int { n, _ := strconv.Atoi(strings.TrimPrefix(filepath.Base(e), "hidraw")); return n }
	slices.SortFunc(ents, func(a, b string) int { return num(a) - num(b) })
	var out []HIDRawInfo
	for _, e := range ents {
		hidDir, err := filepath.EvalSymlinks(filepath.Join(e, "device"))
		if err != nil || !strings.HasPrefix(filepath.Base(hidDir), "0003:") {
			continue // gone meanwhile, or not on USB (Bluetooth, I2C), even if under a USB adapter
		}
		usbDir := ""
		for dir := hidDir; strings.HasPrefix(dir, root+string(filepath.Separator)); dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "idVendor")); err == nil {
				usbDir = dir
				break
			}
		}
		if usbDir == "" {
			continue
		}
		read := func(name string) string {
			b, _ := os.ReadFile(filepath.Join(usbDir, name))
			return strings.TrimSpace(string(b))
		}
		desc, _ := os.ReadFile(filepath.Join(hidDir, "report_descriptor"))
		out = append(out, HIDRawInfo{Node: filepath.Base(e), VID: read("idVendor"), PID: read("idProduct"), Serial: read("serial"),
			Manufacturer: read("manufacturer"), Product: read("product"), POS: hidPOSDescriptor(desc)})
	}
	return out
}

// hidPOSDescriptor: a report descriptor whose first item is Usage Page
// 0x8C (one- or two-byte form) describes a bar code scanner.
func hidPOSDescriptor(d []byte) bool {
	return len(d) >= 2 && d[0] == 0x05 && d[1] == 0x8c || len(d) >= 3 && d[0] == 0x06 && d[1] == 0x8c && d[2] == 0x00
}

// findHIDRaw returns the node (hidrawN) of the USB HID device with the id
// usb, "VVVV:PPPP[:SERIAL]". Looked up on every open: the number changes
// on a replug.
func findHIDRaw(sysfs, usb string) (string, error) {
	id, err := device.ParseUSBID(usb)
	if err != nil {
		return "", err
	}
	for _, d := range HIDRawDevices(sysfs) {
		if id.Match(d.VID, d.PID, d.Serial) {
			return d.Node, nil
		}
	}
	return "", fmt.Errorf("hidraw %s: %w", usb, device.ErrNotFound)
}
