package httpguard

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// Cancellations at every point leave no turn taken (stress, with -race).
func TestThrottleNoLeak(t *testing.T) {
	var th Throttle
	th.Interval = time.Millisecond
	var wg sync.WaitGroup
	for i := range 400 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rand.IntN(3000))*time.Microsecond)
			defer cancel()
			if i%7 == 0 {
				cancel()
			}
			th.Wait(ctx)
		}()
	}
	wg.Wait()
	if len(th.turn) != 0 {
		t.Fatalf("turn token leaked")
	}
}
