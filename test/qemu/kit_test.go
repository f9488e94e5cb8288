package qemu

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"example.com/posd/display"
	"example.com/posd/test/harness"
)

// The device kit: every kind of scanner and display a store buys, made in
// the QEMU guest as configfs USB gadgets on dummy_hcd (one virtual
// controller each, so each can be unplugged alone) with real vendor ids,
// and read by posd through the real host drivers: two HID-POS scanners
// (usbhid; one read through libusb, one through hidraw), a keyboard-wedge
// scanner (usbhid → evdev), two identical CDC-ACM scanners told apart by
// serial number and a CDC-ACM sound-wave receiver (cdc_acm), and a CDC-ACM
// pole display. The gadget side of each is driven by gkit
// (testdata/gkit), which types codes with a set pause per character and
// captures what the display is sent. posd runs as an unprivileged user, so
// device permissions matter as on a box: after every plug the "udev" of
// the guest (a chown) comes two seconds late, and posd must retry.
//
// The test measures digits lost or doubled at 1 ms per character through
// each driver (POSD_KIT_CODES codes each, default 1000) with `posd scan`,
// then pays through each device, unplugs them all with half a code typed,
// plugs them back in another order (new /dev nodes) and pays again.

var kitModules = []string{"usb-common", "usbcore", "configfs", "udc-core", "libcomposite", "dummy_hcd",
	"usb_f_hid", "u_serial", "usb_f_acm", "hid", "usbhid", "hid-generic", "evdev", "cdc-acm"}

// kitGadget is one device of the kit.
type kitGadget struct {
	name, vid, pid, serial, maker, product string
	fn                                     string // hidpos, kbd or acm
	node                                   string // the gadget side: hidgN or ttyGSn
	lane                                   string // the lane whose scanner it is ("" for the display)
	stanza                                 string // posd's config for it
}

// The ids: Honeywell 0c2e (0b61 is the Voyager 1250g in keyboard mode,
// 0b6a the id given here to its HID-POS interface), Newland 1eab:1d06 (a
// scanner in "USB COM" mode), STMicroelectronics' virtual COM port
// 0483:5740 (the firmware of many sound-wave receivers) and Nuvoton's
// 0416:5011 (USB pole displays built on its virtual COM port).
var kit = []kitGadget{
	{"hpos1", "0c2e", "0b6a", "HPOS0001", "Honeywell", "Xenon 1900 HID POS", "hidpos", "hidg0", "HPOS", `{type: hid, usb: "0c2e:0b6a:HPOS0001", mode: pos}`},
	{"hpos2", "0c2e", "0b6a", "HPOS0002", "Honeywell", "Xenon 1900 HID POS", "hidpos", "hidg1", "HRAW", `{type: hid, backend: hidraw, usb: "0c2e:0b6a:HPOS0002", mode: pos}`},
	{"kbd", "0c2e", "0b61", "14052B0123", "Honeywell", "Voyager 1250g", "kbd", "hidg2", "KBD", `{type: evdev, usb: "0c2e:0b61:14052B0123", layout: us, key_gap: 60s}`},
	{"acma", "1eab", "1d06", "NLS0001", "Newland", "NLS-HR22", "acm", "ttyGS0", "ACMA", `{type: serial, usb: "1eab:1d06:NLS0001"}`},
	{"acmb", "1eab", "1d06", "NLS0002", "Newland", "NLS-HR22", "acm", "ttyGS1", "ACMB", `{type: serial, usb: "1eab:1d06:NLS0002"}`},
	{"wave", "0483", "5740", "WAVE0001", "STMicroelectronics", "Sound Wave Receiver", "acm", "ttyGS2", "WAVE", `{type: serial, usb: "0483:5740:WAVE0001", scene: wave_code}`},
	{"pole", "0416", "5011", "POLE0001", "Nuvoton", "USB VFD 2x20", "acm", "ttyGS3", "", `{type: vfd, usb: "0416:5011:POLE0001", language: en}`},
}

func (g kitGadget) kind() string { // gkit's command
	return map[string]string{"hidpos": "pos", "kbd": "kbd", "acm": "acm"}[g.fn]
}

