package qemu

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"example.com/posd/test/harness"
)

// A USB printer-class receipt printer through the kernel's real usblp
// driver: inside the QEMU guest, dummy_hcd (a virtual UDC and host
// controller in one) and a configfs gadget with usb_f_printer make an
// EPSON TM-T20II (04b8:0e15, IEEE 1284 id "MFG:EPSON;MDL:TM-T20II;…") that
// the host side enumerates and binds to usblp: /dev/usb/lp0. posd finds it
// by its USB id through sysfs (escpos usb: "04b8:0e15", never a path). The
// gadget side, /dev/g_printer0, is the printer's mechanism: a small static
// program (gprinterSrc) answers DLE EOT status requests and hands every
// receipt it receives to the test over the console. The gadget is then
// unplugged (UDC unbound) and plugged back while posd runs, and the next
// receipt prints on the device it comes back as.

var printerModules = []string{"usb-common", "usbcore", "configfs", "udc-core", "libcomposite", "dummy_hcd", "usb_f_printer", "usblp"}

// The guest's init: the printer gadget, posd reading codes from a FIFO, and
// a command loop on the console that the test drives (pay N, unplug, plug,
// devices), each command acknowledged with "GUEST-DID".
const printerInit = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
for m in %s; do insmod /lib/modules/$m.ko || echo "insmod $m failed"; done
mount -t configfs none /sys/kernel/config
ip link set lo up
G=/sys/kernel/config/usb_gadget/tmt20
mkdir $G
echo 0x04b8 > $G/idVendor
echo 0x0e15 > $G/idProduct
echo 0x0100 > $G/bcdDevice
mkdir $G/strings/0x409
echo EPSON > $G/strings/0x409/manufacturer
echo "TM-T20II" > $G/strings/0x409/product
echo %s > $G/strings/0x409/serialnumber
mkdir $G/functions/printer.usb0
printf '%%s' "MFG:EPSON;MDL:TM-T20II;CMD:ESC/POS;CLS:PRINTER;DES:EPSON TM-T20II;" > $G/functions/printer.usb0/pnp_string
echo 10 > $G/functions/printer.usb0/q_len
mkdir $G/configs/c.1
echo 0xC0 > $G/configs/c.1/bmAttributes
ln -s $G/functions/printer.usb0 $G/configs/c.1/
UDC=$(ls /sys/class/udc | head -n1)
echo "UDC $UDC"
echo $UDC > $G/UDC
i=0
while [ $i -lt 100 ] && ! ls /dev/usb/lp* >/dev/null 2>&1; do sleep 0.1; i=$((i+1)); done
showlp() {
  for d in /sys/class/usbmisc/lp*; do
    [ -e "$d" ] || continue
    dev=$(readlink -f $d/device/..)
    echo "LP $(basename $d) $(cat $dev/idVendor):$(cat $dev/idProduct) serial=$(cat $dev/serial) product=$(cat $dev/product) driver=$(basename $(readlink -f $d/device/driver)) ieee1284_id=$(cat $d/device/ieee1284_id 2>/dev/null)"
  done
}
showlp
ls -l /dev/g_printer* /dev/usb/
mkfifo /tmp/gpctl
/gprinter /dev/g_printer0 /tmp/gpctl &
mkfifo /tmp/scan
exec 3<>/tmp/scan
/posd run -config /config.yaml <&3 &
echo POSD-GUEST-READY
while read -r cmd arg; do
  case "$cmd" in
  pay) cat /code$arg > /tmp/scan ;;
  unplug) echo "" > $G/UDC
    i=0; while [ $i -lt 50 ] && ls /dev/usb/lp* >/dev/null 2>&1; do sleep 0.1; i=$((i+1)); done
    ls /dev/usb/ 2>&1 ;;
  plug) echo $UDC > $G/UDC
    i=0; while [ $i -lt 50 ] && ! ls /dev/usb/lp* >/dev/null 2>&1; do sleep 0.1; i=$((i+1)); done
    showlp ;;
  devices) echo "DEVICES $(wget -qO- http://127.0.0.1:8321/v1/devices)" ;;
  status) echo "$arg" > /tmp/gpctl ;;
  *) echo "unknown command $cmd" ;;
  esac
  echo "GUEST-DID $cmd $arg"
