// Package natstest runs a real NATS server with JetStream inside a test,
// on loopback and a temporary store directory: the broker the fleet
// tests publish to and consume from (github.com/nats-io/nats-server/v2,
// the same server a store or the head office runs).
package natstest

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Server is a running NATS server.
type Server struct {
	*server.Server
	Dir  string
	Port int
	t    testing.TB
}

// Start starts a server with JetStream storing under t.TempDir(); it stops
// with the test.
func Start(t testing.TB) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{Dir: t.TempDir(), Port: port, t: t}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: s.Port, JetStream: true, StoreDir: s.Dir,
		NoSigs: true, NoLog: true, MaxPayload: 1 << 20})
	if err != nil {
		s.t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		s.t.Fatal("natstest: server not ready")
	}
	s.Server = ns
}

// Stop stops the server (the broker goes away; its store stays).
func (s *Server) Stop() {
	if s.Server != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Restart starts the server again on the same port and store.
func (s *Server) Restart() {
	s.Stop()
	s.start()
}

// URL is the server's client URL.
func (s *Server) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.Port) }

// Stream creates the stream an operator would for the boxes (README, "The
// head office"): file storage, every subject under prefix, a duplicate
// window of two minutes.
func Stream(t testing.TB, url, name, prefix string) jetstream.Stream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: name, Subjects: []string{prefix + ".>"},
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute, Retention: jetstream.LimitsPolicy})
	if err != nil {
		t.Fatal(err)
	}
	return st
}
