package hq

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/natsauth"
)

// topo is docs/fleet's topology run in this process: head office's server
// and two stores', leaf nodes of it, with their streams.
type topo struct {
	hub         *server.Server
	hubURL      string
	storeURL    map[string]string // by domain
	admin, hq   nkeys.KeyPair
	lanes       map[string]nkeys.KeyPair // by domain
	hubStream   jetstream.Stream
	storeStream map[string]jetstream.Stream
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

func newKey(t *testing.T) nkeys.KeyPair {
	kp, err := nkeys.CreateUser()
	require.NoError(t, err)
	return kp
}

func pub(t *testing.T, kp nkeys.KeyPair) string {
	p, err := kp.PublicKey()
	require.NoError(t, err)
	return p
}

// startConf starts docs/fleet/<name> with replacements, each of which
// must apply.
func startConf(t *testing.T, name string, repl ...string) *server.Server {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "fleet", name))
	require.NoError(t, err)
	s := string(b)
	for i := 0; i+1 < len(repl); i += 2 {
		require.Contains(t, s, repl[i], "docs/fleet/%s changed", name)
		s = strings.ReplaceAll(s, repl[i], repl[i+1])
	}
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(s), 0o600))
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

func connectAs(t *testing.T, url string, kp nkeys.KeyPair) (*nats.Conn, error) {
	var opts []nats.Option
	if kp != nil {
		seed, err := kp.Seed()
		require.NoError(t, err)
		auth, err := natsauth.Option(string(seed))
		require.NoError(t, err)
		opts = append(opts, auth)
	}
	nc, err := nats.Connect(url, opts...)
	if err == nil {
		t.Cleanup(nc.Close)
	}
	return nc, err
}

func streamFile(t *testing.T, name string) jetstream.StreamConfig {
	return streamConfigFile(t, filepath.Join("..", "..", "docs", "fleet", name))
}

func startTopology(t *testing.T) *topo {
	ctx := context.Background()
	tp := &topo{admin: newKey(t), hq: newKey(t), storeURL: map[string]string{}, lanes: map[string]nkeys.KeyPair{},
		storeStream: map[string]jetstream.Stream{}}
	hubAddr, leafAddr := freeAddr(t), freeAddr(t)
	tp.hubURL = "nats://" + hubAddr
	tp.hub = startConf(t, "hq.conf",
		"listen: 0.0.0.0:4222", "listen: "+hubAddr,
		"listen: 0.0.0.0:7422", "listen: "+leafAddr,
		"/var/lib/nats", t.TempDir(),
		"  tls {\n    cert_file: /etc/nats/hq.pem\n    key_file: /etc/nats/hq.key\n  }\n", "",
		"tls {\n  cert_file: /etc/nats/hq.pem\n  key_file: /etc/nats/hq.key\n}\n", "",
		"POSD_HQ_PUBLIC_NKEY", pub(t, tp.hq), "ADMIN_PUBLIC_NKEY", pub(t, tp.admin))
	for _, d := range []string{"s001", "s002"} {
		addr := freeAddr(t)
		tp.storeURL[d], tp.lanes[d] = "nats://"+addr, newKey(t)
		startConf(t, "store.conf",
			"s001", d, "S001", strings.ToUpper(d),
			"listen: 0.0.0.0:4222", "listen: "+addr,
			"/var/lib/nats", t.TempDir(),
			"tls://", "nats://", "nats.hq.example:7422", leafAddr,
			"LANES_PUBLIC_NKEY", pub(t, tp.lanes[d]), "ADMIN_PUBLIC_NKEY", pub(t, tp.admin))
		nc, err := connectAs(t, tp.storeURL[d], tp.admin)
		require.NoError(t, err)
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		tp.storeStream[d], err = js.CreateStream(ctx, streamFile(t, "store-stream.json"))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return tp.hub.NumLeafNodes() == 2 }, 10*time.Second, 20*time.Millisecond)
	nc, err := connectAs(t, tp.hubURL, tp.admin)
	require.NoError(t, err)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	tp.hubStream, err = js.CreateStream(ctx, streamFile(t, "hq-stream.json"))
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
		_, err = connectAs(t, url, newKey(t))
		assert.Error(t, err, "%s with a key it does not know", url)
	}
	_, err := connectAs(t, tp.hubURL, tp.lanes["s001"])
	assert.Error(t, err, "a store's lanes at head office")

	nc, err := connectAs(t, tp.storeURL["s001"], tp.lanes["s001"])
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

	admin, err := connectAs(t, tp.storeURL["s001"], tp.admin)
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
	hqc, err := connectAs(t, tp.hubURL, tp.hq)
	require.NoError(t, err)
	hjs, err := jetstream.New(hqc)
	require.NoError(t, err)
	_, err = hjs.Stream(ctx, "POSD")
	assert.NoError(t, err)
}

// A record's body must name the merchant, store, lane and kind its subject
// does: a box can publish only under its own store's subjects, and its
// body cannot claim another store.
func TestRecordFromItsSubject(t *testing.T) {
	r, err := Parse(msg("order", "S002", "S002_POS1_X", "paid", "done", 1<<62, 99999900, 0, time.Now()))
	require.NoError(t, err)
	assert.Error(t, fromItsSubject(&r, "posd.M1.S001.L1.orders"), "another store's record under S001's subject")
	assert.NoError(t, fromItsSubject(&r, "posd.M1.S002.L1.orders"))
	assert.NoError(t, fromItsSubject(&r, "acme.posd.M1.S002.L1.orders"), "a prefix of two tokens")
	assert.Error(t, fromItsSubject(&r, "posd.M1.S002.L2.orders"), "another lane")
	assert.Error(t, fromItsSubject(&r, "posd.M1.S002.L1.refunds"), "another kind")
	assert.Error(t, fromItsSubject(&r, "posd.M2.S002.L1.orders"), "another merchant")
	assert.Error(t, fromItsSubject(&r, "xM1.S002.L1.orders"))
}

func streamConfigFile(t *testing.T, path string) jetstream.StreamConfig {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var c jetstream.StreamConfig
	require.NoError(t, json.Unmarshal(b, &c), path)
	return c
}
