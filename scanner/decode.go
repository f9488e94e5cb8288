package scanner

import (
	"encoding/binary"
	"time"
)

// MaxCodeLen bounds what a decoder collects: a payment code is at most 24
// digits; anything much longer is a misread or a person typing.
const MaxCodeLen = 64

// LineFramer splits a serial byte stream into codes: one per line, ending
// in CR, LF or CRLF (a CRLF is one end, and empty lines are dropped).
type LineFramer struct {
	buf  []byte
	over bool
}

// Feed consumes p and calls emit for each complete line.
func (f *LineFramer) Feed(p []byte, emit func(string)) {
	for _, c := range p {
		if c == '\r' || c == '\n' {
			if len(f.buf) > 0 && !f.over {
				emit(string(f.buf))
			}
			f.buf, f.over = f.buf[:0], false
			continue
		}
		if len(f.buf) >= MaxCodeLen {
			f.over = true // discard this line whole
			continue
		}
		f.buf = append(f.buf, c)
	}
}

// Reset drops a partial line (the device was closed mid-code).
func (f *LineFramer) Reset() { f.buf, f.over = f.buf[:0], false }

// Layout maps keys to digits. "us": digits unshifted; "fr" (AZERTY): the
// digit row needs Shift. Keypad digits are digits in both.
type Layout string

// KeyDecoder assembles a code from key presses (evdev or HID usages, once
// translated to a Key): digits until Enter, Tab or KP-Enter. A gap longer
// than Gap between keys discards the partial code: it was a person typing
// or a misread.
type KeyDecoder struct {
	Layout Layout
	Gap    time.Duration

	buf     []byte
	shift   int // shift keys held
	last    time.Time
	spoiled bool // events were lost: keys up to the next terminator are no code
}

// Key is a decoded key press or release.
type Key struct {
	Digit    byte // '0'..'9' from the digit row, 0 otherwise
	Keypad   byte // '0'..'9' from the keypad, 0 otherwise
	Shift    bool // a Shift key
	Terminal bool // Enter, KP-Enter or Tab
	Down     bool // pressed (true) or released
}

// Feed takes one key event at time t; it returns a code when a terminator
// completes one.
func (d *KeyDecoder) Feed(k Key, t time.Time) (string, bool) {
	if k.Shift {
		if k.Down {
			d.shift++
		} else if d.shift > 0 {
			d.shift--
		}
		return "", false
	}
	if !k.Down {
		return "", false
	}
	gap := d.Gap
	if gap <= 0 {
		gap = 50 * time.Millisecond
	}
	if len(d.buf) > 0 && t.Sub(d.last) > gap {
		d.buf = d.buf[:0] // stale partial code
	}
	d.last = t
	switch {
	case d.spoiled:
		// the rest of a code whose middle was lost (or a code whose start
		// was): never a code, whatever the gaps
		d.spoiled = !k.Terminal
	case k.Terminal:
		code := string(d.buf)
		d.buf = d.buf[:0]
		return code, code != ""
	case k.Keypad != 0:
		d.push(k.Keypad)
	case k.Digit != 0:
		if (d.Layout == "fr") == (d.shift > 0) {
			d.push(k.Digit)
		} else {
			d.push('?') // a symbol: the code is not valid, and will be refused
		}
	default:
		d.push('?')
	}
	return "", false
}

func (d *KeyDecoder) push(c byte) {
	if len(d.buf) < MaxCodeLen {
		d.buf = append(d.buf, c)
	}
}

// Reset drops a partial code and the shift state.
func (d *KeyDecoder) Reset() { d.buf, d.shift, d.spoiled = d.buf[:0], 0, false }

// Lost tells the decoder that key events were lost (an evdev overflow): the
// partial code is dropped, and so is everything up to the next terminator.
func (d *KeyDecoder) Lost() { d.buf, d.spoiled = d.buf[:0], true }

