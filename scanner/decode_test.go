package scanner

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/device"
)

var update = flag.Bool("update", false, "rewrite the byte streams under testdata/")

func TestLineFramer(t *testing.T) {
	cases := []struct {
		name   string
		chunks []string
		want   []string
	}{
		{"CR", []string{"123\r456\r"}, []string{"123", "456"}},
		{"LF", []string{"123\n456\n"}, []string{"123", "456"}},
		{"CRLF is one end", []string{"123\r\n456\r\n"}, []string{"123", "456"}},
		{"split across reads", []string{"12", "3\r", "\n45", "6\n"}, []string{"123", "456"}},
		{"empty lines dropped", []string{"\r\n\r\n789\r\n"}, []string{"789"}},
		{"no terminator yet", []string{"123"}, nil},
		{"over-long line discarded whole", []string{strings.Repeat("9", 70) + "\r123\r"}, []string{"123"}},
	}
	for _, c := range cases {
		var f LineFramer
		var got []string
		for _, ch := range c.chunks {
			f.Feed([]byte(ch), func(s string) { got = append(got, s) })
		}
		assert.Equal(t, c.want, got, c.name)
	}
}

// evdev records for typing code (press and release of each key) on the
// given layout, events step apart; size 24 or 16.
func typeEvdev(code string, layout Layout, start time.Time, step time.Duration, size int, term uint16) ([]byte, time.Time) {
	var b bytes.Buffer
	t := start
	rec := func(code uint16, value int32) {
		r := make([]byte, size)
		if size == 24 {
			binary.LittleEndian.PutUint64(r[0:], uint64(t.Unix()))
			binary.LittleEndian.PutUint64(r[8:], uint64(t.Nanosecond()/1000))
		} else {
			binary.LittleEndian.PutUint32(r[0:], uint32(t.Unix()))
			binary.LittleEndian.PutUint32(r[4:], uint32(t.Nanosecond()/1000))
		}
		binary.LittleEndian.PutUint16(r[size-8:], evKey)
		binary.LittleEndian.PutUint16(r[size-6:], code)
		binary.LittleEndian.PutUint32(r[size-4:], uint32(value))
		b.Write(r)
		// a SYN_REPORT after each key event, as the kernel sends
		syn := make([]byte, size)
		copy(syn, r[:size-8])
		b.Write(syn)
		t = t.Add(step)
	}
	for _, c := range code {
		k := uint16(11)
		if c != '0' {
			k = uint16(c-'1') + 2
		}
		if layout == "fr" {
			rec(keyLShift, 1)
		}
		rec(k, 1)
		rec(k, 0)
		if layout == "fr" {
			rec(keyLShift, 0)
		}
	}
	rec(term, 1)
	rec(term, 0)
	return b.Bytes(), t
}

func decodeEvdev(stream []byte, size int, layout Layout) []string {
	dec := KeyDecoder{Layout: layout}
	evs, _ := ParseEvents(stream, size)
	var out []string
	for _, ev := range evs {
		if k, ok := EvdevKey(ev.Type, ev.Code, ev.Value); ok {
			if code, done := dec.Feed(k, ev.Time); done {
				out = append(out, code)
			}
		}
	}
	return out
}

// evRecord is one evdev record of the given size.
func evRecord(at time.Time, typ, code uint16, value int32, size int) []byte {
	r := make([]byte, size)
	if size == 24 {
		binary.LittleEndian.PutUint64(r[0:], uint64(at.Unix()))
		binary.LittleEndian.PutUint64(r[8:], uint64(at.Nanosecond()/1000))
	} else {
		binary.LittleEndian.PutUint32(r[0:], uint32(at.Unix()))
		binary.LittleEndian.PutUint32(r[4:], uint32(at.Nanosecond()/1000))
	}
	binary.LittleEndian.PutUint16(r[size-8:], typ)
	binary.LittleEndian.PutUint16(r[size-6:], code)
	binary.LittleEndian.PutUint32(r[size-4:], uint32(value))
	return r
}

