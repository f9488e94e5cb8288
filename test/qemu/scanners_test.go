package qemu

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"example.com/posd/test/harness"
)

// Hardware in the loop: a Debian kernel under QEMU with an emulated USB
// keyboard and an FTDI USB serial adapter, real kernel drivers (xhci,
// usbhid, evdev, ftdi_sio), and posd inside the guest on its embedded
// sandbox. Codes are typed on the USB keyboard through QMP and written to
// the USB serial port; each must be paid. The serial adapter is unplugged
// and plugged back (device_del / device_add) and the next code is paid too.
//
// Needs qemu-system-x86, busybox-static and a kernel fetched by
// .ci/qemu-kernel (POSD_QEMU_KERNEL_DIR); .ci/run provides all three.

var guestModules = []string{"usb-common", "usbcore", "xhci-hcd", "xhci-pci", "hid", "usbhid", "hid-generic", "evdev", "usbserial", "ftdi_sio"}

const guestInit = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in %s; do insmod /lib/modules/$m.ko || echo "insmod $m failed"; done
ip link set lo up
i=0
while [ $i -lt 150 ]; do
  if [ -e /dev/ttyUSB0 ] && ls /dev/input/event* >/dev/null 2>&1; then break; fi
  sleep 0.2; i=$((i+1))
