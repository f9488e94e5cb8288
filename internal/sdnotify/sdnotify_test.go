package sdnotify

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A socket in the test stands in for systemd.
func TestNotify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	require.NoError(t, err)
	defer l.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	ok, err := Notify("READY=1")
	require.NoError(t, err)
	assert.True(t, ok)
	buf := make([]byte, 64)
	_ = l.SetReadDeadline(time.Now().Add(time.Second))
	n, err := l.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "READY=1", string(buf[:n]))

	t.Setenv("NOTIFY_SOCKET", "")
	ok, err = Notify("READY=1")
	assert.False(t, ok)
	assert.NoError(t, err, "not under systemd: nothing to do")

	t.Setenv("WATCHDOG_USEC", "30000000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	assert.Equal(t, 15*time.Second, WatchdogInterval())
	t.Setenv("WATCHDOG_PID", "1")
	assert.Zero(t, WatchdogInterval(), "for another process")
	t.Setenv("WATCHDOG_USEC", "")
	assert.Zero(t, WatchdogInterval())
}
