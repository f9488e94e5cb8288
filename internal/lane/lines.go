package lane

import (
	"fmt"
	"time"
	"unicode/utf8"

	"example.com/posd/display"
	"example.com/posd/payment"
)

// MaxLines bounds what a till shows between payments (a pole display
// shows the last two).
const MaxLines = 20

// ShowLines shows the till's lines (the basket, the total) on the lane's
// customer displays for ttl, between payments: a lane with a charge open
// refuses them (the payment holds the screen), and a charge opened while
// they show takes the screen over.
func (s *Service) ShowLines(laneID string, lines []string, ttl time.Duration) error {
	l := s.lanes[laneID]
	if l == nil {
		return fmt.Errorf("%w: lane %q", ErrNotFound, laneID)
	}
	switch {
	case len(lines) == 0 || len(lines) > MaxLines:
		return Invalid("lines", "1 to %d lines", MaxLines)
	case ttl <= 0 || ttl > time.Hour:
		return Invalid("ttl", "ttl %s: more than 0, at most 1h", ttl)
	}
	for _, t := range lines {
		// The terminal display writes lines as they are, and a pole display
		// takes control bytes as commands: none gets through.
		if !utf8.ValidString(t) || len(t) > 200 || payment.CleanText(t, 200) != t {
			return Invalid("lines", "a line is at most 200 bytes of printable UTF-8")
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open != "" {
		return fmt.Errorf("%w: lane %s has charge %s open: a payment holds the screen", ErrConflict, laneID, l.open)
	}
	s.publish(display.Event{Lane: laneID, Kind: display.Lines, Text: lines})
	if l.lines != nil {
		l.lines.Stop()
	}
	l.lines = time.AfterFunc(ttl, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		s.idleLocked(l) // nothing if a charge took the screen meanwhile
	})
	return nil
}

// stopLinesLocked: a charge takes the screen over from the till's lines.
func stopLinesLocked(l *lane) {
	if l.lines != nil {
		l.lines.Stop()
		l.lines = nil
	}
}