done
grep -E '^N: ' /proc/bus/input/devices
echo POSD-GUEST-READY
/posd run -config /config.yaml
echo POSD-EXITED $?
poweroff -f
`

// cpio writes a newc archive, as the kernel reads an initramfs.
type cpio struct {
	buf bytes.Buffer
	ino int
}

func (c *cpio) add(name string, mode uint32, data []byte) {
	c.ino++
	fmt.Fprintf(&c.buf, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	c.buf.WriteString(name)
	c.buf.WriteByte(0)
	c.pad()
	c.buf.Write(data)
	c.pad()
}

func (c *cpio) pad() {
	for c.buf.Len()%4 != 0 {
		c.buf.WriteByte(0)
	}
}

func (c *cpio) gz() []byte {
	c.add("TRAILER!!!", 0, nil)
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	_, _ = w.Write(c.buf.Bytes())
	w.Close()
	return out.Bytes()
}

func needQEMU(t *testing.T) (kernel, modules string) {
	t.Helper()
	harness.NeedTool(t, "qemu-system-x86_64", "qemu-system-x86")
	harness.NeedTool(t, "busybox", "busybox-static")
	dir := os.Getenv("POSD_QEMU_KERNEL_DIR")
	k, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	m, _ := filepath.Glob(filepath.Join(dir, "lib", "modules", "*", "kernel"))
	if dir == "" || len(k) == 0 || len(m) == 0 {
		harness.SkipLoudly(t, "SKIPPED: "+t.Name()+" needs a Debian kernel: POSD_QEMU_KERNEL_DIR=$(.ci/qemu-kernel DIR) (.ci/run does it)", true)
	}
	return k[0], m[0]
}

// buildGuestPosd builds posd static with cgo (karalabe/hid's libusb in it).
func buildGuestPosd(t *testing.T) []byte {
	out := filepath.Join(t.TempDir(), "posd")
	cmd := exec.Command("go", "build", "-tags", "netgo,osusergo", "-ldflags", `-s -w -extldflags "-static"`, "-o", out, "example.com/posd/cmd/posd")
	// glibc's iconv loads its converters at run time, which a static binary
	// cannot: without NO_ICONV, hidapi reads every USB string (the serial
	// number included) as empty.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1", "CGO_CFLAGS=-O2 -g -DNO_ICONV")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	bin, err := os.ReadFile(out)
	require.NoError(t, err)
	return bin
}

func initramfs(t *testing.T, posd []byte, modules, config string) string {
	busybox, err := exec.LookPath("busybox")
	require.NoError(t, err)
	bb, err := os.ReadFile(busybox)
	require.NoError(t, err)
	var c cpio
	for _, d := range []string{"bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules"} {
		c.add(d, 0o040755, nil)
	}
	c.add("bin/busybox", 0o100755, bb)
	c.add("init", 0o100755, []byte(fmt.Sprintf(guestInit, strings.Join(guestModules, " "))))
	c.add("posd", 0o100755, posd)
	c.add("config.yaml", 0o100644, []byte(config))
	for _, m := range guestModules {
		found, _ := filepath.Glob(filepath.Join(modules, "*", "*", m+".ko"))
		found2, _ := filepath.Glob(filepath.Join(modules, "*", "*", "*", m+".ko"))
		found = append(found, found2...)
		require.NotEmpty(t, found, "module %s", m)
		b, err := os.ReadFile(found[0])
		require.NoError(t, err)
		c.add("lib/modules/"+m+".ko", 0o100644, b)
	}
	path := filepath.Join(t.TempDir(), "initrd.gz")
	require.NoError(t, os.WriteFile(path, c.gz(), 0o644))
	return path
}

// guest is a running QEMU with its console, QMP and the USB serial socket.
type guest struct {
	t       *testing.T
	cmd     *exec.Cmd
	console *harness.SyncBuf
	qmp     net.Conn
	qmpR    *bufio.Reader
	serial  net.Conn
	events  []string // QMP events seen, by name
}

func bootGuest(t *testing.T, kernel, initrd string) *guest {
	dir := t.TempDir()
	qmpPath, serPath := filepath.Join(dir, "qmp.sock"), filepath.Join(dir, "ser.sock")
	g := &guest{t: t, console: harness.NewOutput()}
	g.cmd = harness.DiesWithTest(exec.Command("qemu-system-x86_64", "-m", "512", "-nographic", "-no-reboot",
		"-kernel", kernel, "-initrd", initrd, "-append", "console=ttyS0 loglevel=3 panic=-1",
		"-device", "qemu-xhci,id=xhci",
		"-device", "usb-kbd,bus=xhci.0,id=kbd",
		"-chardev", "socket,id=ser0,path="+serPath+",server=on,wait=off",
		"-device", "usb-serial,chardev=ser0,bus=xhci.0,id=ser",
		"-qmp", "unix:"+qmpPath+",server=on,wait=off"))
	g.cmd.Stdout, g.cmd.Stderr = g.console, g.console
	require.NoError(t, g.cmd.Start())
	t.Cleanup(func() { _ = g.cmd.Process.Kill(); _ = g.cmd.Wait() })
	var err error
	harness.WaitFor(t, 20*time.Second, func() bool {
		g.qmp, err = net.Dial("unix", qmpPath)
		return err == nil
	}, "QMP socket")
	g.qmpR = bufio.NewReader(g.qmp)
	_, _ = g.qmpR.ReadBytes('\n') // greeting
	g.qmpCall("qmp_capabilities", nil)
	harness.WaitFor(t, 20*time.Second, func() bool {
		g.serial, err = net.Dial("unix", serPath)
		return err == nil
	}, "USB serial chardev")
	return g
}

func (g *guest) qmpCall(cmd string, args any) {
	g.t.Helper()
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	b, _ := json.Marshal(req)
	_, err := g.qmp.Write(append(b, '\n'))
	require.NoError(g.t, err)
	for {
		_ = g.qmp.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := g.qmpR.ReadBytes('\n')
		require.NoError(g.t, err, "QMP %s", cmd)
		var m map[string]any
		_ = json.Unmarshal(line, &m)
		if ev, ok := m["event"].(string); ok {
			g.events = append(g.events, ev)
			continue
		}
		require.NotContains(g.t, m, "error", "QMP %s: %s", cmd, line)
		return
	}
}

// typeCode types digits and Enter on the USB keyboard, paced so the
// emulated keyboard (one change per USB poll) loses nothing.
func (g *guest) typeCode(code string) {
	key := func(k string, down bool) {
		g.qmpCall("input-send-event", map[string]any{"events": []any{map[string]any{
			"type": "key", "data": map[string]any{"down": down, "key": map[string]any{"type": "qcode", "data": k}}}}})
		time.Sleep(15 * time.Millisecond)
	}
	for _, c := range code {
		key(string(c), true)
		key(string(c), false)
	}
	key("ret", true)
	key("ret", false)
}

// waitEvent waits for a QMP event (device_del completes asynchronously:
// DEVICE_DELETED says the chardev is free again).
func (g *guest) waitEvent(name string, timeout time.Duration) {
	g.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, e := range g.events {
			if e == name {
				return
			}
		}
		require.True(g.t, time.Now().Before(deadline), "QMP event %s never came", name)
		_ = g.qmp.SetReadDeadline(time.Now().Add(time.Second))
		line, err := g.qmpR.ReadBytes('\n')
		if err != nil {
			continue
		}
		var m map[string]any
		_ = json.Unmarshal(line, &m)
		if ev, ok := m["event"].(string); ok {
			g.events = append(g.events, ev)
		}
	}
}

func (g *guest) waitConsole(what string, timeout time.Duration) {
	g.t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(g.console.String(), what) {
		if time.Now().After(deadline) {
			g.t.Fatalf("guest console never showed %q:\n%s", what, harness.Tail(g.console.String(), 4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const guestConfig = `
