package hq

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/natstest"
)

// topo is docs/fleet's topology run in this process: head office's server
// and two stores', leaf nodes of it, with their streams.
type topo struct {
	hub         *server.Server
	hubURL      string
	storeURL    map[string]string        // by domain
	admin, hq   natstest.User            // head office's
	lanes       map[string]natstest.User // box POS1's (lane L1), by domain
	storeAdmin  map[string]natstest.User // by domain
	hubStream   jetstream.Stream
	storeStream map[string]jetstream.Stream
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// startConf starts a server on a configuration file.
func startConf(t *testing.T, path string) *server.Server {
	o, err := server.ProcessConfigFile(path)
	require.NoError(t, err)
	o.NoLog, o.NoSigs = true, true
	ns, err := server.NewServer(o)
	require.NoError(t, err)
	go ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second))
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

// connectAs connects as a user; nil: with no credentials.
func connectAs(t *testing.T, url string, auth nats.Option, more ...nats.Option) (*nats.Conn, error) {
	opts := more
	if auth != nil {
		opts = append(opts, auth)
	}
	nc, err := nats.Connect(url, opts...)
	if err == nil {
		t.Cleanup(nc.Close)
	}
	return nc, err
}

func startTopology(t *testing.T) *topo {
	ctx := context.Background()
	tp := &topo{admin: natstest.NewUser(t), hq: natstest.NewUser(t), storeURL: map[string]string{}, lanes: map[string]natstest.User{},
		storeAdmin: map[string]natstest.User{}, storeStream: map[string]jetstream.Stream{}}
	hubAddr, leafAddr := freeAddr(t), freeAddr(t)
	tp.hubURL = "nats://" + hubAddr
	tp.hub = startConf(t, natstest.HQConf(t, hubAddr, leafAddr, tp.hq, tp.admin))
	for _, d := range []string{"s001", "s002"} {
		addr := freeAddr(t)
		tp.storeURL[d], tp.lanes[d], tp.storeAdmin[d] = "nats://"+addr, natstest.NewUser(t), natstest.NewUser(t)
		startConf(t, natstest.StoreConf(t, natstest.Store{Merchant: "M1", ID: strings.ToUpper(d), Domain: d, Client: addr, HQLeaf: leafAddr,
			Boxes: [2]natstest.User{tp.lanes[d], natstest.NewUser(t)}, Admin: tp.storeAdmin[d]}))
		nc, err := connectAs(t, tp.storeURL[d], tp.storeAdmin[d].Auth)
		require.NoError(t, err)
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		tp.storeStream[d], err = js.CreateStream(ctx, natstest.FleetStream(t, "store-stream.json"))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return tp.hub.NumLeafNodes() == 2 }, 10*time.Second, 20*time.Millisecond)
	nc, err := connectAs(t, tp.hubURL, tp.admin.Auth)
	require.NoError(t, err)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	for _, d := range []string{"s001", "s002"} {
		natstest.Relay(t, nc, strings.ToUpper(d), d)
	}
	tp.hubStream, err = js.CreateStream(ctx, natstest.FleetStream(t, "hq-stream.json", "MERCHANT", "M1"))
	require.NoError(t, err, "hq-stream.json on hq.conf, as written")
	return tp
}

func msgs(t *testing.T, st jetstream.Stream) uint64 {
	info, err := st.Info(context.Background())
	require.NoError(t, err)
	return info.State.Msgs
}

