package e2e

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/hq"
	"example.com/posd/payment/sandbox"
	"example.com/posd/test/harness"
)

// The store topology of the README ("The head office") as docs/fleet has
// it, run by real nats-server processes: head office's server (hq.conf)
// and two stores' (store.conf), leaf nodes of it; each store's stream
// (store-stream.json) and head office's, which sources them
// (hq-stream.json). A box in each store publishes to its store's server.
// While head office is down the boxes' outboxes drain into their stores'
// streams; when it is back, posd-hq gets every order of both stores as
// the boxes' journals have it.
func TestStoreLeafNodes(t *testing.T) {
	t.Parallel()
	c := startChain(t)
	g := startSandbox(t)
	ctx := context.Background()

	dbPath := filepath.Join(t.TempDir(), "hq.db")
	startProc(t, c.hqBin, nil, "-nats", c.hubURL, "-creds", c.hq.SeedFile, "-db", dbPath, "-listen", "127.0.0.1:0")
	boxes := map[string]*posdProc{}
	for id, s := range c.stores {
		boxes[id] = newDaemon(t, g, opts{store: id, extra: "fleet: {url: \"" + s.URL + "\", credentials_file: " + s.Boxes[0].SeedFile + ", box: POS1}\n"})
		boxes[id].start()
	}
	pay := func(n int) {
		for _, d := range boxes {
			for range n {
				c := d.openCharge("L1", 1000)
				d.scan(harness.AlipayCode(7))
				require.Equal(t, "paid", d.settle(c.ID, 15*time.Second).State)
			}
		}
	}
	store, err := hq.Open(ctx, dbPath)
	require.NoError(t, err)
	defer store.Close()
	atHQ := func(what string) {
		for s, d := range boxes {
			waitOutboxDrained(t, d, s)
			want := boxOrders(t, d)
			var got map[string]hq.Order
			harness.WaitFor(t, 60*time.Second, func() bool {
				got, err = store.Orders(ctx, sandbox.MerchantID, s)
				return err == nil && assert.ObjectsAreEqual(want, got)
			}, s+"'s orders at head office as in its journal, "+what)
		}
	}
	pay(2)
	atHQ("through the leaf link")

	// Head office goes away: the stores keep what the boxes publish (their
	// outboxes drain all the same), and head office sources it when back.
	c.hub.kill()
	pay(2)
	for s, d := range boxes {
		waitOutboxDrained(t, d, s+", into its store's stream while head office is away,")
	}
	c.hub.start()
	atHQ("after head office came back")
	n, err := store.Count(ctx, "order")
	require.NoError(t, err)
	assert.Equal(t, 8, n, "every order of both stores exactly once")
	// Head office's stream holds each version of each record once: not a
	// copy by another path (a leaf link carrying the lanes' publishes, a
	// store's stream capturing another's).
	hs := c.hubStream(t)
	info, err := hs.Info(ctx)
	require.NoError(t, err)
	ids := map[string]int{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := hs.GetMsg(ctx, seq)
		require.NoError(t, err)
		ids[m.Header.Get(jetstream.MsgIDHeader)]++
	}
	for id, k := range ids {
		assert.Equal(t, 1, k, "message %s at head office %d times", id, k)
	}
}

// jetStream connects to a server once it takes connections.
func jetStream(t *testing.T, url string, opts ...nats.Option) jetstream.JetStream {
	var js jetstream.JetStream
	harness.WaitFor(t, 10*time.Second, func() bool {
		nc, err := nats.Connect(url, opts...)
		if err != nil {
			return false
		}
		t.Cleanup(nc.Close)
		js, err = jetstream.New(nc)
		return err == nil
	}, "NATS at "+url)
	return js
}

// waitOutboxDrained waits until a box's stream acknowledged all of its
// outbox.
func waitOutboxDrained(t *testing.T, d *posdProc, what string) {
	var fs struct {
		Status struct {
			Pending uint64 `json:"pending"`
		} `json:"status"`
	}
	var last []byte
	defer func() {
		if t.Failed() {
			t.Logf("the box's fleet status: %s", last)
		}
	}()
	harness.WaitFor(t, 30*time.Second, func() bool {
		_, last = d.do("GET", "/v1/fleet", nil)
		return json.Unmarshal(last, &fs) == nil && fs.Status.Pending == 0
	}, what+" outbox drained")
}

// boxOrders is every order of a box's journal as the head office must
// hold it.
func boxOrders(t *testing.T, d *posdProc) map[string]hq.Order {
	_, body := d.do("GET", "/v1/orders?state=all", nil)
	var orders struct {
		Orders []struct {
			MchTradeID string `json:"mch_trade_id"`
			State      string `json:"state"`
			Phase      string `json:"phase"`
			Version    uint64 `json:"version"`
		} `json:"orders"`
	}
	require.NoError(t, json.Unmarshal(body, &orders))
	want := map[string]hq.Order{}
	for _, o := range orders.Orders {
		want[o.MchTradeID] = hq.Order{Version: o.Version, State: o.State, Phase: o.Phase}
	}
	return want
}
