//go:build !posd_defects

package defect

// On reports whether d is put back: never, in this build.
func On(Defect) bool { return false }

// Set is a no-op in this build.
func Set(Defect) {}

// Enabled reports whether this build can put defects back.
const Enabled = false
