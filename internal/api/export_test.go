package api

import "time"

// SetSlowInterval shortens the wrong-token lock-out for the tests.
func SetSlowInterval(s *Server, d time.Duration) { s.lock.Interval, s.lock.GlobalInterval = d, d/5 }
