package device

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.bug.st/serial"
	"go.bug.st/serial/enumerator"
)

// Opener opens a device's port. Each call opens anew: a device that was
// unplugged is found again.
type Opener func() (io.ReadWriteCloser, error)

// SerialOptions name a serial port by path or by USB VID:PID[:SERIAL].
type SerialOptions struct {
	Port     string
	USB      string
	Baud     int
	DataBits int
	Parity   string // none, odd, even
	StopBits int    // 1 or 2
}

// Serial returns an opener for a serial port. A port named by USB id is
// looked up on every open, so a replug to a new /dev/ttyUSBn is followed.
func Serial(o SerialOptions) Opener {
	return func() (io.ReadWriteCloser, error) {
		path := o.Port
		if o.USB != "" {
			p, err := FindUSBSerial(o.USB)
			if err != nil {
				return nil, err
			}
			path = p
		}
		mode := &serial.Mode{BaudRate: o.Baud, DataBits: o.DataBits, Parity: serial.NoParity, StopBits: serial.OneStopBit}
		if mode.BaudRate == 0 {
			mode.BaudRate = 9600
		}
		if mode.DataBits == 0 {
			mode.DataBits = 8
		}
		switch o.Parity {
		case "odd":
			mode.Parity = serial.OddParity
		case "even":
			mode.Parity = serial.EvenParity
		}
		if o.StopBits == 2 {
			mode.StopBits = serial.TwoStopBits
		}
		p, err := serial.Open(path, mode)
		if err != nil {
			return nil, fmt.Errorf("serial %s: %w", path, err)
		}
		return p, nil
	}
}

// ErrNotFound: no device matches.
var ErrNotFound = errors.New("device not found")

// USBID is a device's USB id as the config names it: "VVVV:PPPP" or
// "VVVV:PPPP:SERIAL".
type USBID struct {
	VID, PID string
	Serial   string // "": any serial number
}

// ParseUSBID reads "VVVV:PPPP" or "VVVV:PPPP:SERIAL": the one parser of
// USB ids, for the config's checks and every lookup by id.
//
// VVVV (vendor id) and PPPP (product id) are exactly four hex digits each,
// in either case: "403:6001", "0x0403:6001" or "04031:6001" are refused.
// SERIAL is the device's serial number as the kernel and libusb report it
// (sysfs "serial", evdev "uniq", what posd devices prints): everything after
// the second colon, taken as it is, compared exactly, and it may contain
// any character, colons included ("0403:6001:A9:X" is serial "A9:X").
// Without it, or empty ("0403:6001:"), any serial number matches.
func ParseUSBID(id string) (USBID, error) {
	const form = "VVVV:PPPP or VVVV:PPPP:SERIAL"
	isHex4 := func(s string) bool { // no sign, prefix or space
		if len(s) != 4 {
			return false
		}
		for i := 0; i < len(s); i++ {
			if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
		return true
	}
	parts := strings.SplitN(id, ":", 3)
	if len(parts) < 2 {
		return USBID{}, fmt.Errorf("usb %q: %s (VVVV and PPPP 4 hex digits each)", id, form)
	}
	u := USBID{VID: parts[0], PID: parts[1]}
	for _, f := range []struct{ what, v string }{{"vendor id", u.VID}, {"product id", u.PID}} {
		if !isHex4(f.v) {
			return USBID{}, fmt.Errorf("usb %q: %s %q is not 4 hex digits (%s)", id, f.what, f.v, form)
		}
	}
	if len(parts) > 2 {
		u.Serial = parts[2]
	}
	return u, nil
}

// String is the id as the config names it: the hex ids in lower case, and
// the serial number when there is one.
func (u USBID) String() string {
	id := strings.ToLower(u.VID + ":" + u.PID)
	if u.Serial != "" {
		id += ":" + u.Serial
	}
	return id
}

// Match tells whether a device with these ids is the one named (the hex
// ids in either case, the serial number exactly).
func (u USBID) Match(vid, pid, serial string) bool {
	return strings.EqualFold(vid, u.VID) && strings.EqualFold(pid, u.PID) && (u.Serial == "" || serial == u.Serial)
}

// FindUSBSerial returns the path of the serial port with the USB id
// "VVVV:PPPP" or "VVVV:PPPP:SERIAL".
func FindUSBSerial(id string) (string, error) {
	u, err := ParseUSBID(id)
	if err != nil {
		return "", err
	}
	ports, err := enumerator.GetDetailedPortsList()
	if err != nil {
		return "", fmt.Errorf("list serial ports: %w", err)
	}
	for _, p := range ports {
		if p.IsUSB && u.Match(p.VID, p.PID, p.SerialNumber) {
			return p.Name, nil
		}
	}
	return "", fmt.Errorf("usb %s: %w", id, ErrNotFound)
}

// Sysfs is where USB printers are looked up (tests use a fake tree).
const Sysfs = "/sys"

// USBPrinterInfo is a USB printer-class device (usblp) as sysfs shows it.
type USBPrinterInfo struct {
	Path                  string // /dev/usb/lpN
	VID, PID, Serial      string
	Manufacturer, Product string
}

// USBPrinters lists the usblp devices under sysfs (normally "/sys"): for
// each class/usbmisc/lp*, its device link is the USB interface, and the
// nearest directory above it with an idVendor is the USB device.
func USBPrinters(sysfs string) []USBPrinterInfo {
	ents, _ := filepath.Glob(filepath.Join(sysfs, "class", "usbmisc", "lp*"))
	var out []USBPrinterInfo
	for _, e := range ents {
		dir, err := filepath.EvalSymlinks(filepath.Join(e, "device"))
		if err != nil {
			continue
		}
		for ; len(dir) > len(sysfs); dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "idVendor")); err == nil {
				break
			}
		}
		read := func(name string) string {
			b, _ := os.ReadFile(filepath.Join(dir, name))
			return strings.TrimSpace(string(b))
		}
		if read("idVendor") == "" {
			continue
		}
		out = append(out, USBPrinterInfo{Path: "/dev/usb/" + filepath.Base(e), VID: read("idVendor"), PID: read("idProduct"),
			Serial: read("serial"), Manufacturer: read("manufacturer"), Product: read("product")})
	}
	return out
}

