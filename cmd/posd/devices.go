package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/karalabe/hid"
	"go.bug.st/serial/enumerator"

	"posd/internal/device"
	"posd/scanner"
)

// listDevices prints what could be a scanner on this box, each with the
// config stanza that uses it, so that an installer does not guess.
func listDevices(w io.Writer) int {
	fmt.Fprintln(w, "# Serial ports (serial scanners, sound-wave receivers, pole displays, printers)")
	ports, err := enumerator.GetDetailedPortsList()
	if err != nil {
		fmt.Fprintln(w, "#   cannot list:", err)
	}
	for _, p := range ports {
		fmt.Fprintf(w, "#   %s", p.Name)
		if p.IsUSB {
			fmt.Fprintf(w, "  USB %s:%s serial %q %s", p.VID, p.PID, p.SerialNumber, p.Product)
		}
		fmt.Fprintln(w)
		if p.IsUSB {
			id := strings.ToLower(p.VID + ":" + p.PID)
			if p.SerialNumber != "" {
				id += ":" + p.SerialNumber
			}
			fmt.Fprintf(w, "      - {type: serial, usb: %q, baud: 9600}   # follows the device across replugs\n", id)
		}
		fmt.Fprintf(w, "      - {type: serial, port: %s, baud: 9600}\n", p.Name)
	}
	if len(ports) == 0 {
		fmt.Fprintln(w, "#   none")
	}

	fmt.Fprintln(w, "\n# USB printers (printer-class, usblp: the /dev/usb/lpN number changes between plugs)")
	printers := device.USBPrinters(device.Sysfs)
	for _, p := range printers {
		fmt.Fprintf(w, "#   %s  USB %s:%s serial %q %s %s\n", p.Path, p.VID, p.PID, p.Serial, p.Manufacturer, p.Product)
		id := strings.ToLower(p.VID + ":" + p.PID)
		if p.Serial != "" {
			id += ":" + p.Serial
		}
		fmt.Fprintf(w, "      - {type: escpos, usb: %q}   # follows the printer across replugs\n", id)
	}
	if len(printers) == 0 {
		fmt.Fprintln(w, "#   none")
	}

	fmt.Fprintln(w, "\n# Input devices (keyboard-wedge scanners; posd grabs only what is listed in its config)")
	inputs := scanner.InputDevices()
	for _, d := range inputs {
		fmt.Fprintf(w, "#   %s  %q  USB %s:%s\n", d.Path, d.Name, d.Vendor, d.Product)
		for _, l := range d.ByID {
			fmt.Fprintf(w, "      - {type: evdev, device: %s, layout: us}\n", l)
		}
		fmt.Fprintf(w, "      - {type: evdev, name: %q, layout: us}\n", d.Name)
	}
	if len(inputs) == 0 {
		fmt.Fprintln(w, "#   none")
	}

	fmt.Fprintln(w, "\n# USB HID devices (read with libusb; the kernel's keyboard driver lets go of them)")
	if !hid.Supported() {
		fmt.Fprintln(w, "#   not available:", scanner.ErrNoHID)
		return 0
	}
	infos, err := hid.Enumerate(0, 0)
	if err != nil {
		fmt.Fprintln(w, "#   cannot list:", err)
	}
	for _, d := range infos {
		fmt.Fprintf(w, "#   %04x:%04x interface %d  %s %s  serial %q\n", d.VendorID, d.ProductID, d.Interface, d.Manufacturer, d.Product, d.Serial)
		fmt.Fprintf(w, "      - {type: hid, usb: \"%04x:%04x\", mode: keyboard, layout: us}   # mode: pos for HID-POS scanners\n", d.VendorID, d.ProductID)
	}
	if len(infos) == 0 {
		fmt.Fprintln(w, "#   none")
	}
	return 0
}
