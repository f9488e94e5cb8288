//go:build posd_defects

package defect

import "sync/atomic"

var active atomic.Int32

// On reports whether defect n is put back.
func On(n int) bool { return int(active.Load()) == n }

// Set puts defect n back (0: none).
func Set(n int) { active.Store(int32(n)) }

// Enabled reports whether this build can put defects back.
const Enabled = true