// docs/fleet's topology keeps stores apart and head office out of a
// store's reach: nobody connects without a key; a store's lanes publish
// their own store's records and nothing else; what they publish is kept
// in their store's stream only (not another store's) and reaches head
// office once, through its sourcing; nothing in a store reaches head
// office's JetStream.
func TestTopologyKeepsStoresApart(t *testing.T) {
	tp := startTopology(t)
	ctx := context.Background()

	for _, url := range []string{tp.hubURL, tp.storeURL["s001"]} {
		_, err := connectAs(t, url, nil)
		assert.Error(t, err, "%s without a key", url)
		_, err = connectAs(t, url, natstest.NewUser(t).Auth)
		assert.Error(t, err, "%s with a key it does not know", url)
	}
	_, err := connectAs(t, tp.hubURL, tp.lanes["s001"].Auth)
	assert.Error(t, err, "a store's lanes at head office")

	nc, err := connectAs(t, tp.storeURL["s001"], tp.lanes["s001"].Auth, nats.CustomInboxPrefix("_INBOX_POS1"))
	require.NoError(t, err)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	m := nats.NewMsg("posd.M1.S001.L1.orders")
	m.Data = []byte(`{"type":"order"}`)
	m.Header.Set(jetstream.MsgIDHeader, "M1:S001:order:S001_POS1_A:1")
	ack, err := js.PublishMsg(ctx, m)
	require.NoError(t, err, "the lanes publish their store's records")
	assert.Equal(t, "s001", ack.Domain)

	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	_, err = js.Publish(short, "posd.M1.S002.L1.orders", []byte(`{"type":"order"}`))
	assert.Error(t, err, "the lanes of s001 publish as store s002")
	hqjs, err := jetstream.NewWithDomain(nc, "hq")
	require.NoError(t, err)
	_, err = hqjs.Stream(short, "POSD")
	assert.Error(t, err, "the lanes reach head office's JetStream")

	admin, err := connectAs(t, tp.storeURL["s001"], tp.storeAdmin["s001"].Auth)
	require.NoError(t, err)
	hqjs, err = jetstream.NewWithDomain(admin, "hq")
	require.NoError(t, err)
	short2, cancel2 := context.WithTimeout(ctx, 2*time.Second)
	defer cancel2()
	_, err = hqjs.Stream(short2, "POSD")
	assert.Error(t, err, "a store's operator reaches head office's JetStream through the leaf link")
	s2js, err := jetstream.NewWithDomain(admin, "s002")
	require.NoError(t, err)
	_, err = s2js.Stream(short2, "POSD")
	assert.Error(t, err, "a store reaches another store's JetStream")

	require.Eventually(t, func() bool { return msgs(t, tp.hubStream) == 1 }, 15*time.Second, 20*time.Millisecond, "sourced to head office")
	time.Sleep(300 * time.Millisecond) // a copy by another path would be there by now
	assert.Equal(t, uint64(1), msgs(t, tp.hubStream), "once at head office")
	assert.Equal(t, uint64(1), msgs(t, tp.storeStream["s001"]))
	assert.Zero(t, msgs(t, tp.storeStream["s002"]), "store s001's order in store s002's stream")

	// posd-hq's key reads head office's stream; a store's lanes' does not.
	hqc, err := connectAs(t, tp.hubURL, tp.hq.Auth)
	require.NoError(t, err)
	hjs, err := jetstream.New(hqc)
	require.NoError(t, err)
	_, err = hjs.Stream(ctx, "POSD")
	assert.NoError(t, err)
}

// A record is taken only on exactly the subject its merchant, store, lane
// and kind make under the configured prefix: a box can publish only under
// its own store's subjects, its body cannot claim another store, and
// tokens of its own before another store's subject do not pass as a
// prefix.
func TestRecordOnlyOnItsExactSubject(t *testing.T) {
	r, err := Parse(msg("order", "S002", "S002_POS1_X", "paid", "done", 1<<40, 99999900, 0, time.Now()))
	require.NoError(t, err)
	assert.Error(t, fromItsSubject(&r, "posd", "posd.M1.S001.L1.orders"), "another store's record under S001's subject")
	assert.NoError(t, fromItsSubject(&r, "posd", "posd.M1.S002.L1.orders"))
	assert.Error(t, fromItsSubject(&r, "posd", "posd.M1.S001.x.M1.S002.L1.orders"), "S001's lane publishing S002's subject as its tail")
	assert.Error(t, fromItsSubject(&r, "posd", "acme.posd.M1.S002.L1.orders"), "a prefix of two tokens, not the configured one")
	assert.NoError(t, fromItsSubject(&r, "acme.posd", "acme.posd.M1.S002.L1.orders"), "a prefix of two tokens, configured")
	assert.Error(t, fromItsSubject(&r, "acme.posd", "posd.M1.S002.L1.orders"), "not under the configured prefix")
	assert.Error(t, fromItsSubject(&r, "posd", "posd.M1.S002.L2.orders"), "another lane")
	assert.Error(t, fromItsSubject(&r, "posd", "posd.M1.S002.L1.refunds"), "another kind")
	assert.Error(t, fromItsSubject(&r, "posd", "posd.M2.S002.L1.orders"), "another merchant")
	assert.Error(t, fromItsSubject(&r, "posd", "xM1.S002.L1.orders"))
	assert.Error(t, fromItsSubject(&r, "posd", "posd.M1.S002.L1.orders.more"))
	for _, look := range []string{"S.002", "S*002", "S>002", "S 002"} { // all S_002 on a subject
		r, err := Parse(msg("order", look, "X", "paid", "done", 1, 1, 0, time.Now()))
		require.NoError(t, err)
		assert.Error(t, fromItsSubject(&r, "posd", "posd.M1.S_002.L1.orders"), "store %q passing as S_002", look)
	}
}
