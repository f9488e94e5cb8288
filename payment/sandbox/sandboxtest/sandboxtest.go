// Package sandboxtest runs the sandbox gateway in a process of its own for
// tests and benchmarks whose memory or CPU must not include the gateway's:
// the test binary re-executes itself as the sandbox.
package sandboxtest

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"example.com/posd/payment/sandbox"
)

const env = "POSD_TEST_SANDBOX"

// ServeIfChild serves the sandbox forever when this process is the child
// Start made; call it first in TestMain.
func ServeIfChild() {
	if addr := os.Getenv(env); addr != "" {
		_ = http.ListenAndServe(addr, sandbox.New(sandbox.Options{}))
		os.Exit(0)
	}
}

// Start runs the sandbox in a child process and returns its base URL; the
// child is killed when the test ends.
func Start(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env+"="+addr)
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := "http://" + addr + "/"
	for range 250 {
		if resp, err := http.Get(url + "_sandbox/orders"); err == nil {
			resp.Body.Close()
			return url
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatal("sandbox process did not start")
	return ""
}
