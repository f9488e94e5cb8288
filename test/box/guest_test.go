package box

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"example.com/posd/test/harness"
)

// boxGuest is the booted Debian: its console, the agent's shell on the
// virtio-serial port, and the host end of its USB serial adapter.
type boxGuest struct {
	t        *testing.T
	console  *harness.SyncBuf
	agent    net.Conn
	agentR   *bufio.Reader
	serial   net.Conn
	n        int
	tlog     io.Writer // the agent's transcript, secrets masked
	secrets  []string
	logDir   string
	bootTime time.Duration
	saved    sync.Once
	journal  string
}

func bootBox(t *testing.T, image, dataImg, logDir string, secrets []string) *boxGuest {
	dir, err := os.MkdirTemp("", "posd-box")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	agentSock, serSock := filepath.Join(dir, "agent.sock"), filepath.Join(dir, "ser.sock")
	consoleLog, err := os.Create(filepath.Join(logDir, "console.log"))
	require.NoError(t, err)
	t.Cleanup(func() { consoleLog.Close() })
	transcript, err := os.Create(filepath.Join(logDir, "agent.log"))
	require.NoError(t, err)
	t.Cleanup(func() { transcript.Close() })
	accel := os.Getenv("POSD_BOX_ACCEL")
	if accel == "" {
		accel = "tcg"
	}
	g := &boxGuest{t: t, console: &harness.SyncBuf{}, tlog: transcript, secrets: secrets, logDir: logDir}
	args := []string{"-accel", accel, "-m", "1024", "-smp", "2", "-nographic", "-no-reboot", "-nic", "none",
		"-kernel", filepath.Join(image, "vmlinuz"), "-initrd", filepath.Join(image, "initrd.img"),
		"-append", "root=/dev/vda rw console=ttyS0 panic=-1 fsck.mode=skip",
		// The cached image is never written: the guest's writes go to a
		// temporary overlay.
		"-drive", "file=" + filepath.Join(image, "rootfs.img") + ",if=virtio,format=raw,snapshot=on",
		"-drive", "file=" + dataImg + ",if=virtio,format=raw,readonly=on",
		"-device", "virtio-serial-pci",
		"-chardev", "socket,id=agent,path=" + agentSock + ",server=on,wait=off",
		"-device", "virtserialport,chardev=agent,name=" + boxAgentPort,
		"-device", "qemu-xhci,id=xhci",
		"-device", "usb-kbd,bus=xhci.0,id=kbd",
		"-chardev", "socket,id=ser0,path=" + serSock + ",server=on,wait=off",
		"-device", "usb-serial,chardev=ser0,bus=xhci.0,id=ser"}
	if accel == "kvm" {
		args = append(args, "-cpu", "host")
	}
	cmd := harness.DiesWithTest(exec.Command("qemu-system-x86_64", args...))
	cmd.Stdout = io.MultiWriter(consoleLog, g.console)
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	harness.WaitFor(t, 20*time.Second, func() bool {
		g.agent, err = net.Dial("unix", agentSock)
		return err == nil
	}, "the agent's virtio-serial socket")
	// The FTDI adapter attaches in the guest once its chardev is connected.
	harness.WaitFor(t, 20*time.Second, func() bool {
		g.serial, err = net.Dial("unix", serSock)
		return err == nil
	}, "the USB serial adapter's socket")
	t.Cleanup(func() { g.agent.Close(); g.serial.Close() })
	g.agentR = bufio.NewReader(g.agent)
	_ = g.agent.SetReadDeadline(time.Now().Add(5 * time.Minute))
	for {
		line, err := g.agentR.ReadString('\n')
		if err != nil {
			t.Fatalf("the guest's agent never came up (%v); console:\n%s", err, harness.Tail(g.console.String(), 4000))
		}
		if strings.Contains(line, "POSD-BOX-AGENT-READY") {
			break
		}
	}
	g.bootTime = time.Since(start)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("box: guest console (tail; whole in %s):\n%s", filepath.Join(logDir, "console.log"), harness.Tail(g.console.String(), 3000))
		}
	})
	return g
}

func (g *boxGuest) mask(s string) string {
	for _, x := range g.secrets {
		if len(x) > 6 {
			s = strings.ReplaceAll(s, x, x[:2]+"…"+x[len(x)-4:])
		}
	}
	return s
}

