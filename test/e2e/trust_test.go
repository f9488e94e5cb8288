package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/fleet/wire"
	"example.com/posd/internal/hq"
	"example.com/posd/payment/sandbox"
	"example.com/posd/test/harness"
)

const merchant = sandbox.MerchantID

// order is a box's message of an order, as internal/fleet writes it.
func order(store, lane, id, state string, version uint64) []byte {
	b, _ := json.Marshal(map[string]any{"type": "order", "merchant": merchant, "store": store, "lane": lane, "version": version,
		"changed_at": time.Now().UTC(), "created_at": time.Now().UTC(), "mch_trade_id": id, "state": state, "phase": "done",
		"wallet": "alipay", "total_fee": 1000})
	return b
}

// connect connects to a NATS server; its errors (a permission refused)
// come on the returned channel.
func connect(t *testing.T, url string, auth nats.Option, more ...nats.Option) (*nats.Conn, <-chan error) {
	t.Helper()
	errs := make(chan error, 64)
	opts := append(more, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	}))
	if auth != nil {
		opts = append(opts, auth)
	}
	nc, err := nats.Connect(url, opts...)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc, errs
}

// publish publishes a record to JetStream and waits for the stream's ack.
func publish(js jetstream.JetStream, subject, msgID string, data []byte) (*jetstream.PubAck, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m := nats.NewMsg(subject)
	m.Data = data
	if msgID != "" {
		m.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	return js.PublishMsg(ctx, m)
}

func streamMsgs(t *testing.T, st jetstream.Stream, filter string) uint64 {
	t.Helper()
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(filter))
	require.NoError(t, err)
	var n uint64
	for _, k := range info.State.Subjects {
		n += k
	}
	return n
}

