package natstest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"example.com/posd/internal/natsauth"
)

// The chain's NATS configuration as docs/fleet gives it to an operator,
// for the tests that run it (test/e2e's with nats-server processes,
// internal/hq's in process): the same files, with the test's addresses,
// directories and keys, and without TLS. Every replacement must apply, so
// the docs and the tests cannot drift apart.

// fleetFile reads docs/fleet/<name>.
func fleetFile(t testing.TB, name string) string {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(here), "..", "..", "docs", "fleet", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fleetConf writes docs/fleet/<name> with the replacements (old, new, …)
// and returns its path.
func fleetConf(t testing.TB, name string, repl ...string) string {
	t.Helper()
	s := fleetFile(t, name)
	for i := 0; i+1 < len(repl); i += 2 {
		if !strings.Contains(s, repl[i]) {
			t.Fatalf("docs/fleet/%s changed: %q is no longer in it", name, repl[i])
		}
		s = strings.ReplaceAll(s, repl[i], repl[i+1])
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// HQConf is hq.conf listening on client and leaf (host:port), keeping its
// streams under a new directory, for posd-hq and head office's admin.
func HQConf(t testing.TB, client, leaf string, posdHQ, admin User) string {
	return fleetConf(t, "hq.conf",
		"listen: 0.0.0.0:4222", "listen: "+client,
		"listen: 0.0.0.0:7422", "listen: "+leaf,
		"/var/lib/nats", t.TempDir(),
		"  tls {\n    cert_file: /etc/nats/hq.pem\n    key_file: /etc/nats/hq.key\n  }\n", "",
		"tls {\n  cert_file: /etc/nats/hq.pem\n  key_file: /etc/nats/hq.key\n}\n", "",
		"POSD_HQ_PUBLIC_NKEY", posdHQ.Pub, "HQ_ADMIN_PUBLIC_NKEY", admin.Pub)
}

// Store is what store.conf is written for: a store (S001…) of a merchant,
// its JetStream domain (s001…), the addresses, and the keys of its two
// boxes (POS1 runs lane L1, POS2 lane L2) and of its admin.
type Store struct {
	Merchant, ID, Domain string
	Client, HQLeaf       string // host:port
	Boxes                [2]User
	Admin                User
	// NoDenyRules leaves out the leaf link's deny rules: a store server
	// set up by someone who wants more than their store.
	NoDenyRules bool
}

// StoreConf is store.conf for s.
func StoreConf(t testing.TB, s Store) string {
	repl := []string{
		"s001", s.Domain, // server name, domain and leaf user
		"S001", s.ID, // the lanes' subjects
		"MERCHANT", s.Merchant,
		"listen: 0.0.0.0:4222", "listen: " + s.Client,
		"/var/lib/nats", t.TempDir(),
		"tls://", "nats://", "nats.hq.example:7422", s.HQLeaf,
		"BOX_POS1_PUBLIC_NKEY", s.Boxes[0].Pub, "BOX_POS2_PUBLIC_NKEY", s.Boxes[1].Pub,
		"STORE_ADMIN_PUBLIC_NKEY", s.Admin.Pub,
	}
	if s.NoDenyRules {
		repl = append(repl, "deny_exports:", "# deny_exports:", "deny_imports:", "# deny_imports:")
	}
	return fleetConf(t, "store.conf", repl...)
}

// FleetStream is a stream's configuration from docs/fleet, as the
// operator gives it to `nats stream add --config`, with the replacements
// (old, new, …) an operator makes (MERCHANT: the merchant's id).
func FleetStream(t testing.TB, name string, repl ...string) jetstream.StreamConfig {
	t.Helper()
	s := fleetFile(t, name)
	for i := 0; i+1 < len(repl); i += 2 {
		if !strings.Contains(s, repl[i]) {
			t.Fatalf("docs/fleet/%s changed: %q is no longer in it", name, repl[i])
		}
		s = strings.ReplaceAll(s, repl[i], repl[i+1])
	}
	var c jetstream.StreamConfig
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		t.Fatalf("docs/fleet/%s: %v", name, err)
	}
	return c
}

// Relay makes store's relay at head office (relay-stream.json), as head
// office's operator does: through the store's account's JetStream API,
// which head office's account imports under $JS.relay-<domain>.API.
func Relay(t testing.TB, hqAdmin *nats.Conn, store, domain string) {
	t.Helper()
	js, err := jetstream.NewWithAPIPrefix(hqAdmin, "$JS.relay-"+domain+".API")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(context.Background(), FleetStream(t, "relay-stream.json", "S001", store, "s001", domain)); err != nil {
		t.Fatalf("store %s's relay at head office: %v", store, err)
	}
}

// User is a NATS user's nkey: the public key a server's config lists, the
// seed in a file only its owner reads (a box's fleet.credentials_file,
// posd-hq's -creds), and the option that connects with it.
type User struct {
	Pub, SeedFile string
	Auth          nats.Option
}

// NewUser makes a user's nkey.
func NewUser(t testing.TB) User {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	u := User{Pub: pub, SeedFile: filepath.Join(t.TempDir(), "user.nk")}
	if err := os.WriteFile(u.SeedFile, append(seed, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	if u.Auth, err = natsauth.Option(string(seed)); err != nil {
		t.Fatal(err)
	}
	return u
}