done
poweroff -f
`

// gprinterSrc is the printer's mechanism on the gadget side: it reads what
// the host sends to /dev/g_printer0, answers DLE EOT n (every status byte
// 0x12: online, cover closed, paper present, in the 0xx1xx10 pattern),
// and prints each receipt (ESC @ … GS V) as one base64 console line. It
// reopens the node after an unplug.
const gprinterSrc = `package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// GADGET_SET_PRINTER_STATUS, _IOWR('g', 0x22, unsigned char) in
// include/uapi/linux/usb/g_printer.h; the status is the argument itself.
const gadgetSetPrinterStatus = 0xc0016722

var (
	mu     sync.Mutex
	cur    *os.File
	status = uintptr(0x18) // PRINTER_SELECTED | PRINTER_NOT_ERROR
	cover  bool            // open: DLE EOT 1 says offline, DLE EOT 2 why
)

// setStatus sets the printer-class status the host reads (GET_PORT_STATUS).
func setStatus() {
	mu.Lock()
	defer mu.Unlock()
	if cur == nil {
		return
	}
	rc, err := cur.SyscallConn()
	if err != nil {
		fmt.Println("GPRINTER status:", err)
		return
	}
	var errno syscall.Errno
	rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, gadgetSetPrinterStatus, status)
	})
	if errno != 0 {
		fmt.Println("GPRINTER set status:", errno)
		return
	}
	fmt.Printf("GPRINTER class status %#02x\n", status)
}

func main() {
	path := os.Args[1]
	go func() { // status commands: one number a line
		ctl, err := os.OpenFile(os.Args[2], os.O_RDWR, 0)
		if err != nil {
			fmt.Println("GPRINTER control:", err)
			return
		}
		sc := bufio.NewScanner(ctl)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "cover" || line == "closed" { // the cover: offline, and not selected
				mu.Lock()
				cover, status = line == "cover", map[bool]uintptr{true: 0x00, false: 0x18}[line == "cover"]
				mu.Unlock()
				setStatus()
				continue
			}
			v, err := strconv.ParseUint(line, 0, 8)
			if err != nil {
				fmt.Println("GPRINTER bad status:", sc.Text())
				continue
			}
			mu.Lock()
			status = uintptr(v)
			mu.Unlock()
			setStatus()
		}
	}()
	for {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		fmt.Println("GPRINTER open", path)
		mu.Lock()
		cur = f
		mu.Unlock()
		setStatus()
		serve(f)
		mu.Lock()
		cur = nil
		mu.Unlock()
		f.Close()
		time.Sleep(50 * time.Millisecond)
	}
}

var receipts int

