// Command posd-hq is the chain's head office: a durable JetStream consumer
// that keeps every box's orders, charges, refunds and device states in a
// database (SQLite or PostgreSQL), and serves the fleet view: unresolved
// orders across stores, devices down, totals per store, lane, wallet and
// day, as JSON and as a small web page, with /metrics.
//
//	posd-hq -nats nats://hq:4222 -creds /etc/posd-hq/hq.creds -db postgres://… -listen 127.0.0.1:8322
package main

import (
	"context"
	"errors"
	"example.com/posd/internal/httpguard"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"example.com/posd/internal/hq"
	"example.com/posd/internal/natsauth"
	"example.com/posd/internal/secret"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "posd-hq:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("posd-hq", flag.ContinueOnError)
	url := fs.String("nats", "nats://127.0.0.1:4222", "NATS server URLs, comma-separated")
	creds := fs.String("creds", "", "NATS credentials: a creds file (user JWT and seed) or an nkey seed file")
	stream := fs.String("stream", "POSD", "the JetStream stream the boxes publish to")
	durable := fs.String("durable", "posd-hq", "the durable consumer's name")
	prefix := fs.String("prefix", "posd", "the boxes' subjects' prefix (their fleet.subject_prefix): a record is taken only on exactly PREFIX.<merchant>.<store>.<lane>.<kind>")
	filter := fs.String("subjects", "", "subjects consumed (default: PREFIX.>)")
	dsn := fs.String("db", "posd-hq.db", "a SQLite file, or a postgres:// URL")
	listen := fs.String("listen", "127.0.0.1:8322", "the fleet view's address")
	tokenFile := fs.String("token-file", "", "a file holding the token the fleet view asks for (needed off loopback)")
	hosts := fs.String("hosts", "", "DNS names the fleet view is reached by, comma-separated (requests naming another host are refused)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkPrefix(*prefix); err != nil {
		return err
	}
	token, err := viewToken(*listen, *tokenFile)
	if err != nil {
		return err
	}
	log, err := zap.NewProduction()
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	store, err := hq.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer store.Close()
	opts := []nats.Option{nats.Name("posd-hq"), nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second)}
	if *creds != "" {
		c, err := secret.Read(*creds) // the same checks as a box's key
		if err != nil {
			return err
		}
		auth, err := natsauth.Option(c)
		if err != nil {
			return fmt.Errorf("-creds %s: %w", *creds, err)
		}
		opts = append(opts, auth)
	}
	nc, err := nats.Connect(*url, opts...)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	m := hq.NewMetrics()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	access := hq.Access{Listen: ln.Addr().String(), Hosts: strings.Split(*hosts, ","), Token: token}
	ln = httpguard.LimitListener(ln, 64)
	srv := &http.Server{Handler: hq.Protect(hq.Handler(store, m), access), ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("fleet view stopped", zap.Error(err))
		}
	}()
	log.Info("posd-hq ready", zap.String("listen", ln.Addr().String()), zap.String("stream", *stream), zap.String("durable", *durable))
	c := &hq.Consumer{Store: store, Stream: *stream, Durable: *durable, Prefix: *prefix, Filter: *filter, Log: log, Metrics: m}
	err = c.Run(ctx, js)
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return err
}

// checkPrefix refuses a prefix no box's subject can begin with: one or
// more tokens, none empty, no wildcard or white space.
func checkPrefix(p string) error {
	for _, tok := range strings.Split(p, ".") {
		if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") {
			return fmt.Errorf("-prefix %q: subject tokens separated by dots, without * > or white space", p)
		}
	}
	return nil
}

// viewToken reads the fleet view's token, checked like a box's merchant
// key. The view shows every store's takings: on an address other machines
// reach, posd-hq does not start without one.
func viewToken(listen, file string) (string, error) {
	if file == "" {
		host, _, err := net.SplitHostPort(listen)
		if err != nil {
			return "", fmt.Errorf("-listen %s: %w", listen, err)
		}
		if !httpguard.IsLoopback(host) {
			return "", fmt.Errorf("-listen %s is reachable from other machines: give -token-file (the fleet view shows every store's takings)", listen)
		}
		return "", nil
	}
	token, err := secret.Read(file)
	if err != nil {
		return "", err
	}
	if len(token) < secret.MinTokenLen {
		return "", fmt.Errorf("-token-file %s: the token is %d bytes; at least %d (head -c 32 /dev/urandom | base64)", file, len(token), secret.MinTokenLen)
	}
	return token, nil
}
