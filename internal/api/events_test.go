package api_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/display"
	"example.com/posd/test/harness"
)

// sseFrame is one message of an event stream.
type sseFrame struct {
	id, event string
	data      map[string]any
	raw       []byte
}

// readFrames reads s's messages into a channel until the body ends.
func readFrames(t *testing.T, resp *http.Response) <-chan sseFrame {
	out := make(chan sseFrame, 64)
	go func() {
		defer close(out)
		r := bufio.NewReader(resp.Body)
		var f sseFrame
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "":
				if f.data != nil {
					out <- f
				}
				f = sseFrame{}
			case strings.HasPrefix(line, "id: "):
				f.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				f.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				f.raw = []byte(line[6:])
				_ = json.Unmarshal(f.raw, &f.data)
			}
		}
	}()
	return out
}

// next returns the first frame for which match holds.
func next(t *testing.T, frames <-chan sseFrame, match func(sseFrame) bool) sseFrame {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case f, ok := <-frames:
			require.True(t, ok, "the stream ended")
			require.Equal(t, f.data["kind"], f.event, "each message's event: line is its kind")
			require.True(t, slices.Contains(display.Kinds, display.Kind(f.event)), "kind %q is documented", f.event)
			require.NoError(t, harness.CheckEvent(f.raw))
			if match(f) {
				return f
			}
		case <-timeout:
			t.Fatal("no such event")
		}
	}
}

// The till's events name their kind on the event: line; a refund's end
// carries what matches it to the till's refund and the charge after it;
// a fixed-fee lane's prompt says it is no charge.
func TestEventsATillCanUse(t *testing.T) {
	srv := httptest.NewServer(newServer(t))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/events")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	frames := readFrames(t, resp)

	prompt := next(t, frames, func(f sseFrame) bool { return f.data["lane"] == "K1" })
	assert.Equal(t, "awaiting_scan", prompt.event)
	assert.Equal(t, true, prompt.data["fixed_fee"], "%v", prompt.data)
	assert.NotContains(t, prompt.data, "charge_id")

	s := srv.URL
	post := func(path, body string) []byte {
		resp, err := http.Post(s+path, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
		require.Less(t, resp.StatusCode, 300, "%s %s", path, b.String())
		harness.Hold(harness.Exchange{Method: "POST", Path: path, Header: http.Header{"Content-Type": {"application/json"}},
			Body: []byte(body), Status: resp.StatusCode, RespHeader: resp.Header, RespBody: []byte(b.String())})
		return []byte(b.String())
	}
	c := decodeAs[chargeJSON](t, post("/v1/charges", `{"lane":"L1","total_fee":1000,"subject":"s","body":"b"}`))
	post("/v1/lanes/L1/scans", `{"auth_code":"282941234567890100"}`)
	next(t, frames, func(f sseFrame) bool { return f.event == "paid" && f.data["charge_id"] == c.ID })

	post("/v1/charges/"+c.ID+"/refunds", `{"refund_fee":300,"refund_id":"TILL-R1"}`)
	ev := next(t, frames, func(f sseFrame) bool { return f.event == "refunded" && f.data["charge_id"] == c.ID })
	assert.Equal(t, "TILL-R1", ev.data["refund_id"])
	assert.NotEmpty(t, ev.data["mch_refund_id"])
	assert.EqualValues(t, 300, ev.data["refund_fee"])
	assert.EqualValues(t, 300, ev.data["refunded_fee"])
	assert.Equal(t, "partially_refunded", ev.data["charge_state"])
	got, err := http.Get(s + "/v1/charges/" + c.ID)
	require.NoError(t, err)
	defer got.Body.Close()
	var now struct{ Version float64 }
	require.NoError(t, json.NewDecoder(got.Body).Decode(&now))
	assert.Equal(t, now.Version, ev.data["version"], "the event's version is the charge's as GET shows it")
}
