package display

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A till that was offline reconnects with the last event id it saw and
// misses nothing; an id of another run (posd restarted) or past the
// history says so, and the lanes' state follows.
func TestSubscribeSince(t *testing.T) {
	h := NewHub()
	first := h.Publish(Event{Lane: "L1", Kind: Paying})
	h.Publish(Event{Lane: "L2", Kind: Idle})
	third := h.Publish(Event{Lane: "L1", Kind: Paid})
	s, whole := h.SubscribeSince("L1", 4, h.ID(first))
	defer h.Unsubscribe(s)
	require.True(t, whole)
	h.Publish(Event{Lane: "L1", Kind: Idle})
	got := []uint64{(<-s.C()).Seq, (<-s.C()).Seq}
	assert.Equal(t, []uint64{third.Seq, third.Seq + 1}, got, "the missed event of its lane, then the new one")

	_, whole = h.SubscribeSince("", 4, "otherrun-2")
	assert.False(t, whole, "an id of another run")
	for range History {
		h.Publish(Event{Lane: "L3", Kind: Idle})
	}
	_, whole = h.SubscribeSince("", 4, h.ID(first))
	assert.False(t, whole, "older than the history")
}

func TestEventsResumeFromLastEventID(t *testing.T) {
	h := NewHub()
	w := &Web{Hub: h, MaxStreams: 4, KeepAlive: time.Hour}
	srv := httptest.NewServer(http.HandlerFunc(w.Events))
	defer srv.Close()
	seen := h.Publish(Event{Lane: "L1", Kind: Paying, ChargeID: "C1"})
	h.Publish(Event{Lane: "L1", Kind: Paid, ChargeID: "C1"})
	req, err := http.NewRequest("GET", srv.URL, nil)
	require.NoError(t, err)
	req.Header.Set("Last-Event-ID", h.ID(seen))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Empty(t, resp.Header.Get("X-Events-Missed"))
	r := bufio.NewReader(resp.Body)
	var id, data string
	for data == "" {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		if v, ok := strings.CutPrefix(line, "id: "); ok {
			id = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "data: "); ok {
			data = v
		}
	}
	assert.Contains(t, data, `"kind":"paid"`, "the event after the one the till saw")
	assert.Equal(t, h.ID(Event{Seq: seen.Seq + 1}), id)
}

// A pole display shows the last two of the till's lines.
func TestVFDShowsTheLastTwoLines(t *testing.T) {
	l := VFDText(Event{Kind: Lines, Text: []string{"Apples", "Bread", "Total 7.00"}}, "en")
	assert.Equal(t, [VFDRows]string{"Bread", "Total 7.00"}, l)
	l = VFDText(Event{Kind: Lines, Text: []string{"Total 7.00"}}, "en")
	assert.Equal(t, [VFDRows]string{"", "Total 7.00"}, l)
}
