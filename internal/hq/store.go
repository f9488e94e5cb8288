package hq

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"modernc.org/sqlite"               // database/sql driver "sqlite", pure Go
	sqlite3 "modernc.org/sqlite/lib"
)

// Store is the head office's database: one table of every box's records,
// each kept at its highest version. SQLite (a file path) for a small
// chain, PostgreSQL (a postgres:// URL) for a large one; the same SQL
// serves both but for the placeholders.
type Store struct {
	db       *sql.DB
	postgres bool
}

// Record is one version of a box's record, as a message carried it.
type Record struct {
	Merchant, Store, Kind, ID, Lane string
	Version                         uint64
	State, Phase, Wallet            string
	TotalFee, RefundedFee           int64
	Day                             string // the box's local date of the record's creation
	Final                           bool
	CreatedAt, ChangedAt            time.Time
	Body                            []byte // the message as it came, less what head office does not keep (Parse)
}

const schema = `CREATE TABLE IF NOT EXISTS records (
	merchant     TEXT NOT NULL,
	store        TEXT NOT NULL,
	kind         TEXT NOT NULL,
	id           TEXT NOT NULL,
	lane         TEXT NOT NULL,
	version      BIGINT NOT NULL,
	state        TEXT NOT NULL,
	phase        TEXT NOT NULL,
	wallet       TEXT NOT NULL,
	total_fee    BIGINT NOT NULL,
	refunded_fee BIGINT NOT NULL,
	day          TEXT NOT NULL,
	final        INTEGER NOT NULL,
	created_at   BIGINT NOT NULL,
	changed_at   BIGINT NOT NULL,
	body         TEXT NOT NULL,
	PRIMARY KEY (merchant, store, kind, id)
);
CREATE INDEX IF NOT EXISTS records_open ON records (kind, final, created_at);
CREATE INDEX IF NOT EXISTS records_day ON records (day, kind)`

