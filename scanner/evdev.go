package scanner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"example.com/posd/internal/device"
)

// Evdev reads a keyboard-wedge scanner through /dev/input/eventN, taking
// it exclusively (EVIOCGRAB) so its codes never reach a focused window.
// The device is chosen only by an allow-list entry: a path, the input
// device's name, or its USB id. posd never grabs a keyboard it was not
// told to.
type Evdev struct {
	Device  string // /dev/input/eventN or a /dev/input/by-id path
	Name    string // the input device's name, as /sys/class/input/*/device/name
	USB     string // VVVV:PPPP
	Layout  Layout
	Scene   string
	Report  Report
	Backoff Backoff
	Gap     time.Duration
}

// eviocgrab is _IOW('E', 0x90, int).
const eviocgrab = 0x40044590

// Run reads until ctx ends, finding the device again after it is gone.
func (e *Evdev) Run(ctx context.Context, emit func(Scan)) error {
	return supervise(ctx, e.open, func(ctx context.Context, r io.Reader) error {
		st := EvdevStream{Dec: KeyDecoder{Layout: e.Layout, Gap: e.Gap}, KeyState: func() ([]byte, error) { return evdevKeys(r) }}
		size := EventSize(strconv.IntSize)
		buf := make([]byte, size*64)
		var rest []byte
		for {
			n, err := r.Read(buf)
			if err != nil {
				return err
			}
			var evs []Event
			evs, rest = ParseEvents(append(rest, buf[:n]...), size)
			seen := st.Overflows
			for _, code := range st.Feed(evs) {
				emit(Scan{Code: code, Scene: e.Scene, Source: e.Label()})
			}
			if st.Overflows != seen && e.Report != nil {
				// Still connected, but the kernel's queue overflowed and
				// a code may be gone: the operator should know.
				e.Report(device.Connected, fmt.Sprintf("input queue overflowed %d times since opened: partial codes discarded", st.Overflows))
			}
		}
	}, e.Report, e.Backoff)
}

// eviocgkey is EVIOCGKEY(96): _IOR('E', 0x18, len), the bitmap of the keys
// held, KEY_MAX+1 = 0x300 bits.
const eviocgkey = 2<<30 | 96<<16 | 'E'<<8 | 0x18

// evdevKeys reads the key bitmap of the evdev device r (EVIOCGKEY). The
// kernel also drops the key events still queued for this reader.
func evdevKeys(r io.Reader) ([]byte, error) {
	sc, ok := r.(syscall.Conn)
	if !ok {
		return nil, errors.New("not an evdev device")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	bits := make([]byte, 96)
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, eviocgkey, uintptr(unsafe.Pointer(&bits[0])))
	}); err != nil {
		return nil, err
	}
	if errno != 0 {
		return nil, fmt.Errorf("EVIOCGKEY: %w", errno)
	}
	return bits, nil
}

// Label is how the scanner is named in /v1/devices and in its scans.
func (e *Evdev) Label() string {
	switch {
	case e.Device != "":
		return e.Device
	case e.Name != "":
		return "input:" + e.Name
	}
	return "usb:" + e.USB
}

func (e *Evdev) open() (io.ReadCloser, error) {
	path := e.Device
	if path == "" {
		p, err := FindInput(e.Name, e.USB)
		if err != nil {
			return nil, err
		}
		path = p
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	// Through SyscallConn, not Fd(): Fd() puts the file in blocking mode,
	// and a Close at shutdown or reload could then not end a pending read.
	var ierr error
	rc, err := f.SyscallConn()
	if err == nil {
		err = rc.Control(func(fd uintptr) { ierr = unix.IoctlSetInt(int(fd), eviocgrab, 1) })
	}
	if err == nil {
		err = ierr
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("grab %s: %w", path, err)
	}
	return f, nil
}

// InputDevice is an evdev device as /sys describes it.
type InputDevice struct {
	Path    string // /dev/input/eventN
	Name    string
	Bus     string // 0003 for USB
	Vendor  string
	Product string
	Serial  string   // the USB serial number (uniq), if any
	ByID    []string // /dev/input/by-id links to it
}

// InputDevices lists /dev/input/event* with their names and USB ids.
func InputDevices() []InputDevice {
	ents, _ := filepath.Glob("/sys/class/input/event*")
	links, _ := filepath.Glob("/dev/input/by-id/*")
	var out []InputDevice
	for _, sys := range ents {
		read := func(rel string) string {
			b, _ := os.ReadFile(filepath.Join(sys, "device", rel))
			return strings.TrimSpace(string(b))
		}
		d := InputDevice{Path: "/dev/input/" + filepath.Base(sys), Name: read("name"), Bus: read("id/bustype"), Vendor: read("id/vendor"), Product: read("id/product"), Serial: read("uniq")}
		for _, l := range links {
			if t, err := filepath.EvalSymlinks(l); err == nil && t == d.Path {
				d.ByID = append(d.ByID, l)
			}
		}
		out = append(out, d)
	}
	return out
}

// FindInput finds the event device with the given name or USB id.
func FindInput(name, usb string) (string, error) {
	id, _ := device.ParseUSBID(usb) // VVVV:PPPP[:SERIAL]: two identical scanners told apart
	for _, d := range InputDevices() {
		if name != "" && d.Name == name || usb != "" && id.Match(d.Vendor, d.Product, d.Serial) {
			return d.Path, nil
		}
	}
	return "", fmt.Errorf("input device %q %q: %w", name, usb, device.ErrNotFound)
}