// A store whose server is set up to take more than its store (its leaf
// link without a single deny rule), run by someone holding everything
// the store has (its admin key, its server's config with the leaf
// password), is confined by head office's server alone: it reads nothing
// of another store or of head office (not even posd-hq's deliveries),
// drives no JetStream but its own, cannot log in at head office, and
// what it puts in its own stream reaches head office as its own store's,
// whatever it claims: posd-hq keeps the other store's record as its box
// sent it.
func TestHeadOfficeConfinesARogueStore(t *testing.T) {
	t.Parallel()
	c := startChain(t, "S001")
	ctx := context.Background()
	s1, s2 := c.stores["S001"], c.stores["S002"]
	dbPath := filepath.Join(t.TempDir(), "hq.db")
	startProc(t, c.hqBin, nil, "-nats", c.hubURL, "-creds", c.hq.SeedFile, "-db", dbPath, "-listen", "127.0.0.1:0")
	db, err := hq.Open(ctx, dbPath)
	require.NoError(t, err)
	defer db.Close()

	// The rogue listens to everything its server carries, its leaf link
	// included.
	rogue, _ := connect(t, s1.URL, s1.Admin.Auth)
	var mu sync.Mutex
	var heard []string
	_, err = rogue.Subscribe(">", func(m *nats.Msg) {
		mu.Lock()
		heard = append(heard, m.Subject+" "+string(m.Data))
		mu.Unlock()
	})
	require.NoError(t, err)
	require.NoError(t, rogue.Flush())

	// Store S002's box sells; head office sources it and posd-hq stores it.
	box2, _ := connect(t, s2.URL, s2.Boxes[0].Auth, nats.CustomInboxPrefix(wire.Inbox("POS1")))
	js2, err := jetstream.New(box2)
	require.NoError(t, err)
	for v := uint64(1); v <= 2; v++ {
		_, err = publish(js2, "posd."+merchant+".S002.L1.orders", fmt.Sprint("S002-A-", v), order("S002", "L1", "S002_POS1_A", []string{"", "paying", "paid"}[v], v))
		require.NoError(t, err, "S002's box publishes its record")
	}
	hub := c.hubStream(t)
	harness.WaitFor(t, 60*time.Second, func() bool { return streamMsgs(t, hub, "posd.*.S002.>") == 2 }, "S002's record at head office")
	harness.WaitFor(t, 60*time.Second, func() bool {
		got, err := db.Orders(ctx, merchant, "S002")
		return err == nil && got["S002_POS1_A"].Version == 2
	}, "S002's record stored by posd-hq")

	// Head office's and the other store's JetStream, through the link.
	before := map[string]uint64{"hq": streamMsgs(t, hub, ">"), "s002": streamMsgs(t, stream(t, s2), ">")}
	for _, api := range []string{"$JS.hq.API", "$JS.s002.API"} {
		for _, call := range []string{"STREAM.PURGE.POSD", "STREAM.DELETE.POSD", "STREAM.INFO.POSD", "STREAM.NAMES", "CONSUMER.CREATE.POSD"} {
			_, err := rogue.Request(api+"."+call, []byte(`{}`), 500*time.Millisecond)
			assert.Error(t, err, "%s.%s answered for a rogue store", api, call)
		}
	}
	assert.Equal(t, before["hq"], streamMsgs(t, hub, ">"), "head office's stream")
	assert.Equal(t, before["s002"], streamMsgs(t, stream(t, s2), ">"), "store S002's stream")

	// What the rogue puts in its own stream, claiming S002, at a version
	// meant to pin S002's record for good.
	forged := order("S002", "L1", "S002_POS1_A", "refunded", 1<<63-1)
	for _, subj := range []string{"posd." + merchant + ".S002.L1.orders", "posd." + merchant + ".S001.x." + merchant + ".S002.L1.orders", "posd." + merchant + ".S001.L1.orders"} {
		_, err := publish(jsOf(t, rogue), subj, "", forged)
		require.NoError(t, err, "the rogue's own stream takes %s", subj)
	}
	// Head office sources records (subjects of five tokens) and names the
	// store each came through: the one of seven tokens stays in the
	// store, the others arrive as store S001's.
	harness.WaitFor(t, 60*time.Second, func() bool { return streamMsgs(t, hub, ">") == before["hq"]+2 }, "the rogue's records at head office")
	assert.Equal(t, uint64(2), streamMsgs(t, hub, "posd.*.S001.L1.orders"), "the rogue's records, as store S001's")
	assert.Equal(t, uint64(2), streamMsgs(t, hub, "posd.*.S002.>"), "records at head office under S002's subjects: only S002's")
	// posd-hq refuses them (their subjects are S001's or not a record's);
	// a record S002's box sends later is stored.
	_, err = publish(js2, "posd."+merchant+".S002.L1.orders", "S002-A-3", order("S002", "L1", "S002_POS1_A", "refunding", 3))
	require.NoError(t, err)
	harness.WaitFor(t, 60*time.Second, func() bool {
		got, err := db.Orders(ctx, merchant, "S002")
		return err == nil && got["S002_POS1_A"].Version == 3
	}, "S002's next version stored")
	got, err := db.Orders(ctx, merchant, "S002")
	require.NoError(t, err)
	assert.Equal(t, "refunding", got["S002_POS1_A"].State, "S002's record as its box sent it")

	time.Sleep(200 * time.Millisecond) // what crosses the link would be here by now
	mu.Lock()
	for _, h := range heard {
		if !strings.Contains(h, `"version":9223372036854775807`) { // not its own forgery
			assert.NotContains(t, h, "S002_POS1_A", "the rogue store heard another store's record")
		}
	}
	mu.Unlock()

	// The keys a store holds are no logins at head office, nor at
	// another store.
	for what, auth := range map[string]nats.Option{"the store's admin key": s1.Admin.Auth, "a box's key": s1.Boxes[0].Auth,
		"the leaf password": nats.UserInfo("s001", "change-me-s001")} {
		nc, err := nats.Connect(c.hubURL, auth, nats.MaxReconnects(0))
		if err == nil {
			nc.Close()
		}
		assert.Error(t, err, "%s logs in at head office", what)
	}
	nc, err := nats.Connect(s2.URL, s1.Admin.Auth, nats.MaxReconnects(0))
	if err == nil {
		nc.Close()
	}
	assert.Error(t, err, "S001's admin key at store S002")
}