func serve(f *os.File) {
	var pend, receipt []byte
	buf := make([]byte, 4096)
	for {
		n, err := f.Read(buf)
		if err != nil {
			fmt.Println("GPRINTER read:", err)
			return
		}
		pend = append(pend, buf[:n]...)
		for len(pend) > 0 {
			if receipt == nil {
				// between receipts: status requests, or the start of one
				if pend[0] == 0x10 {
					if len(pend) < 3 {
						break
					}
					if pend[1] == 0x04 {
						answer := byte(0x12)
						mu.Lock()
						if cover && pend[2] == 1 {
							answer |= 0x08 // offline
						}
						if cover && pend[2] == 2 {
							answer |= 0x04 // because the cover is open
						}
						mu.Unlock()
						if _, err := f.Write([]byte{answer}); err != nil {
							fmt.Println("GPRINTER write:", err)
							return
						}
						fmt.Printf("GPRINTER status n=%d answered %#02x\n", pend[2], answer)
						pend = pend[3:]
						continue
					}
				}
				if pend[0] == 0x1b {
					if len(pend) < 2 {
						break
					}
					if pend[1] == 0x40 {
						receipt = []byte{}
						continue
					}
				}
				fmt.Printf("GPRINTER stray byte %#02x\n", pend[0])
				pend = pend[1:]
				continue
			}
			receipt = append(receipt, pend...)
			pend = nil
			if i := bytes.Index(receipt, []byte{0x1d, 0x56}); i >= 0 && len(receipt) >= i+3 {
				rest := receipt[i+3:]
				if bytes.HasPrefix(rest, []byte{0x1b, 0x70}) { // drawer kick after the cut
					if len(rest) < 5 {
						break
					}
					rest = rest[5:]
				}
				whole := receipt[:len(receipt)-len(rest)]
				// In short lines: the console is shared with posd's log,
				// and a long write can be cut by another one.
				receipts++
				for i := 0; i < len(whole); i += 48 {
					fmt.Printf("GPRINTER-PART %d %d %s\n", receipts, i, base64.StdEncoding.EncodeToString(whole[i:min(i+48, len(whole))]))
				}
				fmt.Printf("GPRINTER-RECEIPT %d %d\n", receipts, len(whole))
				receipt, pend = nil, append([]byte(nil), rest...)
			}
		}
	}
}
`

func buildGPrinter(t *testing.T) []byte {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module gprinter\n\ngo 1.21\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(gprinterSrc), 0o644))
	out := filepath.Join(dir, "gprinter")
	cmd := exec.Command("go", "build", "-ldflags", "-s -w", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=-mod=mod", "GOWORK=off")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	bin, err := os.ReadFile(out)
	require.NoError(t, err)
	return bin
}

// findModule finds name.ko at any depth under the kernel's module tree
// (the gadget drivers sit four levels down).
func findModule(t *testing.T, modules, name string) []byte {
	var found string
	_ = filepath.WalkDir(modules, func(p string, d os.DirEntry, err error) error {
		if err == nil && found == "" && !d.IsDir() && d.Name() == name+".ko" {
			found = p
		}
		return nil
	})
	require.NotEmpty(t, found, "module %s under %s", name, modules)
	b, err := os.ReadFile(found)
	require.NoError(t, err)
	return b
}

func TestQEMUPrinterUSBLP(t *testing.T) {
	t.Parallel()
	kernel, modules := needQEMU(t)
	start := time.Now()
	const serial = "TMT20SN0001"
	cfg := fmt.Sprintf(guestConfig, fmt.Sprintf(`  - id: PRN
    device_info: PRN01
    fixed_fee: 1234
    subject: hil
    body: hil
    scanners: [{type: stdin}]
    displays: [{type: terminal}, {type: escpos, usb: "04b8:0e15:%s", width: 42}]
