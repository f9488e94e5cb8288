package httpguard

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A full listener makes room by closing a connection that was not kept;
// when every one is kept (it showed the token), one more is answered 429.
func TestListenerCapClosesTheUnkeptFirst(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ll := LimitListener(l, 2)
	defer ll.Close()
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := ll.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() (net.Conn, net.Conn) {
		c, err := net.Dial("tcp", l.Addr().String())
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		select {
		case s := <-accepted:
			return c, s
		case <-time.After(5 * time.Second):
			t.Fatal("not accepted")
			return nil, nil
		}
	}
	_, kept := dial()
	kept.(interface{ Keep() }).Keep()
	unkept, _ := dial()
	_, third := dial() // full: the unkept one is closed for it
	_ = unkept.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = unkept.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "the connection not kept, closed to make room")
	third.(interface{ Keep() }).Keep()

	last, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer last.Close()
	resp, err := http.ReadResponse(bufio.NewReader(last), nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "every connection kept")
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
}