// A box's key publishes its own lanes' records and its own, hears its own
// acks, and nothing else: not its neighbour's lane, not another store's
// or merchant's subjects, not another box's replies; and it cannot spend
// another box's next message id so that the stream drops that box's
// record as a copy.
func TestABoxStaysInItsLane(t *testing.T) {
	t.Parallel()
	c := startChain(t)
	s1 := c.stores["S001"]
	st := stream(t, s1)
	pos1, errs := connect(t, s1.URL, s1.Boxes[0].Auth, nats.CustomInboxPrefix(wire.Inbox("POS1")))
	js1 := jsOf(t, pos1)
	p := "posd." + merchant + ".S001."
	for _, subj := range []string{p + "L1.orders", p + "POS1.devices"} {
		_, err := publish(js1, subj, "", order("S001", "L1", "S001_POS1_A", "paid", 1))
		require.NoError(t, err, "box POS1 publishes %s", subj)
	}
	for _, subj := range []string{p + "L2.orders", p + "POS2.devices", "posd." + merchant + ".S002.L1.orders",
		p + "x." + merchant + ".S002.L1.orders", "posd.M2.S001.L1.orders", "$JS.API.STREAM.PURGE.POSD", "$JS.s002.API.STREAM.INFO.POSD"} {
		_, err := publish(js1, subj, "", order("S002", "L1", "S002_POS1_A", "paid", 1))
		assert.Error(t, err, "box POS1 publishes %s", subj)
	}
	assert.Equal(t, uint64(2), streamMsgs(t, st, ">"), "the store's stream: box POS1's two records")

	// Another box's replies.
	var heard sync.Map
	for _, subj := range []string{">", "posd.>", "_INBOX.>", "_INBOX_POS2.>", "$JS.>"} {
		_, err := pos1.Subscribe(subj, func(m *nats.Msg) { heard.Store(m.Subject, true) })
		require.NoError(t, err)
		select {
		case err := <-errs:
			assert.True(t, errors.Is(err, nats.ErrPermissionViolation), "subscribing %s: %v", subj, err)
		case <-time.After(2 * time.Second):
			t.Errorf("box POS1 subscribed %s", subj)
		}
	}

	// Box POS2's next record, with the ids box POS1 can compute.
	seed2, err := os.ReadFile(s1.Boxes[1].SeedFile)
	require.NoError(t, err)
	seed1, err := os.ReadFile(s1.Boxes[0].SeedFile)
	require.NoError(t, err)
	real := wire.MsgID(wire.IDKey(strings.TrimSpace(string(seed2))), merchant, "S001", "order", "S001_POS2_B", 1)
	for _, guess := range []string{wire.MsgID(nil, merchant, "S001", "order", "S001_POS2_B", 1),
		wire.MsgID(wire.IDKey(strings.TrimSpace(string(seed1))), merchant, "S001", "order", "S001_POS2_B", 1)} {
		require.NotEqual(t, real, guess)
		_, err := publish(js1, p+"L1.orders", guess, order("S001", "L2", "S001_POS2_B", "failed", 1))
		require.NoError(t, err)
	}
	pos2, _ := connect(t, s1.URL, s1.Boxes[1].Auth, nats.CustomInboxPrefix(wire.Inbox("POS2")))
	ack, err := publish(jsOf(t, pos2), p+"L2.orders", real, order("S001", "L2", "S001_POS2_B", "paid", 1))
	require.NoError(t, err, "box POS2 publishes its record")
	assert.False(t, ack.Duplicate, "box POS2's record taken for a copy of box POS1's")
	time.Sleep(100 * time.Millisecond)
	heard.Range(func(k, _ any) bool {
		t.Errorf("box POS1 heard %s", k)
		return true
	})
}

