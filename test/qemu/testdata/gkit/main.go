// Command gkit is the far side of posd's USB test device kit. It runs in
// the QEMU guest on the gadget side of configfs gadgets and plays the
// device's own electronics: a scanner typing codes (boot-keyboard or
// HID-POS reports on /dev/hidgN, CR-terminated lines on /dev/ttyGSn), or a
// pole display capturing what the host writes. Only the standard library:
// it is built static for the guest.
//
//	gkit kbd DEV GAPMS CODE...   boot-keyboard reports, one key per GAPMS
//	gkit pos DEV GAPMS CODE...   HID-POS reports (report 0x02), once the host
//	                             switched the scanner to HID-POS mode
//	gkit acm DEV GAPMS CODE...   one character per GAPMS, then CR
//	gkit watch DEV               print the reports the host sends; 0xFE 0x01
//	                             switches the scanner to HID-POS mode
//	gkit capture DEV             print what the host writes, base64
//
// A CODE is a code, "@FILE" (one code per line), CODE/1 (its first half,
// no terminator; for HID-POS a first fragment that says more follows) or
// CODE/2 (its second half and the terminator). After each terminator gkit
// prints "GKIT term DEV UNIXNANO", unless it types 100 codes or more.
package main

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: gkit kbd|pos|acm DEV GAPMS CODE... | gkit watch|capture DEV")
		os.Exit(2)
	}
	cmd, dev := os.Args[1], os.Args[2]
	switch cmd {
	case "watch":
		watch(dev)
		return
	case "capture":
		capture(dev)
		return
	}
	gap, err := strconv.Atoi(os.Args[3])
	if err != nil {
		fail("gap %q: %v", os.Args[3], err)
	}
	var codes []string
	for _, a := range os.Args[4:] {
		if file, ok := strings.CutPrefix(a, "@"); ok {
			b, err := os.ReadFile(file)
			if err != nil {
				fail("%v", err)
			}
			codes = append(codes, strings.Fields(string(b))...)
			continue
		}
		codes = append(codes, a)
	}
	if cmd == "pos" {
		waitPOSMode(dev)
	}
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		fail("%v", err)
	}
	if cmd == "acm" {
		raw(f)
	}
	d := time.Duration(gap) * time.Millisecond
	n := 0
	for _, c := range codes {
		part, term := c, true
		if code, half, ok := strings.Cut(c, "/"); ok {
			part = code[:len(code)/2]
			if half == "2" {
				part = code[len(code)/2:]
			} else {
				term = false
			}
		}
		var err error
		switch cmd {
		case "kbd":
			err = typeKeys(f, part, term, d)
		case "pos":
			err = sendPOS(f, part, !term)
		case "acm":
			err = typeLine(f, part, term, d)
		default:
			fail("unknown command %s", cmd)
		}
		if err != nil {
			fail("%s: %v", dev, err)
		}
		if term {
			if len(codes) < 100 { // a burst keeps the slow serial console quiet
				fmt.Printf("GKIT term %s %d\n", filepath.Base(dev), time.Now().UnixNano())
			}
			n++
		}
		time.Sleep(d)
	}
	fmt.Printf("GKIT done %s %d\n", filepath.Base(dev), n)
}

func fail(format string, args ...any) {
	fmt.Printf("GKIT error: "+format+"\n", args...)
	os.Exit(1)
}

// typeKeys types digits as boot-keyboard reports (modifiers, reserved, six
// usages): a press, then all keys released. A write waits for the host's
// poll of the previous report, so none is overwritten.
func typeKeys(f *os.File, s string, enter bool, gap time.Duration) error {
	key := func(usage byte) error {
		if _, err := f.Write([]byte{0, 0, usage, 0, 0, 0, 0, 0}); err != nil {
			return err
		}
		_, err := f.Write(make([]byte, 8))
		return err
	}
	for i, c := range s {
		if i > 0 {
			time.Sleep(gap)
		}
		u := byte(0x27) // '0'
		if c >= '1' && c <= '9' {
			u = byte(0x1e + c - '1')
		}
		if err := key(u); err != nil {
			return err
		}
	}
	if !enter {
		return nil
	}
	time.Sleep(gap)
	return key(0x28)
}

