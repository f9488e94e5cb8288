package scanner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/karalabe/hid"

	"example.com/posd/internal/device"
)

// HID reads a USB HID scanner. Mode "keyboard" decodes boot keyboard
// reports; "pos" decodes HID-POS barcode reports (asking the scanner into
// that mode with feature report 0xFE = 1, as Honeywell units need).
//
// Backend picks how the device is read:
//   - "libusb" (the default, "") goes through karalabe/hid: opening the
//     device detaches the kernel's usbhid driver, so a keyboard-mode
//     scanner's codes reach posd alone and never a focused window. It
//     needs a cgo build and write access to /dev/bus/usb/BBB/DDD.
//   - "hidraw" reads the kernel's /dev/hidrawN (Linux), leaving usbhid
//     bound: a keyboard-mode scanner would also type into the desktop, so
//     this suits HID-POS scanners, whose usage page 0x8C the kernel does
//     not map to keys. It needs only read and write access to the node
//     (udev: SUBSYSTEM=="hidraw") and works in builds without cgo.
type HID struct {
	USB     string // VVVV:PPPP[:SERIAL]
	Mode    string // keyboard or pos
	Backend string // libusb ("") or hidraw
	Layout  Layout
	Scene   string
	Report  Report
	Backoff Backoff
	Gap     time.Duration

	sysfs, dev string // where hidraw nodes are looked up: "/sys", "/dev" (tests: a fake tree)
}

// ErrNoHID: this build has no cgo, and so no libusb HID backend.
var ErrNoHID = errors.New("this posd was built without cgo: the hid scanner type's libusb backend is not available (use backend: hidraw, evdev, or a cgo build)")

// ErrNoHIDRaw: the hidraw backend is Linux only.
var ErrNoHIDRaw = errors.New("the hid scanner type's hidraw backend is Linux only (use backend: libusb)")

// HIDSupported reports whether this build has the libusb HID backend
// (a cgo build); the hidraw backend needs no cgo.
func HIDSupported() bool { return hid.Supported() }

// Run reads until ctx ends, finding the device again after it is gone.
func (h *HID) Run(ctx context.Context, emit func(Scan)) error {
	open := h.open
	switch {
	case h.Backend == "hidraw" && !hidrawOS:
		return ErrNoHIDRaw
	case h.Backend == "hidraw":
		// Each read is one report, report ID first for numbered reports:
		// what the libusb backend gives. The kernel queues reports per
		// reader, so no reader goroutine is needed.
		open = h.openHIDRaw
	case !hid.Supported():
		return ErrNoHID
	}
	return supervise(ctx, open, func(ctx context.Context, r io.Reader) error {
		var boot BootReports
		var pos HIDPOS
		dec := KeyDecoder{Layout: h.Layout, Gap: h.Gap}
		buf := make([]byte, 128)
		for {
			n, err := r.Read(buf)
			if err != nil {
				return err
			}
			now := time.Now()
			if h.Mode == "pos" {
				if code, ok := pos.Feed(buf[:n]); ok {
					emit(Scan{Code: code, Scene: h.Scene, Source: "hid:" + h.USB})
				}
				continue
			}
			for _, k := range boot.Keys(buf[:n]) {
				if code, ok := dec.Feed(k, now); ok {
					emit(Scan{Code: code, Scene: h.Scene, Source: "hid:" + h.USB})
				}
			}
		}
	}, h.Report, h.Backoff)
}

// open opens the device through libusb.
func (h *HID) open() (io.ReadCloser, error) {
	id, err := device.ParseUSBID(h.USB)
	if err != nil {
		return nil, err
	}
	// ParseUSBID checked both are 4 hex digits.
	vid, _ := strconv.ParseUint(id.VID, 16, 16)
	pid, _ := strconv.ParseUint(id.PID, 16, 16)
	infos, err := hid.Enumerate(uint16(vid), uint16(pid))
	if err != nil {
		return nil, err
	}
	for _, info := range infos {
		if !id.Match(fmt.Sprintf("%04x", info.VendorID), fmt.Sprintf("%04x", info.ProductID), info.Serial) {
			continue
		}
		dev, err := info.Open()
		if err != nil {
			return nil, err
		}
		if h.Mode == "pos" {
			_, _ = dev.SendFeatureReport([]byte{0xfe, 0x01}) // enter HID-POS mode; others ignore it
		}
		return newHIDReader(dev), nil
	}
	return nil, fmt.Errorf("hid %s: not found", h.USB)
}

// hidReader gives the device a dedicated reader goroutine: the library
// keeps only 30 reports and drops the oldest, so it is read at once into a
// large queue. Close stops that goroutine, which then closes the device
// itself (closing under a read in progress is not safe in hidapi).
type hidReader struct {
	reports chan []byte
	errc    chan error
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

func newHIDReader(dev hid.Device) *hidReader {
	r := &hidReader{reports: make(chan []byte, 1024), errc: make(chan error, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		defer dev.Close()
		buf := make([]byte, 128)
		for {
			select {
			case <-r.stop:
				return
			default:
			}
			n, err := dev.ReadTimeout(buf, 200)
			if err != nil {
				r.errc <- err
				return
			}
			if n > 0 {
				select {
				case r.reports <- append([]byte(nil), buf[:n]...):
				default: // a full queue loses a report rather than block the reader
				}
			}
		}
	}()
	return r
}

func (r *hidReader) Read(p []byte) (int, error) {
	select {
	case rep := <-r.reports:
		return copy(p, rep), nil
	case err := <-r.errc:
		return 0, err
	case <-r.done:
		return 0, io.EOF
	}
}

func (r *hidReader) Close() error {
	r.once.Do(func() { close(r.stop) })
	<-r.done
	return nil
}
