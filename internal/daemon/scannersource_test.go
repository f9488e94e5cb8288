package daemon

import (
	"testing"

	"example.com/posd/internal/config"
	"example.com/posd/scanner"
)

func TestScannerSourceHIDBackend(t *testing.T) {
	for _, backend := range []string{"", "libusb", "hidraw"} {
		src := scannerSource(config.Scanner{Type: "hid", USB: "0c2e:0b6a", Mode: "pos", Backend: backend, Layout: "us"}, IO{}, nil)
		h, ok := src.(*scanner.HID)
		if !ok {
			t.Fatalf("%q: %T, want *scanner.HID", backend, src)
		}
		if h.Backend != backend || h.USB != "0c2e:0b6a" || h.Mode != "pos" {
			t.Errorf("%q: %+v", backend, h)
		}
	}
}