// overflowEvdev is what a reader gets when its queue overflows while code a
// is typed: records [0, from) of a, then what the kernel leaves queued (a
// SYN_DROPPED, the newest event, record drop, and what follows it), then
// code b after a pause. Both are typed at 1 ms per event.
func overflowEvdev(a, b string, layout Layout, t0 time.Time, from, drop int) []byte {
	const size = 24
	sa, end := typeEvdev(a, layout, t0, time.Millisecond, size, keyEnter)
	sb, _ := typeEvdev(b, layout, end.Add(300*time.Millisecond), time.Millisecond, size, keyEnter)
	newest, _ := ParseEvents(sa[drop*size:], size)
	var out bytes.Buffer
	out.Write(sa[:from*size])
	out.Write(evRecord(newest[0].Time, evSyn, synDropped, 0, size))
	out.Write(sa[drop*size:])
	out.Write(sb)
	return out.Bytes()
}

func TestEvdev(t *testing.T) {
	t0 := time.Unix(1764102600, 0)
	for _, size := range []int{24, 16} {
		for _, layout := range []Layout{"us", "fr"} {
			s, _ := typeEvdev("282941234567890123", layout, t0, time.Millisecond, size, keyEnter)
			assert.Equal(t, []string{"282941234567890123"}, decodeEvdev(s, size, layout), "size %d layout %s", size, layout)
		}
		s, _ := typeEvdev("1100", "us", t0, time.Millisecond, size, keyKPEnter)
		assert.Equal(t, []string{"1100"}, decodeEvdev(s, size, "us"), "repeated digits, KP-Enter")
	}
	us, _ := typeEvdev("123", "us", t0, time.Millisecond, 24, keyTab)
	assert.Equal(t, []string{"???"}, decodeEvdev(us, 24, "fr"), "an AZERTY scanner read as US gives symbols, which the router refuses")

	// A person typing slowly: the partial code is dropped at the gap.
	slow, t1 := typeEvdev("12", "us", t0, 100*time.Millisecond, 24, keyEnter)
	fast, _ := typeEvdev("345", "us", t1, time.Millisecond, 24, keyEnter)
	assert.Equal(t, []string{"345"}, decodeEvdev(append(slow[:len(slow)-4*24], fast...), 24, "us"))

	// Key repeats and other event types are ignored; keypad digits count.
	_, ok := EvdevKey(evKey, 2, 2)
	assert.False(t, ok, "auto-repeat")
	_, ok = EvdevKey(0x04, 4, 1)
	assert.False(t, ok, "MSC_SCAN")
	k, _ := EvdevKey(evKey, 82, 1)
	assert.Equal(t, byte('0'), k.Keypad)
	evs, rest := ParseEvents(make([]byte, 24*2+5), 24)
	assert.Len(t, evs, 2)
	assert.Len(t, rest, 5, "a partial record waits for the next read")
}