// FindUSBPrinter returns the /dev/usb/lpN of the USB printer-class device
// with the USB id "VVVV:PPPP" or "VVVV:PPPP:SERIAL". The number is not
// stable (usblp shares minors with hiddev): look it up on every open.
func FindUSBPrinter(sysfs, id string) (string, error) {
	u, err := ParseUSBID(id)
	if err != nil {
		return "", err
	}
	for _, p := range USBPrinters(sysfs) {
		if u.Match(p.VID, p.PID, p.Serial) {
			return p.Path, nil
		}
	}
	return "", fmt.Errorf("usb printer %s: %w", id, ErrNotFound)
}

// USBPrinter opens a printer named by USB id: a printer-class device
// (usblp) as a file, otherwise a USB serial adapter with that id (o.USB).
// Looked up on every open, so a replug to another /dev node is followed.
func USBPrinter(sysfs string, o SerialOptions) Opener {
	serial := Serial(o)
	return func() (io.ReadWriteCloser, error) {
		path, err := FindUSBPrinter(sysfs, o.USB)
		switch {
		case err == nil:
			return File(path)()
		case !errors.Is(err, ErrNotFound):
			return nil, err
		}
		return serial()
	}
}

// File opens a character device such as /dev/usb/lp0. A usblp node (or a
// link to one) also answers PrinterStatus() (byte, error): the
// printer-class status, through LPGETSTATUS.
func File(path string) Opener {
	return func() (io.ReadWriteCloser, error) {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		return wrapFile(path, f), nil
	}
}

// TCP opens a network printer (port 9100).
func TCP(addr string, timeout time.Duration) Opener {
	return func() (io.ReadWriteCloser, error) {
		return net.DialTimeout("tcp", addr, timeout)
	}
}

// State is a device's health.
type State string

const (
	Connected        State = "connected"
	Gone             State = "gone"
	PermissionDenied State = "permission_denied"
	Degraded         State = "degraded" // connected, but not able to do its job (a printer out of paper)
)

// StateOf classifies an open error.
func StateOf(err error) State {
	if err == nil {
		return Connected
	}
	if errors.Is(err, fs.ErrPermission) || strings.Contains(err.Error(), "permission denied") {
		return PermissionDenied
	}
	return Gone
}

// Health is one device as GET /v1/devices shows it.
type Health struct {
	Lane   string    `json:"lane"`
	Role   string    `json:"role"` // scanner or display
	Type   string    `json:"type"`
	Name   string    `json:"name"`
	State  State     `json:"state"`
	Detail string    `json:"detail,omitempty"`
	Since  time.Time `json:"since"`
}

// Registry holds every device's health.
type Registry struct {
	mu      sync.Mutex
	devices map[string]*Health
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{devices: map[string]*Health{}} }

// Reporter returns the function a device calls with its state.
func (r *Registry) Reporter(lane, role, typ, name string) func(State, string) {
	key := lane + "/" + role + "/" + name
	r.mu.Lock()
	r.devices[key] = &Health{Lane: lane, Role: role, Type: typ, Name: name, State: Gone, Detail: "not opened yet", Since: time.Now()}
	r.mu.Unlock()
	return func(s State, detail string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		h := r.devices[key]
		if h.State != s {
			h.Since = time.Now()
		}
		h.State, h.Detail = s, detail
	}
}

// List returns every device, sorted by lane, role and name.
func (r *Registry) List() []Health {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Health, 0, len(r.devices))
	for _, h := range r.devices {
		out = append(out, *h)
	}
	slices.SortFunc(out, func(a, b Health) int {
		return strings.Compare(a.Lane+a.Role+a.Name, b.Lane+b.Role+b.Name)
	})
	return out
}
