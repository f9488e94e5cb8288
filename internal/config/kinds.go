package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"example.com/posd/internal/device"
	"example.com/posd/scanner"
)

// Kinds. The type of a lanes[].scanners or lanes[].displays entry names a
// kind, and each kind registers once, from an init function, with the
// checks of its keys and its label: the scanner kinds in
// internal/daemon/scanners.go, the display kinds in
// internal/daemon/displaykinds.go, beside what builds them. Validate
// refuses a type that no kind registered, so a program that loads a config
// must link those kinds in (import internal/daemon, as cmd/posd does).

// ScannerKind is what the config knows of a scanner type.
type ScannerKind struct {
	// Check returns the problems of one entry of this type, each a whole
	// message that starts with at ("lanes[0].scanners[1]") and names the
	// key. Validate itself checks what every entry has: a known type, the
	// scene, and the form of usb when it is given.
	Check func(at string, s Scanner) []string
	// Label names the device in GET /v1/devices and in the logs.
	Label func(Scanner) string
	// Alone, when set, is why the whole file may have at most one scanner
	// of this type.
	Alone string
}

// DisplayKind is what the config knows of a display type.
type DisplayKind struct {
	// Check returns the problems of one entry of this type, as
	// ScannerKind.Check; c is the whole config, for what the entry depends
	// on elsewhere (the API's listen address).
	Check func(at string, d Display, c *Config) []string
	// Label names the device in GET /v1/devices and in the logs.
	Label func(Display) string
}

var (
	scannerKinds = map[string]ScannerKind{}
	displayKinds = map[string]DisplayKind{}
)

// RegisterScanner makes name a scanner type. Call it from an init
// function; a name registered twice panics.
func RegisterScanner(name string, k ScannerKind) { register("scanner", scannerKinds, name, k) }

// RegisterDisplay makes name a display type. Call it from an init
// function; a name registered twice panics.
func RegisterDisplay(name string, k DisplayKind) { register("display", displayKinds, name, k) }

func register[K any](role string, kinds map[string]K, name string, k K) {
	if name == "" {
		panic("config: a " + role + " type without a name")
	}
	if _, dup := kinds[name]; dup {
		panic(fmt.Sprintf("config: %s type %q registered twice", role, name))
	}
	kinds[name] = k
}

// ScannerTypes lists the scanner types, sorted.
func ScannerTypes() []string { return slices.Sorted(maps.Keys(scannerKinds)) }

// DisplayTypes lists the display types, sorted.
func DisplayTypes() []string { return slices.Sorted(maps.Keys(displayKinds)) }

// Label is how the scanner is named in GET /v1/devices: its kind's label.
func (s Scanner) Label() string {
	if k, ok := scannerKinds[s.Type]; ok && k.Label != nil {
		return k.Label(s)
	}
	return s.Type
}

// Name is how the display is named in GET /v1/devices: its kind's label.
func (d Display) Name() string {
	if k, ok := displayKinds[d.Type]; ok && k.Label != nil {
		return k.Label(d)
	}
	return d.Type
}

// CheckUSB returns the problem of a usb key's value, if any: it is what
// device.ParseUSBID reads. An empty value is no problem (the key is left
// out); whether the kind needs one is the kind's own check.
func CheckUSB(at, usb string) []string {
	if usb == "" {
		return nil
	}
	if _, err := device.ParseUSBID(usb); err != nil {
		return []string{at + "." + err.Error()} // `usb "…": …`
	}
	return nil
}

// CheckListen checks an address posd listens on: host:port on loopback or
// unix:/path.
func CheckListen(addr string) error { return checkListen(addr) }

func validateScanner(at string, s Scanner) []string {
	var errs []string
	if s.Scene != scanner.SceneBarCode && s.Scene != scanner.SceneWaveCode {
		errs = append(errs, fmt.Sprintf("%s.scene %q: bar_code or wave_code", at, s.Scene))
	}
	errs = append(errs, CheckUSB(at, s.USB)...)
	k, ok := scannerKinds[s.Type]
	if !ok {
		return append(errs, fmt.Sprintf("%s.type %q: not a scanner type (%s)", at, s.Type, oneOf(ScannerTypes())))
	}
	if k.Check != nil {
		errs = append(errs, k.Check(at, s)...)
	}
	return errs
}

func validateDisplay(at string, d Display, c *Config) []string {
	k, ok := displayKinds[d.Type]
	if !ok {
		return []string{fmt.Sprintf("%s.type %q: not a display type (%s)", at, d.Type, oneOf(DisplayTypes()))}
	}
	if k.Check != nil {
		return k.Check(at, d, c)
	}
	return nil
}

// validateAlone counts the scanners of each kind that may have only one.
func validateAlone(lanes []Lane) []string {
	n := map[string]int{}
	for _, l := range lanes {
		for _, s := range l.Scanners {
			n[s.Type]++
		}
	}
	var errs []string
	for _, name := range ScannerTypes() {
		if k := scannerKinds[name]; k.Alone != "" && n[name] > 1 {
			errs = append(errs, fmt.Sprintf("lanes: %d %s scanners; %s", n[name], name, k.Alone))
		}
	}
	return errs
}

// oneOf is "a, b or c".
func oneOf(names []string) string {
	switch len(names) {
	case 0:
		return "none registered: the program must import internal/daemon, where the kinds are"
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
