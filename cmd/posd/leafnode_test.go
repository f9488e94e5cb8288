package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/hq"
	"example.com/posd/payment/sandbox"
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
	hqBin, natsBin := buildFleet(t)
	g := startSandbox(t)
	ctx := context.Background()

	hubAddr, leafAddr := freePort(t), freePort(t)
	hub := startProc(t, natsBin, nil, "-c", natsConf(t, "hq.conf",
		"listen: 0.0.0.0:4222", "listen: "+hubAddr,
		"listen: 0.0.0.0:7422", "listen: "+leafAddr,
		"/var/lib/nats", t.TempDir(),
		"  tls {\n    cert_file: /etc/nats/hq.pem\n    key_file: /etc/nats/hq.key\n  }\n", ""))
	stores := map[string]string{"S001": "s001", "S002": "s002"} // posd's store id → its NATS domain
	storeURL := map[string]string{}
	for s, domain := range stores {
		addr := freePort(t)
		storeURL[s] = "nats://" + addr
		startProc(t, natsBin, nil, "-c", natsConf(t, "store.conf",
			"s001", domain, // server name, domain and leaf user
			"listen: 0.0.0.0:4222", "listen: "+addr,
			"/var/lib/nats", t.TempDir(),
			"tls://", "nats://",
			"nats.hq.example:7422", leafAddr))
		st := streamConfig(t, "store-stream.json")
		_, err := jetStream(t, storeURL[s]).CreateStream(ctx, st)
		require.NoError(t, err, "the store's stream")
	}
	hubStream := streamConfig(t, "hq-stream.json")
	hubStream.Replicas = 1 // one server here, not a cluster
	_, err := jetStream(t, "nats://"+hubAddr).CreateStream(ctx, hubStream)
	require.NoError(t, err, "head office's stream")

	dbPath := filepath.Join(t.TempDir(), "hq.db")
	startProc(t, hqBin, nil, "-nats", "nats://"+hubAddr, "-db", dbPath, "-listen", "127.0.0.1:0")
	boxes := map[string]*posdProc{}
	for s := range stores {
		boxes[s] = newDaemon(t, g, opts{store: s, extra: "fleet: {url: \"" + storeURL[s] + "\"}\n"})
		boxes[s].start()
	}
	pay := func(n int) {
		for _, d := range boxes {
			for range n {
				c := d.openCharge("L1", 1000)
				d.scan(alipayCode(7))
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
			waitFor(t, 60*time.Second, func() bool {
				got, err = store.Orders(ctx, sandbox.MerchantID, s)
				return err == nil && assert.ObjectsAreEqual(want, got)
			}, s+"'s orders at head office as in its journal, "+what)
		}
	}
	pay(2)
	atHQ("through the leaf link")

	// Head office goes away: the stores keep what the boxes publish (their
	// outboxes drain all the same), and head office sources it when back.
	hub.kill()
	pay(2)
	for s, d := range boxes {
		waitOutboxDrained(t, d, s+", into its store's stream while head office is away,")
	}
	hub.start()
	atHQ("after head office came back")
	n, err := store.Count(ctx, "order")
	require.NoError(t, err)
	assert.Equal(t, 8, n, "every order of both stores exactly once")
}

// natsConf writes docs/fleet/<name> with the test's replacements (old,
// new, …); each must apply, so that the docs and this test cannot drift
// apart.
func natsConf(t *testing.T, name string, repl ...string) string {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "fleet", name))
	require.NoError(t, err)
	s := string(b)
	for i := 0; i+1 < len(repl); i += 2 {
		require.Contains(t, s, repl[i], "docs/fleet/%s changed: the test's replacement no longer applies", name)
		s = strings.ReplaceAll(s, repl[i], repl[i+1])
	}
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(s), 0o600))
	return path
}

// streamConfig reads a stream's configuration from docs/fleet, as the
// operator gives it to `nats stream add --config`.
func streamConfig(t *testing.T, name string) jetstream.StreamConfig {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "fleet", name))
	require.NoError(t, err)
	var c jetstream.StreamConfig
	require.NoError(t, json.Unmarshal(b, &c), name)
	return c
}

// jetStream connects to a server once it takes connections.
func jetStream(t *testing.T, url string) jetstream.JetStream {
	var js jetstream.JetStream
	waitFor(t, 10*time.Second, func() bool {
		nc, err := nats.Connect(url)
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
	waitFor(t, 30*time.Second, func() bool {
		_, body := d.do("GET", "/v1/fleet", nil)
		return json.Unmarshal(body, &fs) == nil && fs.Status.Pending == 0
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
