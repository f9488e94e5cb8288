//go:build posd_defects

package defect

import "sync/atomic"

var active atomic.Int32

// On reports whether d is put back.
func On(d Defect) bool { return Defect(active.Load()) == d }

// Set puts d back (0: none).
func Set(d Defect) { active.Store(int32(d)) }

// Enabled reports whether this build can put defects back.
const Enabled = true
