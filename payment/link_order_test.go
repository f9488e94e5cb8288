package payment

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
)

// A failing call and a succeeding probe race. If their callbacks reached
// the service in the wrong order (in posd the callback waits on checkout's
// mutex, held across journal fsyncs), the lanes would stay "offline" while
// the link is up, and no later success would tell them otherwise.
func TestLinkChangesAreToldInOrder(t *testing.T) {
	var c Client
	var mu sync.Mutex
	offline := false // what checkout.Service.GatewayState last set
	downRunning, releaseDown := make(chan struct{}), make(chan struct{})
	c.OnLink(func(up bool, _ string) {
		if !up {
			close(downRunning)
			<-releaseDown // waiting for checkout's mutex
		}
		mu.Lock()
		offline = !up
		mu.Unlock()
	})
	done := make(chan struct{})
	go func() { c.link.set(false, "gateway unreachable: connection refused"); close(done) }() // a pay's dial fails
	<-downRunning
	upDone := make(chan struct{})
	go func() { c.link.set(true, ""); close(upDone) }() // the probe connects a moment later
	close(releaseDown)
	<-done
	<-upDone
	for range 3 {
		c.link.set(true, "") // probes every interval, answers to queries…
	}
	up, _ := c.LinkUp()
	assert.True(t, up, "the link is up")
	mu.Lock()
	defer mu.Unlock()
	assert.False(t, offline, "and the lanes know it")
}