// HID report descriptors. HID-POS: usage page 0x8C (bar code scanner),
// input report 0x02 of 63 bytes (length, AIM id, data, more-follows flag)
// and a vendor feature report 0xFE of one byte (1: HID-POS mode).
var (
	hidPOSDescriptor = []byte{0x05, 0x8c, 0x09, 0x02, 0xa1, 0x01,
		0x85, 0x02, 0x09, 0x12, 0xa1, 0x02, 0x15, 0x00, 0x26, 0xff, 0x00, 0x75, 0x08, 0x95, 0x3f, 0x09, 0xfe, 0x81, 0x02, 0xc0,
		0x06, 0x00, 0xff, 0x85, 0xfe, 0x09, 0x01, 0x95, 0x01, 0xb1, 0x02,
		0xc0}
	bootKeyboardDescriptor = []byte{0x05, 0x01, 0x09, 0x06, 0xa1, 0x01, 0x05, 0x07, 0x19, 0xe0, 0x29, 0xe7, 0x15, 0x00,
		0x25, 0x01, 0x75, 0x01, 0x95, 0x08, 0x81, 0x02, 0x95, 0x01, 0x75, 0x08, 0x81, 0x03, 0x95, 0x05, 0x75, 0x01,
		0x05, 0x08, 0x19, 0x01, 0x29, 0x05, 0x91, 0x02, 0x95, 0x01, 0x75, 0x03, 0x91, 0x03, 0x95, 0x06, 0x75, 0x08,
		0x15, 0x00, 0x25, 0x65, 0x05, 0x07, 0x19, 0x00, 0x29, 0x65, 0x81, 0x00, 0xc0}
)

const kitInit = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
stty -echo # the test's commands carry whole payment codes: keep them off the console log
for m in %[1]s; do
  p=""; [ $m = dummy_hcd ] && p="num=%[2]d"
  insmod /lib/modules/$m.ko $p || echo "insmod $m failed"
done
mount -t configfs none /sys/kernel/config
ip link set lo up
mkdir -p /var/lib/posd && chown posd:posd /var/lib/posd
K=/sys/kernel/config/usb_gadget
%[3]s
# udev, for this guest: the box's rules give posd its devices
grant() { chown posd:posd /dev/ttyACM* /dev/input/event* /dev/hidraw* /dev/bus/usb/*/* 2>/dev/null; }
showacm() { for d in /sys/class/tty/ttyACM*; do echo "ACM $(basename $d) serial=$(cat $d/device/../serial)"; done; }
nodes() { echo "NODES acm=$(ls /dev/ttyACM* 2>/dev/null | wc -l) hidraw=$(ls /dev/hidraw* 2>/dev/null | wc -l) event=$(ls /dev/input/event* 2>/dev/null | wc -l)"; }
i=0
while [ $i -lt 150 ]; do
  [ "$(ls /dev/ttyACM* 2>/dev/null | wc -l)" -ge 4 ] && [ "$(ls /dev/hidraw* 2>/dev/null | wc -l)" -ge 3 ] && break
  sleep 0.1; i=$((i+1))
done
nodes; showacm
grant
watch() { /gkit watch /dev/$1 & echo $! > /tmp/watch-$1.pid; }
watch hidg0; watch hidg1
/gkit capture /dev/ttyGS3 &
echo POSD-GUEST-READY
while read -r cmd a b c; do
  case "$cmd" in
  devlist) echo DEVLIST-BEGIN; su -s /bin/sh posd -c '/posd devices' 2>&1; echo DEVLIST-END ;;
  sh) eval "$a $b $c" ;;
  scan) su -s /bin/sh posd -c '/posd scan -config /config.yaml >/tmp/scan.out 2>&1' &
    conn() { cat /tmp/scan.out 2>/dev/null | grep -c state=connected; }
    i=0; while [ $i -lt 300 ] && [ "$(conn)" -lt $a ]; do sleep 0.1; i=$((i+1)); done
    echo "SCAN-CONNECTED $(conn)" ;;
  burst) pids=""
    for L in $b $c; do case $L in
%[4]s    esac; done
    for p in $pids; do wait $p; done ;;
  scansum) for L in %[5]s; do
      echo "SCANSUM $L lines=$(grep -c "^scan lane=$L " /tmp/scan.out) refused=$(grep -c "^refused lane=$L " /tmp/scan.out) md5=$(grep "^scan lane=$L " /tmp/scan.out | sed -e 's/.* fp=\([0-9a-f]*\) .*/\1/' | md5sum | cut -c1-24)"
    done
    grep -v '^scan ' /tmp/scan.out | head -40 ;;
  scanfp) grep "^scan lane=$a " /tmp/scan.out | sed -e 's/.* fp=\([0-9a-f]*\) .*/SCANFP \1/' ;;
  stopscan) killall posd; sleep 1 ;;
  run) su -s /bin/sh posd -c '/posd run -config /config.yaml' & ;;
  type) /gkit $a /dev/$b $c ;;
  unplug) echo "" > $K/$a/UDC
    case $a in hpos1) kill $(cat /tmp/watch-hidg0.pid); rm -f /tmp/hidg0.pos ;; hpos2) kill $(cat /tmp/watch-hidg1.pid); rm -f /tmp/hidg1.pos ;; esac
    nodes ;;
  plug) echo $(cat /tmp/udc-$a) > $K/$a/UDC
    case $a in hpos1) watch hidg0 ;; hpos2) watch hidg1 ;; esac
    sleep 0.5; nodes; showacm ;;
  grant) (sleep $a; grant; echo GRANTED) & ;;
  devices) echo "DEVICES $(wget -qO- http://127.0.0.1:8321/v1/devices)" ;;
  orders) echo "ORDERS $(wget -qO- 'http://127.0.0.1:8321/v1/orders?state=all')" ;;
  *) echo "unknown command $cmd" ;;
  esac
  echo "GUEST-DID $cmd $a"
