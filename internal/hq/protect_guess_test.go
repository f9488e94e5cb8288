package hq

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// Wrong tokens are answered one per 250 ms for all callers together,
// however many requests a guesser keeps in flight.
func TestProtectThrottlesParallelGuessers(t *testing.T) {
	tok := strings.Repeat("s3cr3t", 4)
	srv := httptest.NewUnstartedServer(nil)
	srv.Config.Handler = Protect(takings, Access{Listen: srv.Listener.Addr().String(), Token: tok})
	srv.Start()
	defer srv.Close()

	var answered atomic.Int64
	stop := time.Now().Add(time.Second)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			for time.Now().Before(stop) {
				r, _ := http.NewRequest("GET", srv.URL+"/", nil)
				r.Header.Set("Authorization", "Bearer guess-"+strings.Repeat("x", i))
				resp, err := c.Do(r)
				if err != nil {
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusUnauthorized {
					answered.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("wrong-token answers in 1 s with 40 parallel guessers: %d (the throttle's rate: 4/s)", answered.Load())
	assert.LessOrEqual(t, answered.Load(), int64(4+40), "wrong guesses are answered far faster than one per 250 ms")
}