// An overflow of the kernel's evdev queue (SYN_DROPPED) in the middle of a
// code: neither half of it is ever a code; the next whole code is.
func TestEvdevOverflow(t *testing.T) {
	t0 := time.Unix(1764102600, 0)
	const a, b = "282941234567890123", "134567890123456711"
	var held [96]byte // the fake EVIOCGKEY bitmap
	calls := 0
	keyState := func() ([]byte, error) { calls++; return held[:], nil }
	decode := func(batches ...[]byte) []string {
		st := EvdevStream{Dec: KeyDecoder{Layout: "us"}, KeyState: keyState}
		var got []string
		for _, batch := range batches {
			evs, rest := ParseEvents(batch, 24)
			require.Empty(t, rest)
			got = append(got, st.Feed(evs)...)
		}
		return got
	}

	// us: 4 records per digit (press, SYN, release, SYN). The reader had
	// "282941" (24 records); the kernel dropped digits 6 to 9 and kept
	// the press of digit 10, then queued the rest of the code.
	s := overflowEvdev(a, b, "us", t0, 24, 40)
	assert.Equal(t, []string{"28294167890123", b}, decodeEvdev(s, 24, "us"), "read on, the halves splice (what the overflow protocol prevents)")
	assert.Equal(t, []string{b}, decode(s), "one read")
	assert.Equal(t, 1, calls, "the key state is read again once")
	for _, cut := range []int{24, 25, 42, 100} { // the same across reads
		assert.Equal(t, []string{b}, decode(s[:cut*24], s[cut*24:]), "cut at %d", cut)
	}

	// A pause (longer than the gap) after the overflow does not make the
	// rest of the code a code: its start may be what the kernel dropped.
	late := overflowEvdev(a, b, "us", t0, 24, 40)
	evs, _ := ParseEvents(late, 24)
	for i := 42; i < len(evs); i++ {
		evs[i].Time = evs[i].Time.Add(time.Second)
	}
	st := EvdevStream{Dec: KeyDecoder{Layout: "us"}, KeyState: keyState}
	assert.Equal(t, []string{b}, st.Feed(evs))

	// fr (AZERTY): digits come with Shift. The overflow keeps a Shift
	// press as the newest event; EVIOCGKEY is read after the whole read
	// came in, so it tells the state at the end of the read, and Shift
	// events still to be fed are not counted twice.
	fr := overflowEvdev(a, b, "fr", t0, 36, 48) // 8 records per digit: record 48 is digit 6's Shift press
	evs, _ = ParseEvents(fr, 24)
	require.Equal(t, uint16(keyLShift), evs[37].Code) // after the 36 read and the SYN_DROPPED
	frDecode := func(batches ...[]Event) []string {
		st := EvdevStream{Dec: KeyDecoder{Layout: "fr"}, KeyState: keyState}
		var got []string
		for _, b := range batches {
			got = append(got, st.Feed(b)...)
		}
		return got
	}
	held = [96]byte{}
	assert.Equal(t, []string{b}, frDecode(evs), "one read: nothing held at its end")
	held[keyLShift/8] |= 1 << (keyLShift % 8)
	assert.Equal(t, []string{b}, frDecode(evs[:39], evs[39:]), "read up to the SYN_REPORT: Shift held")

	sa, end := typeEvdev(a, "us", t0, time.Millisecond, 24, keyEnter)
	sb, _ := typeEvdev(b, "us", end.Add(300*time.Millisecond), time.Millisecond, 24, keyEnter)

	// us, and a Shift release lost in the overflow: without EVIOCGKEY,
	// Shift would stay held and every digit after it be a symbol.
	var lost bytes.Buffer
	lost.Write(sa[:24*24])
	lost.Write(evRecord(t0.Add(24*time.Millisecond), evKey, keyLShift, 1, 24))
	lost.Write(evRecord(end, evSyn, synDropped, 0, 24))
	lost.Write(sa[40*24:])
	lost.Write(sb)
	held = [96]byte{}
	assert.Equal(t, []string{b}, decode(lost.Bytes()))

	// us, and the read ends with Shift held (a stray Shift from the next
	// scan): Shift pressed in the read is not counted twice.
	var stray bytes.Buffer
	stray.Write(sa[:24*24])
	stray.Write(evRecord(end, evSyn, synDropped, 0, 24))
	stray.Write(sa[40*24:])
	stray.Write(evRecord(end.Add(100*time.Millisecond), evKey, keyLShift, 1, 24))
	first := stray.Len()
	stray.Write(evRecord(end.Add(101*time.Millisecond), evKey, keyLShift, 0, 24))
	stray.Write(sb)
	held = [96]byte{}
	held[keyLShift/8] |= 1 << (keyLShift % 8)
	assert.Equal(t, []string{b}, decode(stray.Bytes()[:first], stray.Bytes()[first:]))

	_, err := evdevKeys(strings.NewReader(""))
	assert.Error(t, err, "not a device")
	null, err := os.Open(os.DevNull)
	require.NoError(t, err)
	defer null.Close()
	_, err = evdevKeys(null)
	assert.Error(t, err, "not an evdev device: ENOTTY")

	// EVIOCGKEY failing (the device went away): no key taken as held.
	st = EvdevStream{Dec: KeyDecoder{Layout: "us"}, KeyState: func() ([]byte, error) { return nil, errors.New("gone") }}
	evs, _ = ParseEvents(s, 24)
	assert.Equal(t, []string{b}, st.Feed(evs))
}