// evdev event types and codes (linux/input-event-codes.h).
const (
	evSyn      = 0x00
	synReport  = 0
	synDropped = 3
	evKey      = 0x01
	keyEnter   = 28
	keyTab     = 15
	keyKPEnter = 96
	keyLShift  = 42
	keyRShift  = 54
)

var evKeypad = map[uint16]byte{82: '0', 79: '1', 80: '2', 81: '3', 75: '4', 76: '5', 77: '6', 71: '7', 72: '8', 73: '9'}

// EvdevKey translates one evdev record's type, code and value. Repeats
// (value 2) and non-key events are not keys.
func EvdevKey(typ, code uint16, value int32) (Key, bool) {
	if typ != evKey || value == 2 {
		return Key{}, false
	}
	k := Key{Down: value == 1}
	switch {
	case code >= 2 && code <= 10: // KEY_1..KEY_9
		k.Digit = byte('1' + code - 2)
	case code == 11:
		k.Digit = '0'
	case code == keyEnter || code == keyKPEnter || code == keyTab:
		k.Terminal = true
	case code == keyLShift || code == keyRShift:
		k.Shift = true
	default:
		if d, ok := evKeypad[code]; ok {
			k.Keypad = d
		}
	}
	return k, true
}

// EvdevStream turns evdev records into codes, following the kernel's
// overflow protocol: when a reader's queue (64 events) overflowed, the
// kernel drops what was queued and sends SYN_DROPPED. Then the partial code
// is discarded (never emitted), events up to and including the next
// SYN_REPORT are ignored, the key state is read again (EVIOCGKEY), and keys
// up to the next terminator are no code: they are the tail of a code whose
// middle was lost, or, as EVIOCGKEY flushes the key events still queued,
// of one whose start was.
type EvdevStream struct {
	Dec KeyDecoder
	// KeyState reads the device's key bitmap (EVIOCGKEY: bit n of byte
	// n/8 is key n). Nil, or an error: no key is taken as held.
	KeyState func() ([]byte, error)

	dropping bool
	// Overflows counts the SYN_DROPPED seen: each may have cost a code.
	Overflows int
}

// Feed takes the records of one read, in order, and returns the codes they
// complete.
func (s *EvdevStream) Feed(evs []Event) []string {
	var out []string
	for i, ev := range evs {
		switch {
		case ev.Type == evSyn && ev.Code == synDropped:
			s.dropping = true
			s.Overflows++
			s.Dec.Lost()
			continue
		case s.dropping:
			if ev.Type == evSyn && ev.Code == synReport {
				s.dropping = false
				s.resync(evs[i+1:])
			}
			continue
		}
		k, ok := EvdevKey(ev.Type, ev.Code, ev.Value)
		if !ok {
			continue
		}
		if code, done := s.Dec.Feed(k, ev.Time); done {
			out = append(out, code)
		}
	}
	return out
}

// resync sets the Shift state from EVIOCGKEY. The bitmap is read after
// the whole read (rest, still to be fed) came in: a Shift key's state
// before rest is its bitmap state, unless rest has events for that key,
// in which case the first of them tells (a press: it was up).
func (s *EvdevStream) resync(rest []Event) {
	var bits []byte
	if s.KeyState != nil {
		if b, err := s.KeyState(); err == nil {
			bits = b
		}
	}
	s.Dec.shift = 0
	for _, key := range []uint16{keyLShift, keyRShift} {
		down := int(key/8) < len(bits) && bits[key/8]&(1<<(key%8)) != 0
		for _, ev := range rest {
			if ev.Type == evKey && ev.Code == key {
				down = ev.Value != 1
				break
			}
		}
		if down {
			s.Dec.shift++
		}
	}
}

// Event is one evdev record.
type Event struct {
	Time  time.Time
	Type  uint16
	Code  uint16
	Value int32
}

// EventSize is the size of struct input_event: 24 bytes where timeval is
// two 64-bit words, 16 on 32-bit ARM.
func EventSize(ptrBits int) int {
	if ptrBits == 32 {
		return 16
	}
	return 24
}

