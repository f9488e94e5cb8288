package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/test/harness"
)

func procStat(t *testing.T, pid int) (rssKB int64, cpuTicks int64) {
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rssKB, _ = strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		}
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	require.NoError(t, err)
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return rssKB, ut + st
}

// An idle posd (the make run configuration, built without the race
// detector as shipped) stays under 20 MB resident and 1% of a CPU.
func TestIdleFootprint(t *testing.T) {
	t.Parallel()
	bin := plainPosd(t)
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	src, err := os.ReadFile("../../config.yaml")
	require.NoError(t, err)
	src = []byte(strings.NewReplacer("var/posd-dev.journal", filepath.Join(t.TempDir(), "j.db"), "127.0.0.1:8321", "127.0.0.1:0").Replace(string(src)))
	require.NoError(t, os.WriteFile(cfg, src, 0o600))
	cmd := harness.DiesWithTest(exec.Command(bin, "run", "-config", cfg))
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	time.Sleep(time.Second) // start-up is not idle
	_, before := procStat(t, cmd.Process.Pid)
	const window = 5 * time.Second
	time.Sleep(window)
	rss, after := procStat(t, cmd.Process.Pid)
	ticks := after - before // USER_HZ is 100 on Linux
	cpu := float64(ticks) / 100 / window.Seconds()
	t.Logf("idle posd: %d kB resident, %.2f%% CPU", rss, cpu*100)
	assert.Less(t, rss, int64(20<<10))
	assert.LessOrEqual(t, cpu, 0.01)
}