func jsOf(t *testing.T, nc *nats.Conn) jetstream.JetStream {
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return js
}

// stream is a store's stream, as its admin sees it.
func stream(t *testing.T, s *chainStore) jetstream.Stream {
	st, err := jetStream(t, s.URL, s.Admin.Auth).Stream(context.Background(), "POSD")
	require.NoError(t, err)
	return st
}

// leafLink is a leaf connection to head office made with nothing but a
// store's leaf password (as its store.conf holds it): no store server.
type leafLink struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dialLeaf(t *testing.T, addr, user, password string) *leafLink {
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	l := &leafLink{t: t, conn: conn, r: bufio.NewReader(conn)}
	fmt.Fprintf(conn, "CONNECT {\"user\":%q,\"pass\":%q,\"headers\":true,\"name\":\"rogue\",\"server_id\":\"NROGUE\",\"version\":\"2.15.2\"}\r\nPING\r\n", user, password)
	l.until(func(line string) bool { return line == "PONG\r\n" })
	return l
}

// until reads the link's protocol lines until done says so.
func (l *leafLink) until(done func(string) bool) {
	l.t.Helper()
	require.NoError(l.t, l.conn.SetReadDeadline(time.Now().Add(30*time.Second)))
	for {
		line, err := l.r.ReadString('\n')
		require.NoError(l.t, err)
		require.False(l.t, strings.HasPrefix(line, "-ERR"), line)
		if done(line) {
			return
		}
	}
}

// send sends one message with a raw header block (a status line, as a
// consumer's flow control and heartbeats have) and waits for the server.
func (l *leafLink) send(subject, reply, hdr, body string) {
	if reply != "" {
		reply += " "
	}
	fmt.Fprintf(l.conn, "HMSG %s %s%d %d\r\n%s%s\r\nPING\r\n", subject, reply, len(hdr), len(hdr)+len(body), hdr, body)
	l.until(func(line string) bool { return line == "PONG\r\n" })
}