gateway: {url: sandbox, timeout: 5s}
journal: {path: /tmp/journal.db}
api: {listen: "127.0.0.1:8321"}
scan: {duplicate_window: 1s}
lanes:
%s`

func guestLane(id, dev string, fee int, scanner string) string {
	return fmt.Sprintf(`  - id: %s
    device_info: %s
    fixed_fee: %d
    subject: hil
    body: hil
    scanners: [%s]
    displays: [{type: terminal}]
`, id, dev, fee, scanner)
}

func TestQEMUScannersEvdevAndUSBSerial(t *testing.T) {
	t.Parallel()
	kernel, modules := needQEMU(t)
	cfg := fmt.Sprintf(guestConfig,
		guestLane("KB", "KB01", 1, `{type: evdev, name: "QEMU QEMU USB Keyboard", layout: us, key_gap: 2s}`)+
			guestLane("SER", "SER01", 2, `{type: serial, usb: "0403:6001"}`))
	g := bootGuest(t, kernel, initramfs(t, buildGuestPosd(t), modules, cfg))
	g.waitConsole("POSD-GUEST-READY", 120*time.Second)
	g.waitCount("scanner connected", 2, 60*time.Second)

	g.typeCode(harness.AlipayCode(23))
	g.waitCount("lane KB: PAID", 1, 60*time.Second)
	_, err := g.serial.Write([]byte(harness.AlipayCode(24) + "\r\n"))
	require.NoError(t, err)
	g.waitCount("lane SER: PAID", 1, 60*time.Second)

	// Unplug the USB serial adapter and plug it back: found again.
	g.qmpCall("device_del", map[string]any{"id": "ser"})
	g.waitEvent("DEVICE_DELETED", 60*time.Second)
	g.waitCount("scanner unavailable", 1, 60*time.Second)
	g.qmpCall("device_add", map[string]any{"driver": "usb-serial", "chardev": "ser0", "bus": "xhci.0", "id": "ser"})
	g.waitCount("scanner connected", 3, 60*time.Second)
	_, err = g.serial.Write([]byte(harness.AlipayCode(25) + "\r\n"))
	require.NoError(t, err)
	g.waitCount("lane SER: PAID", 2, 60*time.Second)
	require.Equal(t, 1, strings.Count(g.console.String(), "lane KB: PAID"), "nothing paid twice")
	t.Log(harness.Tail(g.console.String(), 5000))
}

// Through karalabe/hid (libusb): the keyboard leaves /dev/input while posd
// holds it, and its 8-byte boot reports are decoded.
func TestQEMUScannerHID(t *testing.T) {
	t.Parallel()
	kernel, modules := needQEMU(t)
	cfg := fmt.Sprintf(guestConfig, guestLane("HID", "HID01", 3, `{type: hid, usb: "0627:0001", mode: keyboard, layout: us, key_gap: 2s}`))
	g := bootGuest(t, kernel, initramfs(t, buildGuestPosd(t), modules, cfg))
	g.waitConsole("POSD-GUEST-READY", 120*time.Second)
	g.waitCount("scanner connected", 1, 60*time.Second)
	time.Sleep(time.Second) // libusb has claimed the interface
	g.typeCode(harness.AlipayCode(13))
	g.waitCount("lane HID: PAID", 1, 60*time.Second)
	g.typeCode(harness.WechatCode(11)) // WeChat; codes end in a repeated digit
	g.waitCount("lane HID: PAID", 2, 60*time.Second)
	t.Log(harness.Tail(g.console.String(), 3000))
}

func (g *guest) waitCount(what string, n int, timeout time.Duration) {
	g.t.Helper()
	deadline := time.Now().Add(timeout)
	for strings.Count(g.console.String(), what) < n {
		if time.Now().After(deadline) {
			g.t.Fatalf("guest console never showed %q %d times:\n%s", what, n, harness.Tail(g.console.String(), 6000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
