package daemon

import (
	"context"
	"fmt"

	"example.com/posd/internal/config"
	"example.com/posd/internal/device"
	"example.com/posd/scanner"
)

// scannerKind is one value of lanes[].scanners[].type: everything posd
// knows of it. A new kind is a reader in ./scanner and one entry in
// scannerKinds (plus its keys in config.Scanner if it needs new ones).
type scannerKind struct {
	// check returns the problems of an entry's keys (config.Load reports
	// them, with every other problem of the file); config checks scene and
	// the form of usb for every kind.
	check func(at string, s config.Scanner) []string
	// label names the device in GET /v1/devices and the logs.
	label func(config.Scanner) string
	// alone, when set, is why a file may have only one scanner of the kind.
	alone string
	// build makes the reader of an entry that passed check. It opens
	// nothing: the source opens its device when it runs.
	build func(sc config.Scanner, tio IO, report scanner.Report) scanner.Source
}

var scannerKinds = map[string]scannerKind{
	"stdin": {
		label: func(config.Scanner) string { return "stdin" },
		alone: "there is one standard input",
		build: func(sc config.Scanner, tio IO, report scanner.Report) scanner.Source {
			return &scanner.Lines{R: tio.Stdin, Name: "stdin", Scene: sc.Scene, Report: report}
		},
	},
	"serial": {
		check: func(at string, s config.Scanner) []string {
			var bad problems
			if (s.Port == "") == (s.USB == "") {
				bad.add("%s: port or usb (one of them)", at)
			}
			// 0 and "": left out, device.Serial's defaults
			if s.Baud < 0 || s.DataBits != 0 && (s.DataBits < 5 || s.DataBits > 8) {
				bad.add("%s: baud must be positive and data_bits 5-8", at)
			}
			if s.Parity != "" && s.Parity != "none" && s.Parity != "odd" && s.Parity != "even" {
				bad.add("%s.parity %q: none, odd or even", at, s.Parity)
			}
			if s.StopBits != 0 && s.StopBits != 1 && s.StopBits != 2 {
				bad.add("%s.stop_bits %d: 1 or 2", at, s.StopBits)
			}
			return bad
		},
		label: func(s config.Scanner) string { return portOrUSB(s.Port, s.USB) },
		build: func(sc config.Scanner, _ IO, report scanner.Report) scanner.Source {
			return &scanner.Serial{Name: sc.Label(), Scene: sc.Scene, Report: report,
				Open: device.Serial(device.SerialOptions{Port: sc.Port, USB: sc.USB, Baud: sc.Baud, DataBits: sc.DataBits, Parity: sc.Parity, StopBits: sc.StopBits})}
		},
	},
	"evdev": {
		check: func(at string, s config.Scanner) []string {
			var bad problems
			n := 0
			for _, v := range []string{s.Device, s.Name, s.USB} {
				if v != "" {
					n++
				}
			}
			if n != 1 {
				bad.add("%s: exactly one of device, name or usb: posd grabs only the keyboard it is told to", at)
			}
			return append(bad, checkLayout(at, s)...)
		},
		label: func(s config.Scanner) string {
			return (&scanner.Evdev{Device: s.Device, Name: s.Name, USB: s.USB}).Label()
		},
		build: func(sc config.Scanner, _ IO, report scanner.Report) scanner.Source {
			return &scanner.Evdev{Device: sc.Device, Name: sc.Name, USB: sc.USB, Layout: scanner.Layout(sc.Layout), Scene: sc.Scene, Report: report, Gap: sc.KeyGap}
		},
	},
	"hid": {
		check: func(at string, s config.Scanner) []string {
			var bad problems
			if s.USB == "" {
				bad.add("%s: usb required", at)
			}
			if s.Mode != "keyboard" && s.Mode != "pos" {
				bad.add("%s.mode %q: keyboard or pos", at, s.Mode)
			}
			if s.Backend != "" && s.Backend != "libusb" && s.Backend != "hidraw" {
				bad.add("%s.backend %q: libusb or hidraw", at, s.Backend)
			}
			return append(bad, checkLayout(at, s)...)
		},
		label: func(s config.Scanner) string { return "usb:" + s.USB },
		build: func(sc config.Scanner, _ IO, report scanner.Report) scanner.Source {
			return &scanner.HID{USB: sc.USB, Mode: sc.Mode, Backend: sc.Backend, Layout: scanner.Layout(sc.Layout), Scene: sc.Scene, Report: report, Gap: sc.KeyGap}
		},
	},
}

func init() {
	for name, k := range scannerKinds {
		config.RegisterScanner(name, config.ScannerKind{Check: k.check, Label: k.label, Alone: k.alone})
	}
}

// scannerSource builds a lane's scanner from its config, through its kind.
// A type no kind has (config.Load refuses it; a config built in code may
// not have been loaded) gives a source that fails at once: never a silent
// stdin.
func scannerSource(sc config.Scanner, tio IO, report scanner.Report) scanner.Source {
	k, ok := scannerKinds[sc.Type]
	if !ok {
		return unknownSource{typ: sc.Type, report: report}
	}
	return k.build(sc, tio, report)
}

// unknownSource is a scanner whose type no kind has.
type unknownSource struct {
	typ    string
	report scanner.Report
}

func (u unknownSource) Run(context.Context, func(scanner.Scan)) error {
	err := fmt.Errorf("%w: scanner type %q: not a scanner type (%v)", config.ErrConfig, u.typ, config.ScannerTypes())
	if u.report != nil {
		u.report(device.Gone, err.Error())
	}
	return err
}

// checkLayout: the keyboard layout of a kind that decodes key codes.
func checkLayout(at string, s config.Scanner) []string {
	if s.Layout != "us" && s.Layout != "fr" {
		return []string{fmt.Sprintf("%s.layout %q: us or fr", at, s.Layout)}
	}
	return nil
}

// portOrUSB labels a device named by a path or by USB id.
func portOrUSB(port, usb string) string {
	if port != "" {
		return port
	}
	return "usb:" + usb
}

// problems collects a kind's problems.
type problems []string

func (p *problems) add(format string, a ...any) { *p = append(*p, fmt.Sprintf(format, a...)) }