`, serial))
	codes := []string{harness.AlipayCode(31), harness.WechatCode(32), harness.AlipayCode(33), harness.WechatCode(34)}

	var c cpio
	for _, d := range []string{"bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules"} {
		c.add(d, 0o040755, nil)
	}
	bb, err := os.ReadFile(harness.NeedTool(t, "busybox", "busybox-static"))
	require.NoError(t, err)
	c.add("bin/busybox", 0o100755, bb)
	c.add("init", 0o100755, []byte(fmt.Sprintf(printerInit, strings.Join(printerModules, " "), serial)))
	c.add("posd", 0o100755, buildGuestPosd(t))
	c.add("gprinter", 0o100755, buildGPrinter(t))
	c.add("config.yaml", 0o100644, []byte(cfg))
	for i, code := range codes {
		c.add(fmt.Sprintf("code%d", i+1), 0o100600, []byte(code+"\n"))
	}
	for _, m := range printerModules {
		c.add("lib/modules/"+m+".ko", 0o100644, findModule(t, modules, m))
	}
	initrd := filepath.Join(t.TempDir(), "initrd.gz")
	require.NoError(t, os.WriteFile(initrd, c.gz(), 0o644))
	built := time.Now()

	args := []string{"-m", "512", "-nographic", "-no-reboot", "-nic", "none",
		"-kernel", kernel, "-initrd", initrd, "-append", "console=ttyS0 loglevel=3 panic=-1"}
	g := &guest{t: t, console: harness.NewOutput()}
	g.cmd = harness.DiesWithTest(exec.Command("qemu-system-x86_64", args...))
	g.cmd.Stdout, g.cmd.Stderr = g.console, g.console
	in, err := g.cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, g.cmd.Start())
	t.Cleanup(func() { _ = g.cmd.Process.Kill(); _ = g.cmd.Wait() })
	dones := 0
	do := func(cmd string) {
		t.Helper()
		_, err := io.WriteString(in, cmd+"\n")
		require.NoError(t, err)
		dones++
		g.waitCount("GUEST-DID ", dones, 30*time.Second)
	}

	g.waitConsole("POSD-GUEST-READY", 60*time.Second)
	booted := time.Now()
	out := g.console.String()
	require.Regexp(t, `LP lp\d 04b8:0e15 serial=TMT20SN0001 product=TM-T20II driver=usblp ieee1284_id=MFG:EPSON;MDL:TM-T20II;CMD:ESC/POS;`, out)
	require.Contains(t, out, "/dev/g_printer0")
	g.waitCount("GPRINTER open", 1, 10*time.Second)

	receipt := func(n int) string {
		t.Helper()
		g.waitCount("GPRINTER-RECEIPT ", n, 30*time.Second)
		out := g.console.String()
		m := regexp.MustCompile(fmt.Sprintf(`GPRINTER-RECEIPT %d (\d+)`, n)).FindStringSubmatch(out)
		require.NotNil(t, m, "receipt %d", n)
		var b []byte
		for _, p := range regexp.MustCompile(fmt.Sprintf(`GPRINTER-PART %d (\d+) ([A-Za-z0-9+/=]+)`, n)).FindAllStringSubmatch(out, -1) {
			off, _ := strconv.Atoi(p[1])
			require.Equal(t, len(b), off, "receipt %d: parts in order, none lost", n)
			chunk, err := base64.StdEncoding.DecodeString(p[2])
			require.NoError(t, err)
			b = append(b, chunk...)
		}
		require.Equal(t, m[1], fmt.Sprint(len(b)))
		require.True(t, bytes.HasPrefix(b, []byte{0x1b, 0x40}), "ESC @ first")
		require.Contains(t, string(b), "\x1d\x56\x01", "partial cut")
		require.Contains(t, string(b), "\x1d\x28\x6b", "QR code")
		return string(b)
	}
	paidTrade := func(n int) string {
		t.Helper()
		g.waitCount("lane PRN: PAID", n, 60*time.Second)
		m := regexp.MustCompile(`lane PRN: PAID ¥12\.34 with \S+ — order (\S+), trade (\S+),`).FindAllStringSubmatch(g.console.String(), -1)
		require.GreaterOrEqual(t, len(m), n)
		return m[n-1][2]
	}

	// First receipt.
	do("pay 1")
	trade1 := paidTrade(1)
	paidAt := time.Now()
	r1 := receipt(1)
	paid1 := time.Now()
	lat1 := paid1.Sub(paidAt)
	require.Contains(t, r1, "RMB 12.34")
	require.Contains(t, r1, "Trade "+trade1)
	require.Contains(t, r1, "PRN")
	require.Contains(t, r1, "SANDBOX")
	require.NotContains(t, r1, codes[0], "the payment code is never printed")
	require.Contains(t, g.console.String(), "GPRINTER status n=1 answered")
	require.Contains(t, g.console.String(), "GPRINTER status n=4 answered")
	do("devices")
	require.Regexp(t, `"type":"escpos","name":"[^"]*","state":"connected","detail":"ok"`, g.console.String())

	// Unplug and plug back while posd runs: the next receipt prints on the
	// device the printer comes back as.
	do("unplug")
	// posd polls the printer while idle: gone within a few seconds,
	// without a receipt.
	unplugged := time.Now()
	printerState(t, do, g, `"state":"gone"`, 8*time.Second)
	goneAfter := time.Since(unplugged)
	do("plug")
	require.Equal(t, 2, strings.Count(g.console.String(), "LP lp"), "printer back:\n%s", harness.Tail(g.console.String(), 3000))
	do("pay 2")
	trade2 := paidTrade(2)
	paidAt = time.Now()
	r2 := receipt(2)
	lat2 := time.Since(paidAt)
	require.Contains(t, r2, "RMB 12.34")
	require.Contains(t, r2, "Trade "+trade2)
	require.NotEqual(t, trade1, trade2)
	require.Equal(t, 2, strings.Count(g.console.String(), "GPRINTER-RECEIPT "), "nothing printed twice")
	do("devices")

	// Out of paper, through the printer-class status only (DLE EOT still
	// answers 0x12): the payment completes, the receipt waits in the
	// queue, /v1/devices says why; paper back and it prints.
	do("status 0x30") // PRINTER_PAPER_EMPTY | PRINTER_SELECTED, error
	g.waitCount("GPRINTER class status 0x30", 1, 10*time.Second)
	do("pay 3")
	trade3 := paidTrade(3)
	printerState(t, do, g, `"state":"degraded","detail":"out of paper"`, 8*time.Second)
	time.Sleep(3 * time.Second)
	require.Equal(t, 2, strings.Count(g.console.String(), "GPRINTER-RECEIPT "), "no receipt while out of paper")
	do("status 0x18") // PRINTER_SELECTED | PRINTER_NOT_ERROR
	paperBack := time.Now()
	r3 := receipt(3)
	lat3 := time.Since(paperBack)
	require.Contains(t, r3, "Trade "+trade3)
	printerState(t, do, g, `"state":"connected","detail":"ok"`, 8*time.Second)
	require.Equal(t, 3, strings.Count(g.console.String(), "GPRINTER-RECEIPT "), "nothing printed twice")

	// Cover open: DLE EOT 1 says offline, DLE EOT 2 says why, and the
	// printer-class status is not selected. The receipt waits; the cover
	// closed, it prints.
	do("status cover")
	g.waitCount("GPRINTER class status 0x0", 1, 10*time.Second)
	do("pay 4")
	trade4 := paidTrade(4)
	printerState(t, do, g, `"state":"degraded","detail":"cover open"`, 8*time.Second)
	require.Contains(t, g.console.String(), "GPRINTER status n=2 answered 0x16")
	time.Sleep(3 * time.Second)
	require.Equal(t, 3, strings.Count(g.console.String(), "GPRINTER-RECEIPT "), "no receipt while the cover is open")
	do("status closed")
	r4 := receipt(4)
	require.Contains(t, r4, "Trade "+trade4)
	printerState(t, do, g, `"state":"connected","detail":"ok"`, 8*time.Second)
	require.Equal(t, 4, strings.Count(g.console.String(), "GPRINTER-RECEIPT "), "nothing printed twice")
	t.Logf("timings: build %s, boot to ready %s, first receipt %s after boot; receipt seen %s after the PAID line was seen (50 ms polls), after the replug %s; gone seen %s after the unplug; receipt %s after paper back; total %s",
		built.Sub(start).Round(time.Millisecond), booted.Sub(built).Round(time.Millisecond),
		paid1.Sub(booted).Round(time.Millisecond), lat1.Round(time.Millisecond), lat2.Round(time.Millisecond),
		goneAfter.Round(time.Millisecond), lat3.Round(time.Millisecond),
		time.Since(start).Round(time.Millisecond))
	t.Log(harness.Tail(g.console.String(), 5000))
}

// printerState asks the guest for /v1/devices until the escpos printer's
// entry matches want (a fragment after its name), within d.
func printerState(t *testing.T, do func(string), g *guest, want string, d time.Duration) {
	t.Helper()
	re := regexp.MustCompile(`"type":"escpos","name":"[^"]*",` + regexp.QuoteMeta(want))
	for end := time.Now().Add(d); ; time.Sleep(500 * time.Millisecond) {
		do("devices")
		last := lastLine(g.console.String(), "DEVICES ")
		if re.MatchString(last) {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("printer not %s within %s: %s", want, d, last)
		}
	}
}

// lastLine is the last console line starting with prefix.
func lastLine(out, prefix string) string {
	last := ""
	for _, l := range strings.Split(out, "\n") {
		if i := strings.Index(l, prefix); i >= 0 {
			last = strings.TrimSpace(l[i:])
		}
	}
	return last
}
