package sdnotify

import (
	"net"
	"os"
	"strconv"
	"time"
)

// Notify sends state to $NOTIFY_SOCKET. It reports false when there is no
// socket (not started by systemd with Type=notify).
func Notify(state string) (bool, error) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return false, nil
	}
	if path[0] == '@' {
		path = "\x00" + path[1:] // abstract namespace
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return false, err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(state))
	return err == nil, err
}

// WatchdogInterval is how often to send WATCHDOG=1: half of WATCHDOG_USEC,
// or 0 when systemd asked for no watchdog (or for another process).
func WatchdogInterval() time.Duration {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}