func bootReport(mod byte, keys ...byte) []byte {
	r := make([]byte, 8)
	r[0] = mod
	copy(r[2:], keys)
	return r
}

func TestBootReports(t *testing.T) {
	var b BootReports
	dec := KeyDecoder{Layout: "us"}
	now := time.Now()
	var got []string
	feed := func(r []byte) {
		for _, k := range b.Keys(r) {
			if code, ok := dec.Feed(k, now); ok {
				got = append(got, code)
			}
		}
		now = now.Add(time.Millisecond)
	}
	// "11": press, release, press again; a held key across two reports is
	// one press; two keys in one report (rollover) are both pressed.
	feed(bootReport(0, 0x1e))
	feed(bootReport(0, 0x1e))
	feed(bootReport(0))
	feed(bootReport(0, 0x1e))
	feed(bootReport(0, 0x1e, 0x1f))
	feed(bootReport(0, 0x1f))
	feed(bootReport(0, 0x62)) // keypad 0
	feed(bootReport(0))
	feed(bootReport(0, usageEnter))
	feed(bootReport(0))
	assert.Equal(t, []string{"1120"}, got)

	// AZERTY: digits come with Shift.
	var fr BootReports
	frDec := KeyDecoder{Layout: "fr"}
	var frCode string
	for _, r := range [][]byte{bootReport(0x02, 0x1f), bootReport(0), bootReport(0x20, 0x27), bootReport(0), bootReport(0, usageKPEnter)} {
		for _, k := range fr.Keys(r) {
			if code, ok := frDec.Feed(k, now); ok {
				frCode = code
			}
		}
	}
	assert.Equal(t, "20", frCode)
	assert.Nil(t, b.Keys([]byte{1, 2, 3}), "short reports are ignored")
}

func hidposReport(data string, more bool) []byte {
	r := make([]byte, 64)
	r[0] = HIDPOSReportID
	r[1] = byte(len(data))
	copy(r[2:5], "]E0")
	copy(r[5:], data)
	if more {
		r[1+hidposMore] = 1
	}
	return r
}

func TestHIDPOS(t *testing.T) {
	var h HIDPOS
	code, ok := h.Feed(hidposReport("282941234567890123\r", false))
	assert.True(t, ok)
	assert.Equal(t, "282941234567890123", code)
	_, ok = h.Feed(hidposReport("2829412345", true))
	assert.False(t, ok, "more fragments follow")
	code, ok = h.Feed(hidposReport("67890123", false))
	assert.True(t, ok)
	assert.Equal(t, "282941234567890123", code, "fragments joined")
	_, ok = h.Feed([]byte{0x01, 5, 'a'})
	assert.False(t, ok, "other report ids are ignored")
	r := hidposReport("99", false)
	r[1] = 200 // a length past the report
	_, _ = h.Feed(r)
}

