package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/natstest"
	"example.com/posd/payment/sandbox"
	"example.com/posd/test/harness"
)

// chain is docs/fleet's topology run by real nats-server processes: head
// office's server (hq.conf) with each store's relay (relay-stream.json)
// and its own stream (hq-stream.json), and two stores' servers
// (store.conf), leaf nodes of it, with theirs (store-stream.json). Each store has two boxes: POS1 (lane L1) and POS2
// (lane L2), each with its own key.
type chain struct {
	hub            *proc
	hubURL         string
	leafAddr       string // head office's leaf port
	hubAdmin, hq   natstest.User
	stores         map[string]*chainStore // by store id
	natsBin, hqBin string
}

type chainStore struct {
	natstest.Store
	URL    string
	server *proc
}

// startChain starts the chain; rogue names stores whose server's leaf
// link has no deny rules (set up by someone who wants more than their
// store).
func startChain(t *testing.T, rogue ...string) *chain {
	t.Helper()
	c := &chain{hubAdmin: natstest.NewUser(t), hq: natstest.NewUser(t), stores: map[string]*chainStore{}}
	c.hqBin, c.natsBin = buildFleet(t)
	ctx := context.Background()
	hubAddr, leafAddr := harness.FreePort(t), harness.FreePort(t)
	c.hubURL, c.leafAddr = "nats://"+hubAddr, leafAddr
	c.hub = startProc(t, c.natsBin, nil, "-c", natstest.HQConf(t, hubAddr, leafAddr, c.hq, c.hubAdmin))
	for _, id := range []string{"S001", "S002"} {
		s := &chainStore{Store: natstest.Store{Merchant: sandbox.MerchantID, ID: id, Domain: strings.ToLower(id),
			Client: harness.FreePort(t), HQLeaf: leafAddr, Boxes: [2]natstest.User{natstest.NewUser(t), natstest.NewUser(t)},
			Admin: natstest.NewUser(t)}}
		for _, r := range rogue {
			s.NoDenyRules = s.NoDenyRules || r == id
		}
		s.URL = "nats://" + s.Client
		s.server = startProc(t, c.natsBin, nil, "-c", natstest.StoreConf(t, s.Store))
		_, err := jetStream(t, s.URL, s.Admin.Auth).CreateStream(ctx, natstest.FleetStream(t, "store-stream.json"))
		require.NoError(t, err, "store %s's stream", id)
		c.stores[id] = s
	}
	// Each store's relay at head office, made by head office's operator
	// through the store's account's API as head office's account imports it.
	admin := jetStream(t, c.hubURL, c.hubAdmin.Auth)
	for id := range c.stores {
		natstest.Relay(t, admin.Conn(), id, strings.ToLower(id))
	}
	_, err := admin.CreateStream(ctx, natstest.FleetStream(t, "hq-stream.json", "MERCHANT", sandbox.MerchantID))
	require.NoError(t, err, "head office's stream")
	return c
}

// hubStream is head office's stream, as its admin sees it.
func (c *chain) hubStream(t *testing.T) jetstream.Stream {
	st, err := jetStream(t, c.hubURL, c.hubAdmin.Auth).Stream(context.Background(), "POSD")
	require.NoError(t, err)
	return st
}