// A store's leaf password alone, or a rogue store server, forging what a
// sourcing consumer sends (a flow control whose answer is head office's
// purge, a heartbeat "stalled" naming head office's delete, a delivery
// of a subject head office does not rewrite) reaches the store's relay
// at most: head office's stream keeps every record, and takes nothing
// that is not a record of the store it came through.
func TestALeafPasswordCannotReachHeadOfficesStream(t *testing.T) {
	t.Parallel()
	c := startChain(t, "S001")
	s1, s2 := c.stores["S001"], c.stores["S002"]
	box2, _ := connect(t, s2.URL, s2.Boxes[0].Auth, nats.CustomInboxPrefix(wire.Inbox("POS1")))
	js2 := jsOf(t, box2)
	for i := range 3 {
		_, err := publish(js2, "posd."+merchant+".S002.L1.orders", "", order("S002", "L1", fmt.Sprint("S002_POS1_", i), "paid", 1))
		require.NoError(t, err)
	}
	hub := c.hubStream(t)
	harness.WaitFor(t, 60*time.Second, func() bool { return streamMsgs(t, hub, ">") == 3 }, "S002's records at head office")

	// The rogue store's admin hears its own server deliver to its relay
	// (the delivery subject, the consumer, its sequence).
	rogue, _ := connect(t, s1.URL, s1.Admin.Auth)
	heard := make(chan *nats.Msg, 64)
	_, err := rogue.ChanSubscribe("posd-deliver.>", heard)
	require.NoError(t, err)
	require.NoError(t, rogue.Flush())
	_, err = publish(jsOf(t, rogue), "posd."+merchant+".S001.L1.orders", "", order("S001", "L1", "S001_POS1_OWN", "paid", 1))
	require.NoError(t, err)
	var deliver, ack string
	for deliver == "" {
		select {
		case m := <-heard:
			if strings.HasPrefix(m.Reply, "$JS.ACK.") {
				deliver, ack = m.Subject, m.Reply
			}
		case <-time.After(60 * time.Second):
			t.Fatal("no delivery to the relay heard")
		}
	}
	harness.WaitFor(t, 60*time.Second, func() bool { return streamMsgs(t, hub, ">") == 4 }, "S001's record at head office")

	link := dialLeaf(t, c.leafAddr, "s001", "change-me-s001")
	for _, target := range []string{"$JS.API.STREAM.PURGE.POSD", "$JS.API.STREAM.DELETE.POSD", "$JS.API.CONSUMER.DELETE.POSD.posd-hq"} {
		link.send(deliver, "", "NATS/1.0 100 Idle Heartbeat\r\nNats-Consumer-Stalled: "+target+"\r\n\r\n", "")
		link.send(deliver, target, "NATS/1.0 100 FlowControl Request\r\n\r\n", "")
	}
	// A delivery of a subject that is no record's: v1 ack reply
	// $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>,
	// the subject after the @ as a link carries it.
	tok := strings.Split(ack, ".")
	require.GreaterOrEqual(t, len(tok), 9, ack)
	var sseq, dseq uint64
	fmt.Sscan(tok[5], &sseq)
	fmt.Sscan(tok[6], &dseq)
	forged := string(order("S002", "L1", "S002_POS1_0", "refunded", 1<<40))
	for i, subj := range []string{"posd." + merchant + ".S002.L1.orders.x", "posd." + merchant + ".S002.L1"} {
		reply := fmt.Sprintf("$JS.ACK.%s.%s.1.%d.%d.%d.0@%s", tok[2], tok[3], sseq+uint64(i)+1, dseq+uint64(i)+1, time.Now().UnixNano(), subj)
		link.send(deliver, reply, "NATS/1.0\r\n\r\n", forged)
	}

	// Head office's stream still holds every record of the other store,
	// and one published now arrives; the rogue's forgeries are at most
	// its own store's records over again (a sourcing restarted), never a
	// subject of another store or none.
	_, err = publish(js2, "posd."+merchant+".S002.L1.orders", "", order("S002", "L1", "S002_POS1_3", "paid", 1))
	require.NoError(t, err)
	harness.WaitFor(t, 60*time.Second, func() bool { return streamMsgs(t, c.hubStream(t), "posd.*.S002.>") == 4 }, "head office's stream, whole, taking S002's next record")
	info, err := c.hubStream(t).Info(context.Background(), jetstream.WithSubjectFilter(">"))
	require.NoError(t, err)
	for subj := range info.State.Subjects {
		assert.Contains(t, []string{"posd." + merchant + ".S002.L1.orders", "posd." + merchant + ".S001.L1.orders"}, subj)
	}
}

// Head office takes a store's backlog whatever its size: the flow
// control's answers find their way back to the store's relay (a
// sourcing consumer stops for good once about 2 MB go unanswered).
func TestHeadOfficeTakesABacklogOfMegabytes(t *testing.T) {
	t.Parallel()
	c := startChain(t)
	s2 := c.stores["S002"]
	box2, _ := connect(t, s2.URL, s2.Boxes[0].Auth, nats.CustomInboxPrefix(wire.Inbox("POS1")))
	js2 := jsOf(t, box2)
	const n = 500
	pad := strings.Repeat("x", 10_000) // 5 MB in all
	for i := range n {
		b, _ := json.Marshal(map[string]any{"type": "order", "merchant": merchant, "store": "S002", "lane": "L1", "version": 1,
			"mch_trade_id": fmt.Sprint("S002_POS1_", i), "state": "paid", "phase": "done", "body": pad})
		_, err := js2.PublishAsync("posd."+merchant+".S002.L1.orders", b)
		require.NoError(t, err)
	}
	select {
	case <-js2.PublishAsyncComplete():
	case <-time.After(60 * time.Second):
		t.Fatal("the store's stream did not take the backlog")
	}
	harness.WaitFor(t, 120*time.Second, func() bool { return streamMsgs(t, c.hubStream(t), ">") == n }, "the whole backlog at head office")
}