// sendPOS sends s as one HID-POS scanned-data report: ID 0x02, then the
// length, the AIM symbology id "]C0" (Code 128), the data, and at offset
// 62 of the body a flag saying more fragments follow.
func sendPOS(f *os.File, s string, more bool) error {
	r := make([]byte, 64)
	r[0] = 0x02
	r[1] = byte(len(s))
	copy(r[2:5], "]C0")
	copy(r[5:61], s)
	if more {
		r[63] = 1
	}
	_, err := f.Write(r)
	return err
}

func typeLine(f *os.File, s string, cr bool, gap time.Duration) error {
	for i := 0; i < len(s); i++ {
		if i > 0 {
			time.Sleep(gap)
		}
		if _, err := f.Write([]byte{s[i]}); err != nil {
			return err
		}
	}
	if !cr {
		return nil
	}
	time.Sleep(gap)
	_, err := f.Write([]byte{'\r'})
	return err
}

func marker(dev string) string { return "/tmp/" + filepath.Base(dev) + ".pos" }

// waitPOSMode waits until the host has switched the scanner to HID-POS
// mode (feature report 0xFE = 1, seen by watch): a scanner still in
// keyboard mode sends no HID-POS reports.
func waitPOSMode(dev string) {
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(marker(dev)); err == nil {
			return
		}
	}
	fail("%s: the host never switched the scanner to HID-POS mode", dev)
}

// watch prints what the host sends to the gadget (SET_REPORT, with no OUT
// endpoint), reopening the node after an unplug.
func watch(dev string) {
	buf := make([]byte, 64)
	for {
		f, err := os.Open(dev)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for {
			n, err := f.Read(buf)
			if err != nil {
				break
			}
			fmt.Printf("GKIT report %s % x\n", filepath.Base(dev), buf[:n])
			if n >= 2 && buf[0] == 0xfe && buf[1] == 0x01 {
				_ = os.WriteFile(marker(dev), nil, 0o644)
			}
		}
		f.Close()
		os.Remove(marker(dev))
	}
}

// capture prints what the host writes to a serial gadget, one base64 line
// per read, reopening the node after a hangup.
func capture(dev string) {
	buf := make([]byte, 512)
	for {
		f, err := os.OpenFile(dev, os.O_RDWR, 0)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		raw(f)
		r := bufio.NewReader(f)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				fmt.Printf("GKIT-CAPTURE %s %s\n", filepath.Base(dev), base64.StdEncoding.EncodeToString(buf[:n]))
			}
			if err != nil || n == 0 {
				break
			}
		}
		f.Close()
		time.Sleep(100 * time.Millisecond)
	}
}

// raw puts a tty in raw mode: no echo, no line editing, no CR/LF mapping.
func raw(f *os.File) {
	var t syscall.Termios
	fd := f.Fd()
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TCGETS, uintptr(unsafe.Pointer(&t))); e != 0 {
		fail("TCGETS %s: %v", f.Name(), e)
	}
	t.Iflag &^= syscall.IGNBRK | syscall.BRKINT | syscall.PARMRK | syscall.ISTRIP | syscall.INLCR | syscall.IGNCR | syscall.ICRNL | syscall.IXON
	t.Oflag &^= syscall.OPOST
	t.Lflag &^= syscall.ECHO | syscall.ECHONL | syscall.ICANON | syscall.ISIG | syscall.IEXTEN
	t.Cflag &^= syscall.CSIZE | syscall.PARENB
	t.Cflag |= syscall.CS8
	t.Cc[syscall.VMIN], t.Cc[syscall.VTIME] = 1, 0
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TCSETS, uintptr(unsafe.Pointer(&t))); e != 0 {
		fail("TCSETS %s: %v", f.Name(), e)
	}
}
