package main

import (
	"fmt"
	"io"

	"github.com/karalabe/hid"
	"go.bug.st/serial/enumerator"

	"example.com/posd/internal/device"
	"example.com/posd/scanner"
)

// listDevices prints what could be a scanner on this box, each with the
// config stanza that uses it, so that an installer does not guess.
func listDevices(w io.Writer) int {
	listSerialPorts(w)
	listPrinters(w)
	listInputs(w)
	listHID(w)
	return 0
}

func listSerialPorts(w io.Writer) {
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
			id := device.USBID{VID: p.VID, PID: p.PID, Serial: p.SerialNumber}.String()
			fmt.Fprintf(w, "      - {type: serial, usb: %q, baud: 9600}   # follows the device across replugs\n", id)
			fmt.Fprintf(w, "      - {type: vfd, usb: %q}   # if it is a pole display (displays:)\n", id)
		}
		fmt.Fprintf(w, "      - {type: serial, port: %s, baud: 9600}\n", p.Name)
	}
	if len(ports) == 0 {
		fmt.Fprintln(w, "#   none")
	}

}

func listPrinters(w io.Writer) {
	fmt.Fprintln(w, "\n# USB printers (printer-class, usblp: the /dev/usb/lpN number changes between plugs)")
	printers := device.USBPrinters(device.Sysfs)
	for _, p := range printers {
		fmt.Fprintf(w, "#   %s  USB %s:%s serial %q %s %s\n", p.Path, p.VID, p.PID, p.Serial, p.Manufacturer, p.Product)
		id := device.USBID{VID: p.VID, PID: p.PID, Serial: p.Serial}.String()
		fmt.Fprintf(w, "      - {type: escpos, usb: %q}   # follows the printer across replugs\n", id)
	}
	if len(printers) == 0 {
		fmt.Fprintln(w, "#   none")
	}

}

func listInputs(w io.Writer) {
	fmt.Fprintln(w, "\n# Input devices (keyboard-wedge scanners; posd grabs only what is listed in its config)")
	inputs := scanner.InputDevices()
	for _, d := range inputs {
		if d.Bus != "0003" {
			fmt.Fprintf(w, "#   %s  %q  bus %s (not USB)\n", d.Path, d.Name, d.Bus)
		} else {
			fmt.Fprintf(w, "#   %s  %q  USB %s:%s serial %q\n", d.Path, d.Name, d.Vendor, d.Product, d.Serial)
			fmt.Fprintf(w, "      - {type: evdev, usb: %q, layout: us}   # follows the device across replugs\n", device.USBID{VID: d.Vendor, PID: d.Product, Serial: d.Serial}.String())
		}
		for _, l := range d.ByID {
			fmt.Fprintf(w, "      - {type: evdev, device: %s, layout: us}\n", l)
		}
		fmt.Fprintf(w, "      - {type: evdev, name: %q, layout: us}\n", d.Name)
	}
	if len(inputs) == 0 {
		fmt.Fprintln(w, "#   none")
	}

}

func listHID(w io.Writer) {
	// The kernel's view first: it knows from the report descriptor which
	// devices are HID-POS scanners, which libusb on Linux does not tell.
	fmt.Fprintln(w, "\n# USB HID devices (hid scanners: libusb takes the device from the kernel, hidraw leaves it)")
	pos := map[string]bool{}
	raws := scanner.HIDRawDevices(device.Sysfs)
	for _, d := range raws {
		id := device.USBID{VID: d.VID, PID: d.PID, Serial: d.Serial}.String()
		pos[id] = d.POS
		fmt.Fprintf(w, "#   /dev/%s  USB %s %s %s\n", d.Node, id, d.Manufacturer, d.Product)
		fmt.Fprintf(w, "      - %s\n", hidStanza(id, "hidraw", d.POS))
	}
	if len(raws) == 0 {
		fmt.Fprintln(w, "#   none through hidraw")
	}
	if !hid.Supported() {
		fmt.Fprintln(w, "#   libusb not available:", scanner.ErrNoHID)
		return
	}
	infos, err := hid.Enumerate(0, 0)
	if err != nil {
		fmt.Fprintln(w, "#   cannot list through libusb:", err)
	}
	for _, d := range infos {
		id := device.USBID{VID: fmt.Sprintf("%04x", d.VendorID), PID: fmt.Sprintf("%04x", d.ProductID), Serial: d.Serial}.String()
		fmt.Fprintf(w, "#   libusb %s interface %d  %s %s\n", id, d.Interface, d.Manufacturer, d.Product)
		fmt.Fprintf(w, "      - %s\n", hidStanza(id, "", pos[id]))
	}
	if len(infos) == 0 {
		fmt.Fprintln(w, "#   none through libusb")
	}
}

// hidStanza is the config entry for a HID scanner.
func hidStanza(id, backend string, pos bool) string {
	b := ""
	if backend != "" {
		b = "backend: " + backend + ", "
	}
	if pos {
		return fmt.Sprintf("{type: hid, %susb: %q, mode: pos}", b, id)
	}
	return fmt.Sprintf("{type: hid, %susb: %q, mode: keyboard, layout: us}", b, id)
}
