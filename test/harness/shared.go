package harness

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"example.com/posd/payment/sandbox"
)

// SyncBuf is a goroutine-safe output capture.
type SyncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// allLogs gathers every byte posd and the sandbox wrote in this test run,
// checked at the end for secrets.
var (
	allLogsMu sync.Mutex
	allLogs   []*SyncBuf
)

func NewOutput() *SyncBuf {
	b := &SyncBuf{}
	allLogsMu.Lock()
	allLogs = append(allLogs, b)
	allLogsMu.Unlock()
	return b
}

func FreePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	return addr
}

type AttemptJSON struct {
	MchTradeID string `json:"mch_trade_id"`
	PayType    string `json:"pay_type"`
	State      string `json:"state"`
	TradeState *int   `json:"trade_state"`
	TradeID    string `json:"trade_id"`
	OutTradeID string `json:"out_trade_id"`
	ErrMsg     string `json:"err_msg"`
	AuthCode   string `json:"auth_code"`
	Scene      string `json:"scene"`
}

type ChargeJSON struct {
	ID       string        `json:"id"`
	Lane     string        `json:"lane"`
	TotalFee int64         `json:"total_fee"`
	State    string        `json:"state"`
	Attempts []AttemptJSON `json:"attempts"`
}

func WaitFor(t *testing.T, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// codes makes distinct Alipay codes ending in the scenario's two digits.
var codeSeq atomic.Int64

var (
	usedCodesMu sync.Mutex
	usedCodes   []string
)

func NewCode(prefix string, scenario int) string {
	n := codeSeq.Add(1) + time.Now().UnixNano()%1_000_000*100
	c := fmt.Sprintf("%s%014d%02d", prefix, n%100_000_000_000_000, scenario)
	usedCodesMu.Lock()
	usedCodes = append(usedCodes, c)
	usedCodesMu.Unlock()
	return c
}

func AlipayCode(scenario int) string { return NewCode("28", scenario) }

func WechatCode(scenario int) string { return NewCode("13", scenario) }

// CheckSecrets runs every log line the suite's posd and sandbox processes
// wrote through a check: no full payment code, no merchant key, no
// signature (32 hex digits) anywhere.
func CheckSecrets() int {
	allLogsMu.Lock()
	defer allLogsMu.Unlock()
	sig := regexp.MustCompile(`\b[0-9A-Fa-f]{32}\b`)
	bad := 0
	for _, b := range allLogs {
		out := b.String()
		for _, c := range usedCodes {
			if strings.Contains(out, c) {
				fmt.Fprintf(os.Stderr, "SECRET LEAK: a full payment code (…%s) is in the logs\n", c[len(c)-4:])
				bad++
			}
		}
		if strings.Contains(out, sandbox.Key) {
			fmt.Fprintln(os.Stderr, "SECRET LEAK: the merchant key is in the logs")
			bad++
		}
		if m := sig.FindString(out); m != "" {
			fmt.Fprintf(os.Stderr, "SECRET LEAK: something like a signature is in the logs: %s…\n", m[:6])
			bad++
		}
	}
	if bad > 0 {
		return 1
	}
	fmt.Fprintf(os.Stderr, "secrets check: %d process logs, %d codes: clean\n", len(allLogs), len(usedCodes))
	return 0
}

func ReadFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// DiesWithTest makes a child die with the test binary: a test killed by go
// test's timeout panics, and no cleanup runs — without this its QEMU guest
// or daemon would run on.
func DiesWithTest(cmd *exec.Cmd) *exec.Cmd {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// NeedTool finds a program a fresh machine may lack. Without it the test
// skips loudly, naming the Debian package; under POSD_REQUIRE_ALL=1 (CI,
// which installs it) the absence is a failure.
func NeedTool(t *testing.T, name, debPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	SkipLoudly(t, fmt.Sprintf("SKIPPED: %s needs %s: apt-get install %s (.ci/run installs it)", t.Name(), name, debPackage), true)
	return ""
}

// SkipLoudly skips t saying why on standard error, for make test's list;
// what CI provides (required) fails instead under POSD_REQUIRE_ALL=1.
func SkipLoudly(t *testing.T, msg string, required bool) {
	t.Helper()
	if required && os.Getenv("POSD_REQUIRE_ALL") == "1" {
		t.Fatal(msg + " — POSD_REQUIRE_ALL=1 makes this a failure")
	}
	fmt.Fprintln(os.Stderr, "!!! "+msg)
	t.Skip(msg)
}

// NeedRoot skips (loudly; a failure under POSD_REQUIRE_ALL=1) a test that
// must run a process as another user.
func NeedRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	SkipLoudly(t, fmt.Sprintf("SKIPPED: %s needs root %s (.ci/run runs as root)", t.Name(), why), true)
}

// NeedSbinTool is needTool for a program in /usr/sbin, which a non-root
// user's PATH may lack.
func NeedSbinTool(t *testing.T, name, debPackage string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if p := filepath.Join(dir, name); fileExecutable(p) {
			return p
		}
	}
	return NeedTool(t, name, debPackage)
}

func fileExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

func Since(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Millisecond) }

func CopyFile(t *testing.T, from, to string) {
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, b, 0o644))
}

func Tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func EnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}