// Streams under testdata/ in each device's own format (synthesized with
// the helpers above; -update rewrites them), decoded back.
func TestStreams(t *testing.T) {
	t0 := time.Unix(1764102600, 0)
	ev, _ := typeEvdev("282941234567890123", "us", t0, 6*time.Millisecond, 24, keyEnter)
	ev2, _ := typeEvdev("134567890123456711", "fr", t0.Add(time.Second), 6*time.Millisecond, 24, keyKPEnter)
	var boot bytes.Buffer
	for _, c := range "282941234567890123" {
		u := byte(0x27)
		if c != '0' {
			u = byte(0x1e + c - '1')
		}
		boot.Write(bootReport(0, u))
		boot.Write(bootReport(0))
	}
	boot.Write(bootReport(0, usageEnter))
	boot.Write(bootReport(0))
	streams := map[string][]byte{
		"evdev-us-then-fr-24byte.bin": append(ev, ev2...),
		"hid-boot-reports.bin":        boot.Bytes(),
		"hidpos-fragments.bin":        append(hidposReport("2829412345", true), hidposReport("67890123\r", false)...),
		"serial-crlf.bin":             []byte("282941234567890123\r\n134567890123456711\r\n\r\n"),
		// the reader's queue overflowed in the middle of the first code
		"evdev-syn-dropped-24byte.bin": overflowEvdev("282941234567890123", "134567890123456711", "us", t0, 24, 40),
	}
	for name, b := range streams {
		path := filepath.Join("testdata", name)
		if *update {
			require.NoError(t, os.WriteFile(path, b, 0o644))
		}
		got, err := os.ReadFile(path)
		require.NoError(t, err, "go test ./scanner -update writes it")
		require.Equal(t, b, got, "%s changed (go test ./scanner -update if intended)", name)
	}
	both := []string{"282941234567890123", "134567890123456711"}
	evs, _ := ParseEvents(streams["evdev-us-then-fr-24byte.bin"], 24)
	dec := KeyDecoder{Layout: "us"}
	var got []string
	for _, e := range evs {
		k, ok := EvdevKey(e.Type, e.Code, e.Value)
		if !ok {
			continue
		}
		if e.Time.After(t0.Add(900 * time.Millisecond)) {
			dec.Layout = "fr"
		}
		if c, done := dec.Feed(k, e.Time); done {
			got = append(got, c)
		}
	}
	assert.Equal(t, both, got)

	evs, _ = ParseEvents(streams["evdev-syn-dropped-24byte.bin"], 24)
	resyncs := 0
	st := EvdevStream{Dec: KeyDecoder{Layout: "us"}, KeyState: func() ([]byte, error) { resyncs++; return make([]byte, 96), nil }}
	assert.Equal(t, both[1:], st.Feed(evs), "the half code never emitted, the next whole code is")
	assert.Equal(t, 1, resyncs)

	var f LineFramer
	got = nil
	f.Feed(streams["serial-crlf.bin"], func(s string) { got = append(got, s) })
	assert.Equal(t, both, got)

	var h HIDPOS
	r := streams["hidpos-fragments.bin"]
	h.Feed(r[:64])
	code, ok := h.Feed(r[64:])
	assert.True(t, ok)
	assert.Equal(t, both[0], code)
}

