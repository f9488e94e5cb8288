package api

import "time"

// SetSlowInterval shortens the wrong-token throttle for the tests.
func SetSlowInterval(s *Server, d time.Duration) { s.slow.Interval = d }