// Open opens (and creates) the database at dsn: a postgres:// or
// postgresql:// URL, or a SQLite file path.
func Open(ctx context.Context, dsn string) (*Store, error) {
	s := &Store{postgres: strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")}
	var err error
	if s.postgres {
		s.db, err = sql.Open("pgx", dsn)
	} else {
		// WAL: the web page reads while the consumer writes; a busy
		// timeout instead of "database is locked".
		s.db, err = sql.Open("sqlite", "file:"+dsn+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=synchronous(NORMAL)")
	}
	if err != nil {
		return nil, fmt.Errorf("hq: open: %w", err)
	}
	if !s.postgres {
		s.db.SetMaxOpenConns(1) // one writer; SQLite serializes anyway
	}
	for _, stmt := range strings.Split(schema, ";\n") {
		if _, err := s.db.ExecContext(ctx, stmt); err != nil {
			s.db.Close()
			return nil, fmt.Errorf("hq: schema: %w", err)
		}
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Ping tells whether the database answers at all.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Refused tells whether err is the database refusing the data it was
// given (a value out of range, a constraint, a limit), as opposed to the
// database being unavailable or failing: a record refused is that
// record's fault, and storing it again will not help.
func Refused(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) && len(pg.Code) == 5 {
		switch pg.Code[:2] {
		case "22", "23", "54": // data exception, integrity constraint, program limit exceeded
			return true
		}
		return false
	}
	var lite *sqlite.Error
	if errors.As(err, &lite) {
		switch lite.Code() & 0xff { // the primary code, without the extended one
		case sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_RANGE:
			return true
		}
	}
	return false
}

// DB is the database, for tests and tools.
func (s *Store) DB() *sql.DB { return s.db }

const columns = 16

// Apply stores a batch in one transaction. A record replaces what is
// stored only with a higher version: replays, copies and messages that
// arrive out of order change nothing.
func (s *Store) Apply(ctx context.Context, batch []Record) error {
	batch = newest(batch)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	const rows = 200 // 3,200 parameters a statement: under both databases' limits
	for len(batch) > 0 {
		n := min(rows, len(batch))
		if _, err := tx.ExecContext(ctx, s.upsert(n), args(batch[:n])...); err != nil {
			return fmt.Errorf("hq: store: %w", err)
		}
		batch = batch[n:]
	}
	return tx.Commit()
}

// newest keeps one record per key, its highest version: a statement may
// not update a row twice (PostgreSQL refuses it).
func newest(batch []Record) []Record {
	type key struct{ m, s, k, id string }
	at := map[key]int{}
	out := batch[:0:0]
	for _, r := range batch {
		k := key{r.Merchant, r.Store, r.Kind, r.ID}
		if i, ok := at[k]; ok {
			if r.Version > out[i].Version {
				out[i] = r
			}
			continue
		}
		at[k] = len(out)
		out = append(out, r)
	}
	return out
}

func (s *Store) upsert(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO records (merchant, store, kind, id, lane, version, state, phase, wallet, total_fee, refunded_fee, day, final, created_at, changed_at, body) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for c := range columns {
			if c > 0 {
				b.WriteByte(',')
			}
			b.WriteString(s.ph(i*columns + c + 1))
		}
		b.WriteByte(')')
	}
	b.WriteString(` ON CONFLICT (merchant, store, kind, id) DO UPDATE SET lane = excluded.lane, version = excluded.version,
	state = excluded.state, phase = excluded.phase, wallet = excluded.wallet, total_fee = excluded.total_fee,
	refunded_fee = excluded.refunded_fee, day = excluded.day, final = excluded.final, created_at = excluded.created_at,
	changed_at = excluded.changed_at, body = excluded.body WHERE records.version < excluded.version`)
	return b.String()
}

// ph is the n-th placeholder in the database's syntax.
func (s *Store) ph(n int) string {
	if s.postgres {
		return fmt.Sprintf("$%d", n)
	}
	return fmt.Sprintf("?%d", n)
}

func args(batch []Record) []any {
	out := make([]any, 0, len(batch)*columns)
	for _, r := range batch {
		final := 0
		if r.Final {
			final = 1
		}
		out = append(out, r.Merchant, r.Store, r.Kind, r.ID, r.Lane, int64(r.Version), r.State, r.Phase, r.Wallet,
			r.TotalFee, r.RefundedFee, r.Day, final, r.CreatedAt.UnixMilli(), r.ChangedAt.UnixMilli(), string(r.Body))
	}
	return out
}

// maxField bounds each name, id and state a record carries. A box's are
// a few dozen bytes; the bound keeps a record's key well under
// PostgreSQL's limit for an index entry (about 2.7 kB), which SQLite does
// not have: both databases take what Parse accepts.
const maxField = 256

// Parse reads a message of a box's publisher (internal/fleet) and returns
// the record as head office keeps it: what head office must not keep (the
// code hash, a full payment code) is dropped from its body. What no
// database may be asked to store (NUL, invalid UTF-8) and what no box
// writes (control characters in names, ids and states) is refused here,
// so that SQLite and PostgreSQL accept the same records and a refusal is
// the message's, not the database's.
func Parse(data []byte) (Record, error) {
	body, err := cleanBody(data)
	if err != nil {
		return Record{}, err
	}
	var m struct {
		Type        string    `json:"type"`
		Merchant    string    `json:"merchant"`
		Store       string    `json:"store"`
		Lane        string    `json:"lane"`
		Version     uint64    `json:"version"`
		ChangedAt   time.Time `json:"changed_at"`
		MchTradeID  string    `json:"mch_trade_id"`
		MchRefundID string    `json:"mch_refund_id"`
		ID          string    `json:"id"`
		Role        string    `json:"role"`
		Name        string    `json:"name"`
		State       string    `json:"state"`
		Phase       string    `json:"phase"`
		Wallet      string    `json:"wallet"`
		TotalFee    int64     `json:"total_fee"`
		RefundFee   int64     `json:"refund_fee"`
		RefundedFee int64     `json:"refunded_fee"`
		CreatedAt   time.Time `json:"created_at"`
		Since       time.Time `json:"since"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return Record{}, fmt.Errorf("hq: message: %w", err)
	}
	for _, f := range [...]struct{ name, v string }{{"type", m.Type}, {"merchant", m.Merchant}, {"store", m.Store},
		{"lane", m.Lane}, {"mch_trade_id", m.MchTradeID}, {"mch_refund_id", m.MchRefundID}, {"id", m.ID},
		{"role", m.Role}, {"name", m.Name}, {"state", m.State}, {"phase", m.Phase}, {"wallet", m.Wallet}} {
		if err := plainText(f.v); err != nil {
			return Record{}, fmt.Errorf("hq: message: %s %q: %w", f.name, f.v, err)
		}
	}
	r := Record{Merchant: m.Merchant, Store: m.Store, Kind: m.Type, Lane: m.Lane, Version: m.Version, State: m.State,
		Phase: m.Phase, Wallet: m.Wallet, TotalFee: m.TotalFee, RefundedFee: m.RefundedFee,
		CreatedAt: m.CreatedAt, ChangedAt: m.ChangedAt, Body: body}
	switch m.Type {
	case "order":
		r.ID, r.Final = m.MchTradeID, m.Phase == "done"
	case "charge":
		r.ID = m.ID
		r.Final = m.State != "awaiting_scan" && m.State != "paying" && m.State != "needs_attention"
	case "refund":
		r.ID, r.TotalFee = m.MchRefundID, m.RefundFee
		r.Final = m.State == "refunded" || m.State == "failed"
	case "device":
		r.ID, r.CreatedAt, r.Final = m.Lane+"/"+m.Role+"/"+m.Name, m.Since, m.State == "connected"
	default:
		return Record{}, fmt.Errorf("hq: message of type %q", m.Type)
	}
	if r.Merchant == "" || r.Store == "" || r.ID == "" || r.Version == 0 {
		return Record{}, fmt.Errorf("hq: message without merchant, store, id or version")
	}
	if !r.CreatedAt.IsZero() {
		r.Day = r.CreatedAt.Format(time.DateOnly) // in the box's own zone, as it wrote it
	}
	return r, nil
}

// plainText refuses what no box writes in a name, an id or a state, and
// what a database would refuse or mangle.
func plainText(s string) error {
	if len(s) > maxField {
		return fmt.Errorf("longer than %d bytes", maxField)
	}
	if !utf8.ValidString(s) {
		return errors.New("not UTF-8")
	}
	for _, c := range s {
		if unicode.IsControl(c) {
			return fmt.Errorf("a control character (%U)", c)
		}
	}
	return nil
}

// dropped are the fields head office does not keep of a box's record, at
// any depth: an unsalted SHA-256 of a payment code is the code to anyone
// who tries the few codes that end in its last four digits (code_masked,
// which is kept); a full code should never be there.
var dropped = map[string]bool{"code_sha256": true, "auth_code": true}

// cleanBody returns the message's JSON as head office stores it (TEXT):
// UTF-8, no NUL anywhere (PostgreSQL's text and jsonb refuse it), without
// the dropped fields. Free text a box carries (an order's subject or
// body) may hold other control characters: they are escaped in the JSON.
func cleanBody(data []byte) ([]byte, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("hq: message: not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // amounts and versions as they were written, not through a float
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("hq: message: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("hq: message: more than one JSON value")
	}
	if v == nil {
		return nil, errors.New("hq: message: not a JSON object")
	}
	if err := strip(v); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("hq: message: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func strip(v any) error {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if dropped[strings.ToLower(k)] { // encoding/json reads a field whatever its case
				delete(v, k)
				continue
			}
			if strings.IndexByte(k, 0) >= 0 {
				return errors.New("hq: message: a NUL in a field's name")
			}
			if err := strip(e); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range v {
			if err := strip(e); err != nil {
				return err
			}
		}
	case string:
		if strings.IndexByte(v, 0) >= 0 {
			return errors.New("hq: message: a NUL in a value")
		}
	}
	return nil
}
