package hq

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*Server).Start"),
		goleak.IgnoreTopFunction("github.com/jackc/pgx/v5/pgconn/ctxwatch.(*ContextWatcher).Watch.func1"),
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"))
}

// databases are the two the head office runs on: the same tests against
// both. PostgreSQL is the server POSD_TEST_POSTGRES names (.ci/run starts
// Debian's); without it that half skips loudly, and fails under
// POSD_REQUIRE_ALL=1.
func databases(t *testing.T) map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "hq.db") },
		"postgres": postgresDSN,
	}
}

// postgresDSN is a schema of its own on the test server, dropped after.
func postgresDSN(t *testing.T) string {
	t.Helper()
	if os.Getenv("POSD_TEST_POSTGRES") == "" {
		msg := "SKIPPED: " + t.Name() + " (internal/hq) needs PostgreSQL: POSD_TEST_POSTGRES=postgres://… (.ci/run installs and starts Debian's postgresql)"
		if os.Getenv("POSD_REQUIRE_ALL") == "1" {
			t.Fatal(msg + " — POSD_REQUIRE_ALL=1 makes this a failure")
		}
		fmt.Fprintln(os.Stderr, "!!! "+msg)
		t.Skip(msg)
	}
	return postgresSchema(t)
}

// postgresSchema makes a schema of its own on POSD_TEST_POSTGRES's server
// and returns the URL that uses it.
func postgresSchema(t testing.TB) string {
	url := os.Getenv("POSD_TEST_POSTGRES")
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	schema := fmt.Sprintf("hq_test_%d", rand.Uint64()%1e12)
	if _, err := db.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", url)
		if err == nil {
			_, _ = db.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			db.Close()
		}
	})
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	return url + sep + "search_path=" + schema
}
