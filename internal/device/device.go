// Package device opens the serial, USB printer and network ports that
// scanners, displays and printers sit on, and keeps the health of every
// device for GET /v1/devices.
package device

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
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

// FindUSBSerial returns the path of the serial port with the USB id
// "VVVV:PPPP" or "VVVV:PPPP:SERIAL".
func FindUSBSerial(id string) (string, error) {
	parts := strings.Split(id, ":")
	if len(parts) < 2 {
		return "", fmt.Errorf("usb %q: VVVV:PPPP or VVVV:PPPP:SERIAL", id)
	}
	ports, err := enumerator.GetDetailedPortsList()
	if err != nil {
		return "", fmt.Errorf("list serial ports: %w", err)
	}
	for _, p := range ports {
		if !p.IsUSB || !strings.EqualFold(p.VID, parts[0]) || !strings.EqualFold(p.PID, parts[1]) {
			continue
		}
		if len(parts) > 2 && p.SerialNumber != parts[2] {
			continue
		}
		return p.Name, nil
	}
	return "", fmt.Errorf("usb %s: %w", id, ErrNotFound)
}

// File opens a character device such as /dev/usb/lp0.
func File(path string) Opener {
	return func() (io.ReadWriteCloser, error) {
		return os.OpenFile(path, os.O_RDWR, 0)
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
	onDown  func(Health)
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
