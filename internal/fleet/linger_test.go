package fleet

import (
	"context"
	"example.com/posd/internal/fleet/wire"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"example.com/posd/internal/device"
	"example.com/posd/internal/journal"
	"example.com/posd/internal/journal/journaltest"
	"example.com/posd/internal/money"
	"example.com/posd/internal/natstest"
)

// with Poll far away (an hour), only Wake can make the publisher
// publish. A commit made during the linger is published with the one that
// woke it; one made right after is published promptly too.
func TestWakeDuringLinger(t *testing.T) {
	ns := natstest.Start(t)
	st := natstest.Stream(t, ns.URL(), "POSD", "posd")
	j := journaltest.Open(t)
	j.SetOutbox(true)
	p := New(Options{URL: ns.URL(), Prefix: "posd", Merchant: "M1", Store: "S1", Journal: j, Log: zap.NewNop(), Poll: time.Hour})
	defer run(p)()
	time.Sleep(200 * time.Millisecond) // connected, first (empty) drain done, now waiting on wake/poll

	save := func(id string) {
		now := time.Now()
		o := money.NewOrder(money.Order{MchTradeID: id, Lane: "L1", TotalFee: 100, AuthCode: "281234567890123456"}, now)
		o.State = money.Paying
		require.NoError(t, j.Update(func(tx *journal.Tx) error { _, err := tx.SaveStep(&o, now); return err }))
		p.Wake()
	}
	msgs := func() uint64 {
		info, err := st.Info(context.Background())
		require.NoError(t, err)
		return info.State.Msgs
	}
	began := time.Now()
	save("S1_POS1_A")
	time.Sleep(3 * time.Millisecond) // inside the 10 ms linger
	save("S1_POS1_B")
	require.Eventually(t, func() bool { return msgs() == 2 }, 500*time.Millisecond, 2*time.Millisecond,
		"a commit during the linger is published promptly (Poll is an hour)")
	t.Logf("both published %v after the first commit", time.Since(began))
	began = time.Now()
	save("S1_POS1_C")
	require.Eventually(t, func() bool { return msgs() == 3 }, 500*time.Millisecond, 2*time.Millisecond)
	t.Logf("third published %v after its commit", time.Since(began))
	info, err := st.Info(context.Background())
	require.NoError(t, err)
	t.Logf("stream: %d messages, %d bytes (%d a message)", info.State.Msgs, info.State.Bytes, info.State.Bytes/info.State.Msgs)
}

// a shutdown during the linger leaves the change in the outbox,
// and the next run publishes it.
func TestShutdownDuringLinger(t *testing.T) {
	ns := natstest.Start(t)
	st := natstest.Stream(t, ns.URL(), "POSD", "posd")
	j := journaltest.Open(t)
	j.SetOutbox(true)
	opts := Options{URL: ns.URL(), Prefix: "posd", Merchant: "M1", Store: "S1", Journal: j, Log: zap.NewNop(), Poll: time.Hour, Linger: 500 * time.Millisecond}
	p := New(opts)
	stop := run(p)
	time.Sleep(200 * time.Millisecond)
	now := time.Now()
	o := money.NewOrder(money.Order{MchTradeID: "S1_POS1_A", Lane: "L1", TotalFee: 100, AuthCode: "281234567890123456"}, now)
	require.NoError(t, j.Update(func(tx *journal.Tx) error { _, err := tx.SaveStep(&o, now); return err }))
	p.Wake()
	time.Sleep(20 * time.Millisecond) // lingering
	stop()
	assert.Equal(t, uint64(1), p.Status().Pending, "kept in the outbox")
	info, err := st.Info(context.Background())
	require.NoError(t, err)
	assert.Zero(t, info.State.Msgs)

	opts.Linger = 0
	defer run(New(opts))()
	require.Eventually(t, func() bool {
		info, err := st.Info(context.Background())
		return err == nil && info.State.Msgs == 1
	}, 5*time.Second, 10*time.Millisecond, "published by the next run")
}

// Two stores' boxes set up alike give their devices the same ids (lane,
// role, name; the gateway is "/gateway/gateway" in every box) and the same
// versions (each box's outbox sequence): their Nats-Msg-Ids carry the
// store, or head office's stream (sourcing the stores', docs/fleet) would
// drop one store's device state as a copy of the other's.
func TestDeviceMsgIDsOfTwoStores(t *testing.T) {
	ns := natstest.Start(t)
	nc, err := nats.Connect(ns.URL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	// The leaf topology (docs/fleet): each store's stream, head office's
	// sourcing them, a 2-hour duplicate window on both.
	for _, s := range []string{"S001", "S002"} {
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "STORE_" + s, Subjects: []string{"posd.M1." + s + ".>"},
			Storage: jetstream.FileStorage, Duplicates: 2 * time.Hour})
		require.NoError(t, err)
	}
	hq, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "HQ", Storage: jetstream.FileStorage, Duplicates: 2 * time.Hour,
		Sources: []*jetstream.StreamSource{{Name: "STORE_S001"}, {Name: "STORE_S002"}}})
	require.NoError(t, err)

	var pubs []*Publisher
	for i, s := range []string{"S001", "S002"} {
		j := journaltest.Open(t)
		j.SetOutbox(true)
		state := []device.State{device.Connected, device.Gone}[i]
		gw := device.Health{Role: "gateway", Type: "gateway", Name: "gateway", State: state, Since: time.Now()}
		require.NoError(t, j.Update(func(tx *journal.Tx) error { return tx.AddDevice(gw.Lane, gw.Role+"/"+gw.Name, gw) }))
		pubs = append(pubs, New(Options{URL: ns.URL(), Prefix: "posd", Merchant: "M1", Store: s, Journal: j, Log: zap.NewNop(), Poll: 10 * time.Millisecond}))
	}
	for _, p := range pubs {
		defer run(p)()
	}
	for _, p := range pubs {
		waitEmpty(t, p)
	}
	for _, s := range []string{"S001", "S002"} {
		st, err := js.Stream(ctx, "STORE_"+s)
		require.NoError(t, err)
		info, err := st.Info(ctx)
		require.NoError(t, err)
		assert.Equal(t, uint64(1), info.State.Msgs, "%s's stream has its box's gateway state", s)
	}
	require.Eventually(t, func() bool {
		info, err := hq.Info(ctx)
		return err == nil && info.State.Msgs == 2
	}, 10*time.Second, 20*time.Millisecond, "head office has both stores' gateway states")
	assert.NotEqual(t, wire.MsgID(nil, "M1", "S001", "device", "/gateway/gateway", 1), wire.MsgID(nil, "M1", "S002", "device", "/gateway/gateway", 1))
}
