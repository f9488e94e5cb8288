package scanner

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"posd/internal/device"
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
		dec := KeyDecoder{Layout: e.Layout, Gap: e.Gap}
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
			for _, ev := range evs {
				k, ok := EvdevKey(ev.Type, ev.Code, ev.Value)
				if !ok {
					continue
				}
				if code, done := dec.Feed(k, ev.Time); done {
					emit(Scan{Code: code, Scene: e.Scene, Source: e.label()})
				}
			}
		}
	}, e.Report, e.Backoff)
}

func (e *Evdev) label() string {
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
	if err := unix.IoctlSetInt(int(f.Fd()), eviocgrab, 1); err != nil {
		f.Close()
		return nil, fmt.Errorf("grab %s: %w", path, err)
	}
	return f, nil
}

// InputDevice is an evdev device as /sys describes it.
type InputDevice struct {
	Path    string // /dev/input/eventN
	Name    string
	Vendor  string
	Product string
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
		d := InputDevice{Path: "/dev/input/" + filepath.Base(sys), Name: read("name"), Vendor: read("id/vendor"), Product: read("id/product")}
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
	vid, pid, _ := strings.Cut(usb, ":")
	for _, d := range InputDevices() {
		if name != "" && d.Name == name || usb != "" && strings.EqualFold(d.Vendor, vid) && strings.EqualFold(d.Product, pid) {
			return d.Path, nil
		}
	}
	return "", fmt.Errorf("input device %q %q: %w", name, usb, device.ErrNotFound)
}
