package scanner_test

import (
	"fmt"
	"time"

	"example.com/posd/scanner"
)

// A keyboard-wedge scanner read through evdev types a code as key presses
// and releases, then Enter. The repeated digit is two presses of the same
// key, each with its release: two digits, not one.
func ExampleKeyDecoder() {
	const (
		evKey    = 0x01 // EV_KEY
		keyEnter = 28   // KEY_ENTER
	)
	keyOf := map[rune]uint16{'1': 2, '2': 3, '3': 4, '4': 5, '5': 6, '6': 7, '7': 8, '8': 9, '9': 10, '0': 11}

	dec := scanner.KeyDecoder{Layout: "us", Gap: 50 * time.Millisecond}
	t := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	feed := func(code uint16, value int32) {
		k, ok := scanner.EvdevKey(evKey, code, value)
		if !ok {
			return
		}
		if c, done := dec.Feed(k, t); done {
			fmt.Println(c)
		}
		t = t.Add(time.Millisecond) // a scanner types a key a millisecond
	}
	for _, d := range "2800113" {
		feed(keyOf[d], 1) // press
		feed(keyOf[d], 0) // release
	}
	feed(keyEnter, 1)
	feed(keyEnter, 0)
	// Output: 2800113
}

// A boot keyboard report lists the keys held. The same digit twice in a
// row only counts twice with a report between that lets the key go.
func ExampleBootReports() {
	report := func(keys ...byte) []byte {
		r := make([]byte, 8) // modifiers, reserved, six key usages
		copy(r[2:], keys)
		return r
	}
	const (
		usage1     = 0x1e // '1'; '2'…'9' follow, then '0' (0x27)
		usageEnter = 0x28
	)
	reports := [][]byte{
		report(usage1 + 4), report(), // 5
		report(usage1), report(), // 1
		report(usage1), report(), // 1 again: released in between
		report(usage1), // 1, held across two reports: one press
		report(usage1),
		report(),
		report(usageEnter), report(),
	}

	var boot scanner.BootReports
	dec := scanner.KeyDecoder{Layout: "us"}
	t := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for _, r := range reports {
		for _, k := range boot.Keys(r) {
			if code, ok := dec.Feed(k, t); ok {
				fmt.Println(code)
			}
		}
		t = t.Add(time.Millisecond)
	}
	// Output: 5111
}

// A HID-POS scanner sends a long code in fragments: each report carries
// its length, the AIM symbology id and the data, and byte 62 of the body
// says whether more follow. Only the last fragment completes the code.
func ExampleHIDPOS() {
	fragment := func(data string, more bool) []byte {
		r := make([]byte, 64)
		r[0] = scanner.HIDPOSReportID
		r[1] = byte(len(data))
		copy(r[2:5], "]Q1") // AIM id: QR code
		copy(r[5:], data)
		if more {
			r[1+62] = 1
		}
		return r
	}
	var h scanner.HIDPOS
	for _, r := range [][]byte{
		fragment("2829412345", true),
		fragment("67890123\r", false), // the scanner's suffix is dropped
	} {
		code, ok := h.Feed(r)
		fmt.Printf("%q %t\n", code, ok)
	}
	// Output:
	// "" false
	// "282941234567890123" true
}