// 10,000 scans at 1 ms per key event through the evdev and boot-report
// decoders, and 10,000 lines through the serial reader loop: not one digit
// lost or doubled.
func TestTenThousandScans(t *testing.T) {
	const n = 10_000
	codes := make([]string, n)
	for i := range codes {
		// repeated digits on purpose: they are what diffing gets wrong
		codes[i] = fmt.Sprintf("28%08d%08d", i*11, (n-i)*101)
	}
	t0 := time.Unix(1764102600, 0)
	var ev bytes.Buffer
	at := t0
	for _, c := range codes {
		var b []byte
		b, at = typeEvdev(c, "us", at, time.Millisecond, 24, keyEnter)
		ev.Write(b)
	}
	assert.Equal(t, codes, decodeEvdev(ev.Bytes(), 24, "us"), "evdev")

	var boot BootReports
	dec := KeyDecoder{Layout: "us"}
	var got []string
	now := t0
	for _, c := range codes {
		for _, d := range c + "\n" {
			u := byte(usageEnter)
			switch {
			case d == '0':
				u = 0x27
			case d >= '1' && d <= '9':
				u = byte(0x1e + d - '1')
			}
			for _, r := range [][]byte{bootReport(0, u), bootReport(0)} {
				for _, k := range boot.Keys(r) {
					if code, ok := dec.Feed(k, now); ok {
						got = append(got, code)
					}
				}
				now = now.Add(time.Millisecond)
			}
		}
	}
	assert.Equal(t, codes, got, "boot reports")

	pr, pw := io.Pipe()
	got = nil
	s := &Serial{Open: func() (io.ReadWriteCloser, error) { return rwc{pr}, nil }, Name: "pipe"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- s.Run(ctx, func(sc Scan) {
			got = append(got, sc.Code)
			if len(got) == n {
				cancel()
			}
		})
	}()
	go func() {
		for _, c := range codes {
			_, _ = pw.Write([]byte(c + "\r\n"))
		}
	}()
	select {
	case err := <-done:
		assert.True(t, errors.Is(err, context.Canceled))
	case <-time.After(30 * time.Second):
		t.Fatal("serial reader loop stalled")
	}
	assert.Equal(t, codes, got, "serial")
}

type rwc struct{ io.ReadCloser }

func (rwc) Write(p []byte) (int, error) { return len(p), nil }

func TestSuperviseFindsTheDeviceAgain(t *testing.T) {
	opens := 0
	var states []device.State
	ctx, cancel := context.WithCancel(context.Background())
	err := supervise(ctx, func() (io.ReadCloser, error) {
		opens++
		switch opens {
		case 1:
			return nil, fmt.Errorf("open /dev/ttyUSB0: %w", os.ErrPermission)
		case 2:
			return io.NopCloser(strings.NewReader("")), nil // read ends: unplugged
		}
		cancel()
		return nil, os.ErrNotExist
	}, func(ctx context.Context, r io.Reader) error {
		_, err := io.ReadAll(r)
		if err == nil {
			err = io.EOF
		}
		return err
	}, func(s device.State, _ string) { states = append(states, s) }, Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond})
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 3, opens)
	assert.Equal(t, []device.State{device.PermissionDenied, device.Connected, device.Gone}, states)
}

func FuzzDecoders(f *testing.F) {
	s, _ := typeEvdev("282941234567890123", "us", time.Unix(0, 0), time.Millisecond, 24, keyEnter)
	f.Add(s)
	f.Add(overflowEvdev("282941234567890123", "134567890123456711", "us", time.Unix(0, 0), 24, 40))
	f.Add(hidposReport("123", true))
	f.Add([]byte("123\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var lf LineFramer
		lf.Feed(b, func(c string) {
			if len(c) > MaxCodeLen || strings.ContainsAny(c, "\r\n") {
				t.Fatalf("line %q", c)
			}
		})
		for _, size := range []int{16, 24} {
			evs, rest := ParseEvents(b, size)
			if len(evs)*size+len(rest) != len(b) {
				t.Fatal("bytes lost")
			}
			dec := KeyDecoder{}
			for _, e := range evs {
				if k, ok := EvdevKey(e.Type, e.Code, e.Value); ok {
					if c, done := dec.Feed(k, e.Time); done && len(c) > MaxCodeLen {
						t.Fatal("code too long")
					}
				}
			}
			st := EvdevStream{KeyState: func() ([]byte, error) { return b[:min(len(b), 96)], nil }}
			for _, c := range st.Feed(evs) {
				if len(c) > MaxCodeLen {
					t.Fatal("code too long")
				}
			}
		}
		var br BootReports
		for i := 0; i+8 <= len(b); i += 8 {
			br.Keys(b[i : i+8])
		}
		var h HIDPOS
		for i := 0; i < len(b); i += 64 {
			if c, ok := h.Feed(b[i:min(len(b), i+64)]); ok && len(c) > MaxCodeLen {
				t.Fatal("code too long")
			}
		}
	})
}
