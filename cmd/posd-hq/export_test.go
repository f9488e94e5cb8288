package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/natstest"
)

// startHQ builds and runs the posd-hq binary against a broker, on a free
// loopback port; it returns the view's base URL.
func startHQ(t *testing.T, natsURL string) string {
	bin := filepath.Join(t.TempDir(), "posd-hq")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build posd-hq: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-nats", natsURL, "-db", filepath.Join(t.TempDir(), "hq.db"), "-listen", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var l struct{ Msg, Listen string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "posd-hq ready" {
				addr <- l.Listen
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case a := <-addr:
		return "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("posd-hq did not say it was ready")
		return ""
	}
}

// A day's orders of every store as CSV, from the real binary: a cell a
// spreadsheet would take for a formula (a lane or an id a box sent that
// begins with =) comes out behind a '; another day's orders stay out.
func TestOrdersCSVWritesFormulasAsText(t *testing.T) {
	ns := natstest.Start(t)
	natstest.Stream(t, ns.URL(), "POSD", "posd")
	nc, err := nats.Connect(ns.URL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	zone := time.FixedZone("CST", 8*3600)
	day := time.Date(2026, 11, 26, 10, 0, 0, 0, zone)
	order := func(store, lane, id, state string, fee, refunded int64, at time.Time) {
		b, err := json.Marshal(map[string]any{"type": "order", "merchant": "M1", "store": store, "lane": lane, "mch_trade_id": id,
			"version": 2, "state": state, "phase": "done", "wallet": "alipay", "total_fee": fee, "refunded_fee": refunded,
			"created_at": at, "changed_at": at.Add(time.Minute), "code_sha256": "9f86d081"})
		require.NoError(t, err)
		_, err = js.Publish(context.Background(), "posd.M1."+store+"."+lane+".orders", b)
		require.NoError(t, err)
	}
	order("S001", "=1+1", "S001_POS1_A", "paid", 1234, 0, day)
	order("S002", "L1", `=HYPERLINK("http://evil.example","x")`, "refunded", 500, 500, day.Add(time.Hour))
	order("S002", "L1", "S002_POS1_OTHERDAY", "paid", 99, 0, day.AddDate(0, 0, 1))

	base := startHQ(t, ns.URL())
	var rows [][]string
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/v1/orders.csv?day=2026-11-26")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
			return false
		}
		rows, err = csv.NewReader(resp.Body).ReadAll()
		return err == nil && len(rows) == 3
	}, 30*time.Second, 50*time.Millisecond, "the day's two orders in the export")
	assert.Equal(t, []string{"merchant", "store", "lane", "id", "state", "total_fee", "refunded_fee", "wallet", "created_at", "changed_at"}, rows[0])
	assert.Equal(t, []string{"M1", "S001", "'=1+1", "S001_POS1_A", "paid", "1234", "0", "alipay",
		"2026-11-26T02:00:00.000Z", "2026-11-26T02:01:00.000Z"}, rows[1])
	assert.Equal(t, `'=HYPERLINK("http://evil.example","x")`, rows[2][3])
	assert.Equal(t, []string{"refunded", "500", "500"}, rows[2][4:7])
}
