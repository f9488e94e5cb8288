//go:build !posd_defects

package defect

// On reports whether defect n is put back: never, in this build.
func On(int) bool { return false }

// Set is a no-op in this build.
func Set(int) {}

// Enabled reports whether this build can put defects back.
const Enabled = false
