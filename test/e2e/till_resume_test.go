package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/display"
	"example.com/posd/test/harness"
)

// A refund the gateway carried out but whose answer never reached posd
// (the connection dropped after the gateway acted), then posd killed: the
// restarted posd asks refund_query and confirms it. The money goes back
// once, the till sees "refunded", and the refund's id was never used for
// a second refund.
func TestRefundAnswerLostThenRestart(t *testing.T) {
	t.Parallel()
	g := startSandbox(t)
	p := startFaultProxy(t, g.url, 0, nil)
	d := newDaemon(t, g, opts{gateway: p.url, confirm: queryEvery("40ms")})
	d.start()
	c := d.openCharge("L1", 1000)
	d.scan(harness.AlipayCode(7))
	require.Equal(t, "paid", d.settle(c.ID, 10*time.Second).State)

	// The refund is asked about first (not made yet), then every refund
	// answer is lost, and refund_query says nothing trusted until posd
	// restarts: the refund stays "unknown", never "failed".
	p.setScript(func(call string, n int) Fault {
		switch {
		case call == "refund":
			return DropAfter
		case call == "refund_query" && n > 1:
			return Status500
		}
		return NoFault
	})
	code, body := d.do("POST", "/v1/charges/"+c.ID+"/refunds", map[string]any{"refund_fee": 400, "refund_id": "T-1"})
	require.Equal(t, 202, code, "%s", body)
	refund := func() (state string) {
		_, body := d.do("GET", "/v1/charges/"+c.ID+"/refunds/T-1", nil)
		var r struct{ State string }
		_ = json.Unmarshal(body, &r)
		return r.State
	}
	harness.WaitFor(t, 10*time.Second, func() bool { return refund() == "unknown" }, "the refund unknown")
	require.Len(t, g.ledger(t).Refunds, 1, "the gateway made the refund")
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, "unknown", refund(), "no answer is not a failure")

	d.kill()
	p.setScript(nil)
	d.start()
	harness.WaitFor(t, 15*time.Second, func() bool { return refund() == "refunded" }, "confirmed after the restart")
	ch := d.charge(c.ID, "")
	assert.Equal(t, "partially_refunded", ch.State)
	l := g.ledger(t)
	require.Len(t, l.Refunds, 1, "given back once")
	code, body = d.do("POST", "/v1/charges/"+c.ID+"/refunds", map[string]any{"refund_fee": 400, "refund_id": "T-1"})
	require.Equal(t, 202, code, "%s", body)
	assert.Len(t, g.ledger(t).Refunds, 1, "the same refund_id asks nothing new")
}

// The till's own lines on the lane's pole display (2 × 20) between
// payments, through a real tty; a payment takes the screen over, and the
// lines do not come back over its result.
func TestTillLinesOnAPoleDisplay(t *testing.T) {
	t.Parallel()
	vfd := newPTY(t)
	g := startSandbox(t)
	d := newDaemon(t, g, opts{lanes: `
  - id: L1
    device_info: POS01
    scanners: [{type: stdin}]
    displays:
      - {type: vfd, port: ` + vfd.slave.Name() + `, language: en, encoding: ascii}
`})
	d.start()
	screen := func() [2]string {
		s, _ := display.ParseVFD(vfd.bytes(), "ascii")
		return s
	}
	code, body := d.do("POST", "/v1/lanes/L1/display", map[string]any{"lines": []string{"Apples 2 x 3.50", "Pears 1 x 2.00", "Total 9.00"}, "ttl": "30s"})
	require.Equal(t, 202, code, "%s", body)
	// The pole shows the last two (the latest item, the total); the
	// sandbox marks its second row.
	harness.WaitFor(t, 5*time.Second, func() bool {
		s := screen()
		return s[0] == "Pears 1 x 2.00" && strings.HasSuffix(s[1], "Total 9.00")
	}, "the till's lines on the pole")
	code, _ = d.do("POST", "/v1/lanes/L1/display", map[string]any{"lines": []string{"bad \x1b@ control"}})
	assert.Equal(t, 422, code, "a control byte is a command to a pole display: refused")

	c := d.openCharge("L1", 700)
	harness.WaitFor(t, 5*time.Second, func() bool { return screen()[0] == "Please pay" }, "the payment takes the screen")
	d.scan(harness.AlipayCode(7))
	require.Equal(t, "paid", d.settle(c.ID, 10*time.Second).State)
	harness.WaitFor(t, 5*time.Second, func() bool { return screen()[0] == "Paid. Thank you!" }, "the result shown")
	time.Sleep(500 * time.Millisecond)
	assert.Equal(t, "Paid. Thank you!", screen()[0], "the till's old lines do not cover the result")
}

// A till that loses its event stream reconnects with the last id it saw
// and misses nothing that happened meanwhile.
func TestEventsResumeAfterReconnect(t *testing.T) {
	t.Parallel()
	g := startSandbox(t)
	d := newDaemon(t, g, opts{})
	d.start()
	type ev struct {
		id   string
		kind string
		cid  string
	}
	read := func(ctx context.Context, last string, until func([]ev) bool) ([]ev, http.Header) {
		req, err := http.NewRequestWithContext(ctx, "GET", "http://posd/v1/events?lane=L1", nil)
		require.NoError(t, err)
		if last != "" {
			req.Header.Set("Last-Event-ID", last)
		}
		hc := *d.http
		hc.Timeout = 0
		resp, err := hc.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
		var got []ev
		var id string
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() && !until(got) {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "id: "); ok {
				id = v
			}
			if v, ok := strings.CutPrefix(line, "data: "); ok {
				var e struct {
					Kind     string `json:"kind"`
					ChargeID string `json:"charge_id"`
				}
				require.NoError(t, json.Unmarshal([]byte(v), &e))
				got = append(got, ev{id, e.Kind, e.ChargeID})
			}
		}
		return got, resp.Header
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// First connection: the till sees charge A opened, then goes away.
	opened := make(chan []ev, 1)
	go func() {
		got, _ := read(ctx, "", func(g []ev) bool { return len(g) > 0 && g[len(g)-1].kind == "awaiting_scan" })
		opened <- got
	}()
	time.Sleep(200 * time.Millisecond) // subscribed
	a := d.openCharge("L1", 500)
	var first []ev
	select {
	case first = <-opened:
	case <-ctx.Done():
		t.Fatal("no event for the opened charge")
	}
	last := first[len(first)-1]
	require.Equal(t, a.ID, last.cid)
	require.NotEmpty(t, last.id, "each event carries its id")

	// While the till is away: A is paid, B opened.
	d.scan(harness.AlipayCode(7))
	require.Equal(t, "paid", d.settle(a.ID, 10*time.Second).State)
	b := d.openCharge("L1", 300)

	got, hdr := read(ctx, last.id, func(g []ev) bool { return len(g) > 0 && g[len(g)-1].cid == b.ID })
	assert.Empty(t, hdr.Get("X-Events-Missed"), "nothing missed")
	var kinds []string
	for _, e := range got {
		kinds = append(kinds, e.cid+" "+e.kind)
		assert.NotEqual(t, last.id, e.id, "what the till saw is not sent again")
	}
	assert.Contains(t, kinds, a.ID+" paid", "the payment made while away")
	assert.Equal(t, b.ID+" awaiting_scan", kinds[len(kinds)-1])

	// An id from before a restart (or unknown) says some were missed.
	_, hdr = read(ctx, "nosuchid-1", func([]ev) bool { return true })
	assert.Equal(t, "true", hdr.Get("X-Events-Missed"))
}