// run runs a shell command in the guest (in a subshell, stdin from
// /dev/null, stderr with stdout) and returns its output and exit status.
func (g *boxGuest) run(cmd string, timeout time.Duration) (string, int) {
	g.t.Helper()
	g.n++
	marker := fmt.Sprintf("\n__POSD_BOX_DONE_%d__ ", g.n)
	start := time.Now()
	fmt.Fprintf(g.tlog, "\n$ %s\n", g.mask(cmd))
	_, err := fmt.Fprintf(g.agent, "( %s\n) </dev/null 2>&1; printf '%s%%d\\n' $?\n", cmd, strings.ReplaceAll(marker, "\n", "\\n"))
	require.NoError(g.t, err)
	_ = g.agent.SetReadDeadline(time.Now().Add(timeout))
	buf := "\n"
	for {
		b, err := g.agentR.ReadString('\n')
		buf += b
		if i := strings.Index(buf, marker); i >= 0 && strings.HasSuffix(buf, "\n") {
			out := buf[1:i]
			rc, _ := strconv.Atoi(strings.TrimSpace(buf[i+len(marker):]))
			fmt.Fprintf(g.tlog, "%s\n[exit %d, %s]\n", g.mask(out), rc, harness.Since(start))
			return out, rc
		}
		if err != nil {
			fmt.Fprintf(g.tlog, "%s\n[%v after %s]\n", g.mask(buf), err, harness.Since(start))
			g.t.Fatalf("guest command %q: no answer in %s (%v): %s\nconsole:\n%s", g.mask(cmd), timeout, err, g.mask(buf), harness.Tail(g.console.String(), 3000))
		}
	}
}

func (g *boxGuest) must(cmd string, timeout time.Duration) string {
	g.t.Helper()
	out, rc := g.run(cmd, timeout)
	require.Equal(g.t, 0, rc, "guest: %s\n%s", g.mask(cmd), g.mask(out))
	return out
}

// waitGuest runs cond in the guest every half second until it succeeds.
func (g *boxGuest) waitGuest(cond string, timeout time.Duration) bool {
	g.t.Helper()
	secs := int(timeout / (500 * time.Millisecond))
	_, rc := g.run(fmt.Sprintf("for i in $(seq %d); do if %s; then exit 0; fi; sleep 0.5; done; exit 1", secs, cond), timeout+time.Minute)
	return rc == 0
}

// waitDevice waits until posd says its scanner of type typ is connected.
func (g *boxGuest) waitDevice(api, typ string, timeout time.Duration) bool {
	g.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out, _ := g.run(api+"devices", time.Minute)
		var devs any
		_ = json.Unmarshal([]byte(out), &devs)
		found := false
		var walk func(v any)
		walk = func(v any) {
			switch v := v.(type) {
			case []any:
				for _, e := range v {
					walk(e)
				}
			case map[string]any:
				if v["role"] == "scanner" && (v["type"] == typ || v["name"] == typ) && v["state"] == "connected" {
					found = true
				}
				for _, e := range v {
					walk(e)
				}
			}
		}
		walk(devs)
		if found {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Second)
	}
}

// show is systemctl show posd, as a map.
func (g *boxGuest) show() map[string]string {
	g.t.Helper()
	out := g.must("systemctl show -p ActiveState,SubState,StatusText,MainPID,NRestarts,Type,Result,ExecMainStatus posd", time.Minute)
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

// waitRestart waits until posd runs again under a new main process, READY.
func (g *boxGuest) waitRestart(oldPID string, timeout time.Duration) map[string]string {
	g.t.Helper()
	ok := g.waitGuest(`[ "$(systemctl show -p MainPID --value posd)" != `+oldPID+` ] && [ "$(systemctl show -p ActiveState,SubState --value posd | tr '\n' ' ')" = "active running " ]`, timeout)
	p := g.show()
	if !ok {
		st, _ := g.run("systemctl status posd --no-pager -l; journalctl -u posd --no-pager -o cat | tail -n 30", time.Minute)
		g.t.Fatalf("posd (was pid %s) not running again in %s: %v\n%s", oldPID, timeout, p, st)
	}
	return p
}

func (g *boxGuest) openCharge(cmd string) string {
	g.t.Helper()
	out := g.must(cmd, time.Minute)
	var c harness.ChargeJSON
	require.NoError(g.t, json.Unmarshal([]byte(out), &c), "%s", out)
	require.NotEmpty(g.t, c.ID, "%s", out)
	return c.ID
}

func (g *boxGuest) charge(api, id string) harness.ChargeJSON {
	g.t.Helper()
	out := g.must(api+"status "+id, time.Minute)
	var c harness.ChargeJSON
	require.NoError(g.t, json.Unmarshal([]byte(out), &c), "%s", out)
	return c
}

// settle polls the charge until its last attempt is final. (Not posctl
// status --wait: on a charge that is already final it waits the whole
// long-poll, 30 s, since the API's ?wait= waits for the next change.)
func (g *boxGuest) settle(api, id string) harness.ChargeJSON {
	g.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		c := g.charge(api, id)
		if n := len(c.Attempts); n > 0 && harness.FinalAttempt[c.Attempts[n-1].State] && c.State != "paying" {
			return c
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("charge %s not settled in 90s: %+v", id, c)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// saveJournal fetches journalctl -u posd (once, also when the test stops
// early) into posd-journal.log.
func (g *boxGuest) saveJournal() string {
	g.saved.Do(func() {
		if g.t.Failed() && g.agent == nil {
			return
		}
		out, rc := g.run("journalctl -u posd --no-pager -o cat", time.Minute)
		if rc == 0 {
			g.journal = out
		}
		_ = os.WriteFile(filepath.Join(g.logDir, "posd-journal.log"), []byte(g.mask(out)), 0o644)
	})
	return g.journal
}
