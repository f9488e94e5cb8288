package lane

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/display"
)

// The till's lines show between payments for their ttl; a lane with a
// charge open refuses them, and a charge takes the screen over.
func TestShowLines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _, hub := newService(t, Config{ID: "L1", DeviceInfo: "POS01"})
		sub := hub.Subscribe("L1", 16)
		for len(sub.C()) > 0 {
			<-sub.C()
		}
		require.NoError(t, s.ShowLines("L1", []string{"Apples 2 × 3.50", "Total ¥7.00"}, 30*time.Second))
		e := <-sub.C()
		assert.Equal(t, display.Lines, e.Kind)
		assert.Equal(t, []string{"Apples 2 × 3.50", "Total ¥7.00"}, e.Text)
		time.Sleep(31 * time.Second)
		synctest.Wait()
		assert.Equal(t, display.Idle, (<-sub.C()).Kind, "the ttl ends them")

		assert.True(t, errors.Is(s.ShowLines("L1", nil, time.Second), ErrInvalid))
		assert.True(t, errors.Is(s.ShowLines("L1", []string{"Total\x1b[2J"}, time.Second), ErrInvalid), "no control bytes")
		assert.True(t, errors.Is(s.ShowLines("L9", []string{"x"}, time.Second), ErrNotFound))
		require.NoError(t, s.ShowLines("L1", []string{"Bread"}, time.Minute))
		// A charge opens (the bubble's clock says 2000: Open would refuse
		// it for the clock, so the lane takes it as Open does).
		l := s.lanes["L1"]
		l.mu.Lock()
		l.open = "CH1"
		stopLinesLocked(l)
		l.mu.Unlock()
		assert.True(t, errors.Is(s.ShowLines("L1", []string{"x"}, time.Second), ErrConflict), "a payment holds the screen")
		for len(sub.C()) > 0 {
			<-sub.C()
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		for len(sub.C()) > 0 {
			assert.NotEqual(t, display.Idle, (<-sub.C()).Kind, "the lines' end does not clear the charge's screen")
		}
	})
}
