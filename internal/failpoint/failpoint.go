// Package failpoint lets the crash tests kill posd at an exact step of the
// journal. POSD_FAILPOINT names the point; when the running process reaches
// it, it sends itself SIGKILL: no deferred call, no flush, as in a power cut.
// Unset (always, in production), Hit costs one comparison.
package failpoint

import (
	"os"
	"syscall"
)

var armed = os.Getenv("POSD_FAILPOINT")

// Hit kills the process if name is the armed failpoint.
func Hit(name string) {
	if armed == "" || armed != name {
		return
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way
}
