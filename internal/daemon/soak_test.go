package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"example.com/posd/internal/config"
	"example.com/posd/internal/journal"
	"example.com/posd/payment/sandbox"
	"example.com/posd/payment/sandbox/sandboxtest"
	"example.com/posd/test/harness"
)

type sample struct {
	payments   int
	heapKB     uint64
	goroutines int
	fds        int
}

func fdCount() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

// TestSoak: thousands of payments through the whole daemon (the sandbox in
// another process, so that its growing ledger is not counted; journal on disk, a pole display that is unplugged and
// plugged back every 100 payments) with flat heap, goroutine and
// file-descriptor counts. POSD_SOAK_PAYMENTS sets the length (make soak).
func TestSoak(t *testing.T) {
	n := 1500
	if v, err := strconv.Atoi(os.Getenv("POSD_SOAK_PAYMENTS")); err == nil {
		n = v
	}
	dir := t.TempDir()
	vfdLink, scanLink := filepath.Join(dir, "vfd"), filepath.Join(dir, "scanner")
	// plug makes a new pty behind link. A display's side is drained; a
	// scanner's is not read at all, because closing a pty master that a
	// goroutine is blocked reading does not close it until the read ends.
	plug := func(link string, drain bool) (*os.File, *os.File) {
		m, s, err := pty.Open()
		require.NoError(t, err)
		_ = os.Remove(link)
		require.NoError(t, os.Symlink(s.Name(), link))
		if drain {
			go func() { _, _ = io.Copy(io.Discard, m) }()
		}
		return m, s
	}
	master, slave := plug(vfdLink, true)
	scanM, scanS := plug(scanLink, false)
	keyFile := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(keyFile, []byte(sandbox.Key), 0o600))
	sock := filepath.Join(dir, "api.sock")
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
merchant: {id: %s, key_file: %s}
gateway: {url: "%s"}
journal: {path: %s}
api: {listen: "unix:%s"}
scan: {duplicate_window: 1ms}
lanes:
  - id: K1
    device_info: KIOSK1
    fixed_fee: 200
    subject: soak
    body: soak
    displays: [{type: vfd, port: %s}]
  - id: S1
    device_info: SER1
    scanners: [{type: serial, port: %s}]
`, sandbox.MerchantID, keyFile, sandboxtest.Start(t), filepath.Join(dir, "j.db"), sock, vfdLink, scanLink)))
	require.NoError(t, err)
	_, err = cfg.Validate()
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *journal.Journal, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, cfg, zap.NewNop(), IO{Stdin: bytes.NewReader(nil), Stdout: io.Discard}, func(string, *journal.Journal) { ready <- nil })
	}()
	<-ready
	client := harness.UnixClient(sock, 10*time.Second)
	call := func(method, path string, body any) map[string]any {
		code, b, err := harness.Call(client, method, path, body)
		require.NoError(t, err)
		var out map[string]any
		require.NoError(t, json.Unmarshal(b, &out))
		require.Less(t, code, 300, "%s %s: %v", method, path, out)
		return out
	}

	var samples []sample
	for i := 1; i <= n; i++ {
		lane := call("POST", "/v1/lanes/K1/scans", map[string]string{"auth_code": fmt.Sprintf("28%014d%02d", i, i%80)})
		id := lane["charge"].(map[string]any)["id"].(string)
		for {
			c := call("GET", "/v1/charges/"+id+"?wait=2s", nil)
			if c["state"] == "paid" {
				break
			}
			require.Equal(t, "paying", c["state"])
		}
		if i%100 == 0 { // the pole display is unplugged and plugged back
			master.Close()
			slave.Close()
			master, slave = plug(vfdLink, true)
		}
		if i%500 == 0 { // so is the serial scanner: wait until it is found again
			scanM.Close()
			scanS.Close()
			waitState(t, call, "gone")
			scanM, scanS = plug(scanLink, false)
			waitState(t, call, "connected")
		}
		if i%250 == 0 {
			client.CloseIdleConnections()
			time.Sleep(50 * time.Millisecond) // let the display settle after the replug
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			samples = append(samples, sample{i, ms.HeapAlloc >> 10, runtime.NumGoroutine(), fdCount()})
		}
	}
	cancel()
	require.NoError(t, <-done)
	master.Close()
	slave.Close()
	scanM.Close()
	scanS.Close()

	for _, s := range samples {
		t.Logf("after %5d payments: heap %6d kB, %3d goroutines, %3d fds", s.payments, s.heapKB, s.goroutines, s.fds)
	}
	require.GreaterOrEqual(t, len(samples), 2)
	first, last := samples[0], samples[len(samples)-1]
	assert.LessOrEqual(t, last.goroutines, first.goroutines+3, "goroutines flat")
	assert.LessOrEqual(t, last.fds, first.fds+3, "file descriptors flat across scanner and display replugs")
	assert.LessOrEqual(t, last.heapKB, first.heapKB+1024, "heap flat")
}

func TestMain(m *testing.M) {
	sandboxtest.ServeIfChild()
	// Every goroutine the package starts must end with the test that
	// started it.
	goleak.VerifyTestMain(m)
}

// waitState waits until the serial scanner reports state in /v1/devices.
func waitState(t *testing.T, call func(string, string, any) map[string]any, state string) {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, d := range call("GET", "/v1/devices", nil)["devices"].([]any) {
			m := d.(map[string]any)
			if m["role"] == "scanner" && m["state"] == state {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("scanner never %s: %v", state, call("GET", "/v1/devices", nil))
}
