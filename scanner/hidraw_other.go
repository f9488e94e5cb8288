//go:build !linux

package scanner

import "io"

// hidrawOS: this OS has hidraw.
const hidrawOS = false

func (h *HID) openHIDRaw() (io.ReadCloser, error) { return nil, ErrNoHIDRaw }

// HIDRawInfo is a USB HID device's hidraw node (Linux only).
type HIDRawInfo struct {
	Node                  string
	VID, PID, Serial      string
	Manufacturer, Product string
	POS                   bool
}

// HIDRawDevices lists nothing: hidraw is Linux's.
func HIDRawDevices(string) []HIDRawInfo { return nil }
