package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"time"
)

// UnixClient is a client of posd's API on the unix socket sock: every
// request goes there, whatever its URL's host (tests use http://posd).
func UnixClient(sock string, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
	}
}

// Call sends one request to posd as a till does: body as JSON (nil for
// none), then header name and value pairs. It returns the status and the
// whole answer. The exchange is held to docs/openapi.yaml; what breaks it
// fails the suite at its end (Run).
func Call(c *http.Client, method, path string, body any, hdr ...string) (int, []byte, error) {
	var sent []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		sent = b
	}
	req, err := http.NewRequest(method, "http://posd"+path, bytes.NewReader(sent))
	if err != nil {
		return 0, nil, err
	}
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil {
		Hold(Exchange{Method: method, Path: path, Header: req.Header, Body: sent, Status: resp.StatusCode, RespHeader: resp.Header, RespBody: b})
	}
	return resp.StatusCode, b, err
}

// FinalAttempt holds the states an attempt ends in, as the API names them.
var FinalAttempt = map[string]bool{"paid": true, "declined": true, "reversed": true, "closed": true, "failed": true, "refunded": true}