done
poweroff -f
`

// kitGadgetScript makes and binds every gadget, each on its own UDC.
func kitGadgetScript() string {
	var b strings.Builder
	for i, g := range kit {
		G := "$K/" + g.name
		fmt.Fprintf(&b, "mkdir %[1]s\necho 0x%[2]s > %[1]s/idVendor\necho 0x%[3]s > %[1]s/idProduct\necho 0x0100 > %[1]s/bcdDevice\n", G, g.vid, g.pid)
		fmt.Fprintf(&b, "mkdir %[1]s/strings/0x409\necho %[2]q > %[1]s/strings/0x409/manufacturer\necho %[3]q > %[1]s/strings/0x409/product\necho %[4]s > %[1]s/strings/0x409/serialnumber\n", G, g.maker, g.product, g.serial)
		switch g.fn {
		case "hidpos", "kbd":
			F := G + "/functions/hid.usb0"
			proto, sub, length, desc := 0, 0, 64, "/desc-pos"
			if g.fn == "kbd" {
				proto, sub, length, desc = 1, 1, 8, "/desc-kbd"
			}
			fmt.Fprintf(&b, "mkdir %[1]s\necho %[2]d > %[1]s/protocol\necho %[3]d > %[1]s/subclass\necho %[4]d > %[1]s/report_length\necho 1 > %[1]s/no_out_endpoint\ncat %[5]s > %[1]s/report_desc\n", F, proto, sub, length, desc)
		case "acm":
			fmt.Fprintf(&b, "mkdir %s/functions/acm.usb0\n", G)
		}
		fn := map[string]string{"hidpos": "hid.usb0", "kbd": "hid.usb0", "acm": "acm.usb0"}[g.fn]
		fmt.Fprintf(&b, "mkdir %[1]s/configs/c.1\necho 100 > %[1]s/configs/c.1/MaxPower\nln -s %[1]s/functions/%[2]s %[1]s/configs/c.1/\n", G, fn)
		fmt.Fprintf(&b, "echo dummy_udc.%d > /tmp/udc-%s\necho dummy_udc.%d > %s/UDC\n", i, g.name, i, G)
	}
	return b.String()
}

// kitCodes makes n payment codes, Alipay and WeChat in turn, with random
// digits (so repeated digits, the hard case for key decoders, are common).
func kitCodes(seed uint64, n int) []string {
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([]string, n)
	for i := range out {
		var b strings.Builder
		b.WriteString([]string{"28", "13"}[i%2])
		for range 16 {
			b.WriteByte(byte('0' + r.IntN(10)))
		}
		out[i] = b.String()
	}
	return out
}

// fingerprints is what the guest's scansum prints for codes: the MD5 of
// their short SHA-256 fingerprints, one per line, as posd scan prints them.
func fingerprints(codes []string) string {
	return fmt.Sprintf("%x", md5.Sum([]byte(strings.Join(kitFingerprints(codes), "\n")+"\n")))[:24] // 32 hex digits would look like a signature in the logs
}

// kitFingerprints are the short fingerprints posd scan prints for codes.
func kitFingerprints(codes []string) []string {
	out := make([]string, len(codes))
	for i, c := range codes {
		h := sha256.Sum256([]byte(c))
		out[i] = hex.EncodeToString(h[:])[:12]
	}
	return out
}

// kitSubsequence checks that what was read is the typed codes in order
// with some left out (none wrong, none twice), and returns how many.
func kitSubsequence(t *testing.T, typed []string, read [][]string) int {
	i := 0
	for _, r := range read {
		for i < len(typed) && typed[i] != r[1] {
			i++
		}
		require.Less(t, i, len(typed), "a code read that was not typed, or out of order: %s", r[1])
		i++
	}
	return len(typed) - len(read)
}

// kitOverflows is the last evdev overflow count posd scan reported.
func kitOverflows(out string) int {
	n := 0
	for _, m := range regexp.MustCompile(`input queue overflowed (\d+) times`).FindAllStringSubmatch(out, -1) {
		v, _ := strconv.Atoi(m[1])
		n = max(n, v)
	}
	return n
}

func kitCodeCount() int {
	if n, err := strconv.Atoi(os.Getenv("POSD_KIT_CODES")); err == nil && n > 0 {
		return n
	}
	return 1000
}

// Not parallel: the figures need the host's two cores for the guest's two
// (with one emulated CPU, posd's evdev reader is starved past the kernel's
// queue: docs/gadgets.md).
func TestQEMUDeviceKit(t *testing.T) {
	kernel, modules := needQEMU(t)
	start := time.Now()
	nCodes := kitCodeCount()

	var lanes strings.Builder
	var scanLanes []string
	var bursts strings.Builder
	fee := map[string]int{}
	for i, g := range kit {
		if g.lane == "" {
			continue
		}
		fee[g.lane] = 101 + i
		displays := "{type: terminal}"
		if g.lane == "ACMA" {
			displays += ", " + kit[len(kit)-1].stanza
		}
		fmt.Fprintf(&lanes, "  - id: %s\n    device_info: %s01\n    fixed_fee: %d\n    subject: kit\n    body: kit\n    scanners: [%s]\n    displays: [%s]\n",
			g.lane, g.lane, fee[g.lane], g.stanza, displays)
		scanLanes = append(scanLanes, g.lane)
		fmt.Fprintf(&bursts, "    %s) /gkit %s /dev/%s $a @/burst-%s & pids=\"$pids $!\" ;;\n", g.lane, g.kind(), g.node, g.lane)
	}
	cfg := fmt.Sprintf(guestConfig, lanes.String())
	cfg = strings.Replace(cfg, "journal: {path: /tmp/journal.db}", "journal: {path: /var/lib/posd/journal.db}\nlog: {format: json}", 1)

	var c cpio
	for _, d := range []string{"bin", "dev", "proc", "sys", "lib", "lib/modules", "etc", "var", "var/lib"} {
		c.add(d, 0o040755, nil)
	}
	c.add("tmp", 0o041777, nil)
	bb, err := os.ReadFile(harness.NeedTool(t, "busybox", "busybox-static"))
	require.NoError(t, err)
	c.add("bin/busybox", 0o100755, bb)
	c.add("etc/passwd", 0o100644, []byte("root:x:0:0:root:/root:/bin/sh\nposd:x:999:999:posd:/var/lib/posd:/bin/sh\n"))
	c.add("etc/group", 0o100644, []byte("root:x:0:\nposd:x:999:\n"))
	c.add("init", 0o100755, []byte(fmt.Sprintf(kitInit, strings.Join(kitModules, " "), len(kit), kitGadgetScript(), bursts.String(), strings.Join(scanLanes, " "))))
	c.add("posd", 0o100755, buildGuestPosd(t))
	c.add("gkit", 0o100755, buildGKit(t))
	c.add("config.yaml", 0o100644, []byte(cfg))
	c.add("desc-pos", 0o100644, hidPOSDescriptor)
	c.add("desc-kbd", 0o100644, bootKeyboardDescriptor)
	want := map[string]string{}
	for i, l := range scanLanes {
		codes := kitCodes(uint64(i+1), nCodes)
		want[l] = fingerprints(codes)
		c.add("burst-"+l, 0o100644, []byte(strings.Join(codes, "\n")+"\n"))
	}
	for _, m := range kitModules {
		c.add("lib/modules/"+m+".ko", 0o100644, findModule(t, modules, m))
	}
	initrd := filepath.Join(t.TempDir(), "initrd.gz")
	require.NoError(t, os.WriteFile(initrd, c.gz(), 0o644))
	built := time.Now()

	g := &guest{t: t, console: harness.NewOutput()}
	g.cmd = harness.DiesWithTest(exec.Command("qemu-system-x86_64", "-m", "768", "-smp", "2", "-nographic", "-no-reboot", "-nic", "none",
		"-kernel", kernel, "-initrd", initrd, "-append", "console=ttyS0 loglevel=3 panic=-1"))
	g.cmd.Stdout, g.cmd.Stderr = g.console, g.console
	in, err := g.cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, g.cmd.Start())
	t.Cleanup(func() {
		_ = g.cmd.Process.Kill()
		_ = g.cmd.Wait()
		if t.Failed() {
			t.Log(harness.Tail(g.console.String(), 8000))
		}
	})
	dones := 0
	do := func(cmd string, timeout time.Duration) {
		t.Helper()
		_, err := io.WriteString(in, cmd+"\n")
		require.NoError(t, err)
		dones++
		g.waitCount("GUEST-DID ", dones, timeout)
	}
	g.waitConsole("POSD-GUEST-READY", 90*time.Second)
	booted := time.Now()
	require.Contains(t, g.console.String(), "NODES acm=4 hidraw=3 ")

	// posd devices lists every gadget with the stanza that matches it.
	do("devlist", 30*time.Second)
	list := between(g.console.String(), "DEVLIST-BEGIN", "DEVLIST-END")
	if os.Getenv("KITDEBUG") != "" {
		do("sh ls -ln /dev/bus/usb/*/", time.Minute)
		do("sh /posd devices", time.Minute)
		t.Fatal(harness.Tail(g.console.String(), 6000))
	}
	for _, s := range []string{
		`{type: serial, usb: "1eab:1d06:NLS0001", baud: 9600}`,
		`{type: serial, usb: "1eab:1d06:NLS0002", baud: 9600}`,
		`{type: serial, usb: "0483:5740:WAVE0001", baud: 9600}`,
		`{type: vfd, usb: "0416:5011:POLE0001"}`,
		`{type: evdev, usb: "0c2e:0b61:14052B0123", layout: us}`,
		`{type: hid, usb: "0c2e:0b6a:HPOS0001", mode: pos}`,
		`{type: hid, usb: "0c2e:0b6a:HPOS0002", mode: pos}`,
		`{type: hid, backend: hidraw, usb: "0c2e:0b6a:HPOS0002", mode: pos}`,
		`{type: hid, usb: "0c2e:0b61:14052B0123", mode: keyboard, layout: us}`,
	} {
		require.Contains(t, list, s, "posd devices:\n%s", list)
	}

	// Digits lost or doubled at 1 ms per character, through each driver,
	// read by posd scan (nothing paid).
	do(fmt.Sprintf("scan %d", len(scanLanes)), 60*time.Second)
	require.Contains(t, g.console.String(), fmt.Sprintf("SCAN-CONNECTED %d", len(scanLanes)))
	time.Sleep(time.Second) // libusb has claimed its interface, the HID-POS scanners are switched
	// The keyboard alone: in the emulated guest, five other devices typing
	// at once can keep posd's reader off the CPU longer than the kernel's
	// 64-event evdev queue lasts (about ten characters), and SYN_DROPPED
	// then costs a code (discarded, never paid). The others, together.
	burstStart := time.Now()
	do("burst 1 KBD", 20*time.Minute)
	kbdTook := time.Since(burstStart)
	do("burst 1 "+strings.Join(slices.DeleteFunc(slices.Clone(scanLanes), func(l string) bool { return l == "KBD" }), " "), 20*time.Minute)
	burstTook := time.Since(burstStart)
	time.Sleep(2 * time.Second) // the last codes reach posd
	do("scansum", time.Minute)
	out := g.console.String()
	require.NotContains(t, out, "GKIT error", harness.Tail(out, 3000))
	figures := []string{}
	for _, l := range scanLanes {
		m := regexp.MustCompile(`SCANSUM ` + l + ` lines=(\d+) refused=(\d+) md5=([0-9a-f]+)`).FindStringSubmatch(out)
		require.NotNil(t, m, "no scan summary for %s:\n%s", l, harness.Tail(out, 4000))
		figures = append(figures, fmt.Sprintf("%s %s read, %s refused", l, m[1], m[2]))
		if l == "KBD" && m[3] != want[l] {
			// The one driver with a small kernel queue: a guest starved of
			// CPU (CI running other suites beside it) overflows it. Each
			// overflow must be reported and cost at most a few codes, and
			// every code read must still be one typed, in order: lost,
			// never wrong.
			overflows := kitOverflows(out)
			do("scanfp KBD", time.Minute)
			read := regexp.MustCompile(`SCANFP ([0-9a-f]+)`).FindAllStringSubmatch(g.console.String(), -1) // printed once (commands are not echoed)
			lost := kitSubsequence(t, kitFingerprints(kitCodes(uint64(slices.Index(scanLanes, "KBD")+1), nCodes)), read)
			refused, _ := strconv.Atoi(m[2])
			t.Logf("KBD under CPU starvation: %d codes lost, %d refused, %d overflows reported", lost, refused, overflows)
			require.Positive(t, overflows, "codes lost without an overflow reported")
			require.LessOrEqual(t, lost, 10*overflows, "each overflow costs at most a few codes (a queue of 64 events is about half a code)")
			continue
		}
		require.Equal(t, fmt.Sprint(nCodes), m[1], "%s: codes read", l)
		require.Equal(t, "0", m[2], "%s: codes refused (digits lost or doubled)", l)
		require.Equal(t, want[l], m[3], "%s: every code read exactly as typed, in order", l)
	}
	t.Logf("bursts of %d codes per scanner at 1 ms per character: the keyboard alone %s, then the five others at once %s; %s",
		nCodes, kbdTook.Round(time.Millisecond), (burstTook - kbdTook).Round(time.Millisecond), strings.Join(figures, "; "))
	do("stopscan", 30*time.Second)

	// Paying through each device, found by its USB id, as user posd.
	do("run", 10*time.Second)
	connected := func(lane string) int {
		return len(regexp.MustCompile(`"msg":"scanner connected"[^\n]*"lane":"`+lane+`"`).FindAllString(g.console.String(), -1))
	}
	harness.WaitFor(t, 60*time.Second, func() bool {
		for _, l := range scanLanes {
			if connected(l) < 1 {
				return false
			}
		}
		return true
	}, "every scanner connected")
	time.Sleep(time.Second)
	paid := func(lane string) int { return strings.Count(g.console.String(), "lane "+lane+": PAID") }
	first := map[string]string{}
	for _, k := range kit {
		if k.lane == "" {
			continue
		}
		first[k.lane] = harness.AlipayCode(41)
		do(fmt.Sprintf("type %s %s 10 %s", k.kind(), k.node, first[k.lane]), time.Minute)
	}
	for _, l := range scanLanes {
		g.waitCount("lane "+l+": PAID", 1, time.Minute)
	}
	lat := kitLatencies(t, g.console.String())
	do("orders", 30*time.Second)
	var orders struct {
		Orders []struct {
			MchTradeID string `json:"mch_trade_id"`
			Scene      string `json:"scene"`
		} `json:"orders"`
	}
	require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(lastLine(g.console.String(), "ORDERS "), "ORDERS ")), &orders))
	scenes := map[string]string{}
	for _, o := range orders.Orders { // S001_<device_info>_…, device_info being the lane and "01"
		if parts := strings.Split(o.MchTradeID, "_"); len(parts) == 3 {
			scenes[strings.TrimSuffix(parts[1], "01")] = o.Scene
		}
	}
	require.Equal(t, "wave_code", scenes["WAVE"], "the sound-wave receiver's payment goes out as wave_code")
	require.Equal(t, "bar_code", scenes["ACMA"])
	pole := func() [2]string {
		var stream []byte
		for _, m := range regexp.MustCompile(`GKIT-CAPTURE ttyGS3 (\S+)`).FindAllStringSubmatch(g.console.String(), -1) {
			b, err := base64.StdEncoding.DecodeString(m[1])
			require.NoError(t, err)
			stream = append(stream, b...)
		}
		screen, err := display.ParseVFD(stream, "ascii")
		require.NoError(t, err)
		return screen
	}
	harness.WaitFor(t, 10*time.Second, func() bool { return strings.HasPrefix(pole()[0], "Paid. Thank you!") }, "the pole display shows the payment")
	require.Contains(t, pole()[1], "1.04")

	// Hotplug, all at once: half a code typed on each scanner, every device
	// unplugged, plugged back in another order (the two Newlands swap
	// ttyACM nodes), its permissions applied late. The rest of each half
	// code is then typed: a reader that kept the first half would pay a
	// spliced code. Then a whole code pays.
	before := map[string]string{}
	for _, m := range regexp.MustCompile(`ACM (ttyACM\d) serial=(\S+)`).FindAllStringSubmatch(g.console.String(), -1) {
		before[m[2]] = m[1]
	}
	spliced := map[string]string{}
	for _, k := range kit {
		if k.lane == "" {
			continue
		}
		spliced[k.lane] = harness.AlipayCode(42)
		do(fmt.Sprintf("type %s %s 10 %s/1", k.kind(), k.node, spliced[k.lane]), time.Minute)
	}
	time.Sleep(500 * time.Millisecond)
	unplugged := time.Now()
	for _, k := range kit {
		do("unplug "+k.name, 30*time.Second)
	}
	scannersGone := func() bool {
		do("devices", 30*time.Second)
		var devs struct {
			Devices []struct{ Role, State string }
		}
		require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(lastLine(g.console.String(), "DEVICES "), "DEVICES ")), &devs))
		for _, d := range devs.Devices {
			if d.Role == "scanner" && d.State == "connected" {
				return false
			}
		}
		return len(devs.Devices) > 0
	}
	harness.WaitFor(t, 20*time.Second, scannersGone, "every scanner gone")
	goneAfter := time.Since(unplugged)
	for _, name := range []string{"acmb", "acma", "wave", "pole", "kbd", "hpos2", "hpos1"} {
		do("plug "+name, 30*time.Second)
	}
	// Permissions come 5 s after the last plug: longer than posd's longest
	// wait between attempts, so every scanner meets a node it may not open.
	do("grant 5", 10*time.Second)
	plugged := time.Now()
	after := map[string]string{}
	out = g.console.String()
	for _, m := range regexp.MustCompile(`ACM (ttyACM\d) serial=(\S+)`).FindAllStringSubmatch(out[strings.LastIndex(out, "GUEST-DID unplug"):], -1) {
		after[m[2]] = m[1]
	}
	require.NotEqual(t, before["NLS0001"], after["NLS0001"], "the first Newland comes back on another node (%v → %v)", before, after)
	harness.WaitFor(t, 60*time.Second, func() bool {
		for _, l := range scanLanes {
			if connected(l) < 2 {
				return false
			}
		}
		return true
	}, "every scanner found again")
	backAfter := time.Since(plugged)
	out = g.console.String()
	for _, l := range []string{"HRAW", "KBD", "ACMA", "ACMB", "WAVE"} {
		require.Regexp(t, `(?i)"msg":"scanner unavailable"[^\n]*"lane":"`+l+`".*permission denied`, out, "%s retried past its late permissions", l)
	}
	time.Sleep(time.Second)
	for _, k := range kit {
		if k.lane != "" {
			do(fmt.Sprintf("type %s %s 10 %s/2", k.kind(), k.node, spliced[k.lane]), time.Minute)
		}
	}
	time.Sleep(2 * time.Second)
	for _, l := range scanLanes {
		require.Equal(t, 1, paid(l), "%s: a half code from before the unplug never completes a payment", l)
	}
	for _, k := range kit {
		if k.lane != "" {
			do(fmt.Sprintf("type %s %s 10 %s", k.kind(), k.node, harness.AlipayCode(43)), time.Minute)
		}
	}
	for _, l := range scanLanes {
		g.waitCount("lane "+l+": PAID", 2, time.Minute)
	}
	time.Sleep(time.Second)
	for _, l := range scanLanes {
		require.Equal(t, 2, paid(l), "%s: nothing paid twice", l)
	}
	out = g.console.String()
	for _, c := range spliced {
		require.NotContains(t, out, c[len(c)-4:]+`","total_fee"`, "no spliced code paid")
	}
	harness.WaitFor(t, 10*time.Second, func() bool { return strings.HasPrefix(pole()[0], "Paid. Thank you!") }, "the pole display back after its replug")
	require.GreaterOrEqual(t, strings.Count(out, "GKIT report hidg0 fe 01"), 2, "libusb switched the scanner to HID-POS again after the replug")
	require.GreaterOrEqual(t, strings.Count(out, "GKIT report hidg1 fe 01"), 2, "hidraw switched the scanner to HID-POS again after the replug")

	var latencies []string
	for _, l := range scanLanes {
		latencies = append(latencies, fmt.Sprintf("%s %s", l, lat[l].Round(100*time.Microsecond)))
	}
	t.Logf("kit timings: build %s, boot %s; terminator → pay sent (guest clock, TCG): %s; all gone %s after the unplugs, all found again %s after the plugs (permissions 2 s late); total %s",
		built.Sub(start).Round(time.Millisecond), booted.Sub(built).Round(time.Millisecond), strings.Join(latencies, ", "),
		goneAfter.Round(time.Millisecond), backAfter.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// kitLatencies pairs the first terminator gkit sent on each scanner with
// the first pay posd logged on its lane (both on the guest's clock).
func kitLatencies(t *testing.T, out string) map[string]time.Duration {
	node := map[string]string{}
	for _, k := range kit {
		node[k.node] = k.lane
	}
	term := map[string]int64{}
	for _, m := range regexp.MustCompile(`GKIT term (\S+) (\d+)`).FindAllStringSubmatch(out[strings.Index(out, "GUEST-DID run"):], -1) {
		if l := node[m[1]]; l != "" && term[l] == 0 {
			term[l], _ = strconv.ParseInt(m[2], 10, 64)
		}
	}
	lat := map[string]time.Duration{}
	for _, m := range regexp.MustCompile(`"ts":([0-9.]+),[^\n]*"msg":"pay"[^\n]*"lane":"(\w+)"`).FindAllStringSubmatch(out, -1) {
		if _, seen := lat[m[2]]; seen || term[m[2]] == 0 {
			continue
		}
		ts, err := strconv.ParseFloat(m[1], 64)
		require.NoError(t, err)
		lat[m[2]] = time.Duration(ts*1e9 - float64(term[m[2]]))
	}
	require.Len(t, lat, len(term), "a pay logged for every scanner: %v %v", term, lat)
	return lat
}

// between is the text between the first begin and the end after it.
func between(s, begin, end string) string {
	i := strings.Index(s, begin)
	if i < 0 {
		return ""
	}
	s = s[i+len(begin):]
	if j := strings.Index(s, end); j >= 0 {
		return s[:j]
	}
	return s
}

func buildGKit(t *testing.T) []byte {
	out := filepath.Join(t.TempDir(), "gkit")
	cmd := exec.Command("go", "build", "-ldflags", "-s -w", "-o", out, ".")
	cmd.Dir = filepath.Join("testdata", "gkit")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOWORK=off", "GOFLAGS=-mod=mod")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	bin, err := os.ReadFile(out)
	require.NoError(t, err)
	return bin
}