// ParseEvents decodes whole records of the given size from b (native
// little-endian) and returns them with the bytes left over.
func ParseEvents(b []byte, size int) ([]Event, []byte) {
	var out []Event
	for len(b) >= size {
		r := b[:size]
		var sec, usec int64
		if size == 24 {
			sec, usec = int64(binary.LittleEndian.Uint64(r[0:])), int64(binary.LittleEndian.Uint64(r[8:]))
		} else {
			sec, usec = int64(int32(binary.LittleEndian.Uint32(r[0:]))), int64(int32(binary.LittleEndian.Uint32(r[4:])))
		}
		out = append(out, Event{
			Time:  time.Unix(sec, usec*1000),
			Type:  binary.LittleEndian.Uint16(r[size-8:]),
			Code:  binary.LittleEndian.Uint16(r[size-6:]),
			Value: int32(binary.LittleEndian.Uint32(r[size-4:])),
		})
		b = b[size:]
	}
	return out, b
}

// HID usages of a boot keyboard.
const (
	usageEnter   = 0x28
	usageTab     = 0x2b
	usageKPEnter = 0x58
)

func usageKey(u byte) Key {
	switch {
	case u >= 0x1e && u <= 0x26:
		return Key{Digit: '1' + u - 0x1e, Down: true}
	case u == 0x27:
		return Key{Digit: '0', Down: true}
	case u >= 0x59 && u <= 0x61:
		return Key{Keypad: '1' + u - 0x59, Down: true}
	case u == 0x62:
		return Key{Keypad: '0', Down: true}
	case u == usageEnter || u == usageTab || u == usageKPEnter:
		return Key{Terminal: true, Down: true}
	}
	return Key{Down: true}
}

// BootReports turns 8-byte boot keyboard reports into key presses. A key
// is pressed when it appears in a report and was absent from the previous
// one, so "11" (press, release, press) is two ones and a key held across
// reports is one.
type BootReports struct {
	prev [6]byte
}

// Keys returns the presses in report r, Shift state included on each.
func (b *BootReports) Keys(r []byte) []Key {
	if len(r) < 8 {
		return nil
	}
	shift := r[0]&0x22 != 0 // left or right Shift
	var out []Key
	var cur [6]byte
	copy(cur[:], r[2:8])
	for _, u := range cur {
		if u == 0 || u == 1 { // none, or roll-over error
			continue
		}
		held := false
		for _, p := range b.prev {
			if p == u {
				held = true
			}
		}
		if !held {
			k := usageKey(u)
			out = append(out, k)
		}
	}
	b.prev = cur
	if shift && len(out) > 0 {
		// Shift is carried as state: wrap the presses in a press and
		// release of Shift for the decoder.
		out = append(append([]Key{{Shift: true, Down: true}}, out...), Key{Shift: true})
	}
	return out
}

// HIDPOS assembles codes from HID-POS (usage page 0x8C) input reports:
// report ID 2; then the data length, three bytes of AIM symbology id, the
// data; a non-zero byte at offset 62 of the report body means more
// fragments follow.
type HIDPOS struct {
	buf []byte
}

// Report ID and layout of a HID-POS barcode report.
const (
	HIDPOSReportID = 0x02
	hidposMore     = 62
)

// Feed takes one report (report ID first) and returns a code when the last
// fragment arrives.
func (h *HIDPOS) Feed(r []byte) (string, bool) {
	if len(r) < 2 || r[0] != HIDPOSReportID {
		return "", false
	}
	body := r[1:]
	n := int(body[0])
	data := body[min(4, len(body)):]
	if n > len(data) {
		n = len(data)
	}
	if len(h.buf)+n <= MaxCodeLen {
		h.buf = append(h.buf, data[:n]...)
	}
	if len(body) > hidposMore && body[hidposMore] != 0 {
		return "", false
	}
	code := string(h.buf)
	h.buf = h.buf[:0]
	for len(code) > 0 && (code[len(code)-1] == '\r' || code[len(code)-1] == '\n') {
		code = code[:len(code)-1]
	}
	return code, code != ""
}
