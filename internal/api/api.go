package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"example.com/posd/docs"
	"example.com/posd/internal/clock"
	"example.com/posd/internal/csvsafe"
	"example.com/posd/internal/httpguard"
	"example.com/posd/internal/lane"
	"example.com/posd/internal/money"
	"example.com/posd/poller"
	"example.com/posd/scanner"
)

// Server serves the API over the lanes' service (lane.Service).
type Server struct {
	svc     *lane.Service
	hist    History
	log     *zap.Logger
	health  func() error
	devices func() any
	mux     *http.ServeMux
	token   string
	prot    Protection
	guard   *httpguard.Guard
	lock    *httpguard.Lockout
	exports chan struct{} // one export at a time: each holds its range's ids
	// Store is the name a receipt carries (merchant.store_id).
	Store string
	// Reconcile runs the reconciliations (nil: the routes answer 503).
	Reconcile Reconciler
	// Fleet is the outbox and its publisher (nil: fleet off).
	Fleet func() any
	// Clock is posd's clock as it stands (nil: not shown).
	Clock func() clock.Status
}

// Protection is how a listener is exposed and what that demands.
type Protection struct {
	Listen string // the api.listen address
	TLS    bool
	// Remote: a non-loopback listener; /metrics needs the token too.
	Remote bool
	// MoneyNeedsToken: every state change (open, cancel, scan, refund,
	// resolve, reprint) is refused unless a token is set: a loopback TCP
	// listener is open to every local process, which could otherwise
	// cancel the customer's charge and open a dearer one.
	MoneyNeedsToken bool
	// AllowedOrigins are the origins of tills that run in a browser
	// (api.allowed_origins): CORS for them alone.
	AllowedOrigins []string
}

// Protect sets how the server is exposed: the browser guard, and which
// routes need the token.
func (s *Server) Protect(p Protection) {
	s.prot = p
	s.guard = httpguard.NewGuard(p.Listen, p.TLS)
	s.guard.AllowOrigins(p.AllowedOrigins...)
}

// RequireToken makes every route that changes state or shows order
// details require "Authorization: Bearer <token>".
func (s *Server) RequireToken(token string) { s.token = token }

// open routes need no token: health, metrics, devices, the API's own
// document and the customer display (read-only, customer view only).
func openRoute(r *http.Request) bool {
	p := r.URL.Path
	return r.Method == http.MethodGet && (p == "/healthz" || p == "/metrics" || p == "/v1/devices" || p == "/openapi.yaml" || strings.HasPrefix(p, "/display/"))
}

// New returns the API handler. health reports what makes posd unhealthy;
// devices lists the devices for GET /v1/devices.
func New(svc *lane.Service, hist History, log *zap.Logger, health func() error, devices func() any) *Server {
	s := &Server{svc: svc, hist: hist, log: log, health: health, devices: devices, mux: http.NewServeMux(),
		lock: httpguard.NewLockout(), exports: make(chan struct{}, 1)}
	s.mux.HandleFunc("POST /v1/charges", s.open)
	s.mux.HandleFunc("GET /v1/charges/{id}", s.get)
	s.mux.HandleFunc("GET /v1/charges", s.findCharges)
	s.mux.HandleFunc("GET /v1/lanes/{lane}/last", s.lastCharge)
	s.mux.HandleFunc("POST /v1/lanes/{lane}/display", s.showLines)
	s.mux.HandleFunc("DELETE /v1/charges/{id}", s.cancel)
	s.mux.HandleFunc("POST /v1/charges/{id}/refund", s.refund)
	s.mux.HandleFunc("POST /v1/charges/{id}/refunds", s.newRefund)
	s.mux.HandleFunc("GET /v1/charges/{id}/refunds", s.listRefunds)
	s.mux.HandleFunc("GET /v1/charges/{id}/refunds/{refund_id}", s.getRefund)
	s.mux.HandleFunc("POST /v1/charges/{id}/receipt", s.receipt)
	s.mux.HandleFunc("GET /v1/charges/{id}/receipt", s.getReceipt)
	s.mux.HandleFunc("GET /v1/charges/{id}/refunds/{refund_id}/receipt", s.getRefundReceipt)
	s.mux.HandleFunc("GET /v1/devices", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"devices": s.devices()})
	})
	s.mux.HandleFunc("GET /v1/lanes", s.lanes)
	s.mux.HandleFunc("GET /v1/lanes/{lane}", s.lane)
	s.mux.HandleFunc("POST /v1/lanes/{lane}/scans", s.scan)
	s.mux.HandleFunc("GET /v1/orders", s.orders)
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("POST /v1/orders/{id}/resolve", s.resolve)
	s.mux.HandleFunc("GET /v1/report", s.report)
	s.mux.HandleFunc("GET /v1/totals", s.totals)
	s.mux.HandleFunc("POST /v1/reconcile", s.startReconcile)
	s.mux.HandleFunc("GET /v1/reconcile", s.reconcileStatus)
	s.mux.HandleFunc("GET /v1/export", s.export)
	s.mux.HandleFunc("GET /v1/fleet", s.fleet)
	s.mux.HandleFunc("GET /openapi.yaml", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(docs.OpenAPI)
	})
	return s
}

// Handle adds a route (displays, metrics) to the same listener.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// HandleFunc is Handle for a function.
func (s *Server) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	s.mux.HandleFunc(pattern, h)
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.guard != nil && s.guard.Check(w, r) {
		return
	}
	if s.token == "" && s.prot.MoneyNeedsToken && httpguard.ChangesState(r) {
		w.Header().Set("Connection", "close")
		writeJSON(w, http.StatusForbidden, apiError{Kind: httpguard.KindForbidden,
			Error: "changes on a TCP listener (charges, scans, refunds, resolutions) need a token: set api.token_file (or api.allow_money_without_token: true)"})
		return
	}
	open := openRoute(r) && !(s.prot.Remote && r.URL.Path == "/metrics")
	if s.token != "" && !open && !s.tokenOK(w, r) {
		return
	}
	s.route(w, r)
}

// route serves r through the mux; a path no route has is 404 and a method
// the route lacks is 405 (with Allow), in the API's error shape like
// every other error.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		s.mux.ServeHTTP(w, r) // sets the path's values; Handler does not
		return
	}
	probe := &headerOnly{h: http.Header{}}
	h.ServeHTTP(probe, r) // the mux's own answer: a 404, a 405 with Allow, or a redirect to the clean path
	switch probe.code {
	case http.StatusMethodNotAllowed:
		allow := probe.h.Get("Allow")
		w.Header().Set("Allow", allow)
		writeJSON(w, probe.code, apiError{Kind: httpguard.KindMethodNotAllowed,
			Error: fmt.Sprintf("%s is not a method of %s: %s", r.Method, r.URL.Path, allow)})
	case http.StatusNotFound:
		writeJSON(w, probe.code, apiError{Kind: httpguard.KindNotFound, Error: "no route " + r.URL.Path + " (docs/openapi.yaml lists them)"})
	default:
		s.mux.ServeHTTP(w, r)
	}
}

// headerOnly records what a handler answers, without its body.
type headerOnly struct {
	h    http.Header
	code int
}

func (o *headerOnly) Header() http.Header         { return o.h }
func (o *headerOnly) Write(b []byte) (int, error) { return len(b), nil }
func (o *headerOnly) WriteHeader(code int) {
	if o.code == 0 {
		o.code = code
	}
}

// tokenOK checks the request's token, or answers for it. Nobody waits:
// a client out of guesses is refused at once without its token being
// compared, so that the refusal tells a guesser nothing; a wrong token
// is 401 at once. Either closes the connection, so a refused client
// keeps no connection slot the till needs.
func (s *Server) tokenOK(w http.ResponseWriter, r *http.Request) bool {
	client := httpguard.ClientOf(r)
	done := func(bool) {}
	if !httpguard.Authed(r) {
		var ok bool
		if done, ok = s.lock.Try(client); !ok {
			httpguard.RefuseConn(r)
			w.Header().Set("Connection", "close")
			w.Header().Set("Retry-After", s.lock.RetryAfter())
			writeJSON(w, http.StatusTooManyRequests, apiError{Error: "too many wrong tokens from this client: try again later", Kind: httpguard.KindTooManyRequests})
			return false
		}
	}
	got, sent := bearer(r)
	if sent && subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) == 1 {
		done(false)
		httpguard.MarkAuthed(r)
		return true
	}
	done(true)
	// Logged without the token, as often as the lock-out lets guesses in.
	s.log.Warn("api: request without a valid token", zap.String("remote", r.RemoteAddr), zap.String("client", client),
		zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Bool("token_sent", sent))
	httpguard.RefuseConn(r)
	w.Header().Set("Connection", "close")
	w.Header().Set("WWW-Authenticate", `Bearer realm="posd"`)
	writeJSON(w, http.StatusUnauthorized, apiError{Error: "a valid bearer token is required: Authorization: Bearer <api.token_file's token>", Kind: httpguard.KindUnauthorized})
	return false
}

// bearer is the request's bearer token; the scheme's name is
// case-insensitive (RFC 9110 section 11.1).
func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimLeft(token, " "), true
}

// Listen opens "host:port" or "unix:/path" (mode 0660, a stale socket
// file replaced).
func Listen(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			_ = os.Remove(path)
		}
		l, err := net.Listen("unix", path)
		if err != nil {
			return nil, fmt.Errorf("api: listen %s: %w", addr, err)
		}
		if err := os.Chmod(path, 0o660); err != nil {
			l.Close()
			return nil, fmt.Errorf("api: chmod %s: %w", path, err)
		}
		return l, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("api: listen %s: %w", addr, err)
	}
	return l, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

type apiError = httpguard.Error

// errMalformed is a body that is not one JSON object; errTooLarge one
// over its limit.
var (
	errMalformed = errors.New("malformed")
	errTooLarge  = errors.New("too large")
)

func (s *Server) fail(w http.ResponseWriter, err error) {
	e := apiError{Error: err.Error(), Kind: httpguard.KindInternal}
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, errMalformed):
		status, e.Kind = http.StatusBadRequest, httpguard.KindMalformed
	case errors.Is(err, errTooLarge):
		status, e.Kind = http.StatusRequestEntityTooLarge, httpguard.KindTooLarge
	case errors.Is(err, lane.ErrNotFound):
		status, e.Kind = http.StatusNotFound, httpguard.KindNotFound
	case errors.Is(err, lane.ErrConflict), errors.Is(err, lane.ErrCodeUsed):
		status, e.Kind = http.StatusConflict, httpguard.KindConflict
	case errors.Is(err, lane.ErrInvalid), errors.Is(err, scanner.ErrInvalidCode):
		status, e.Kind = http.StatusUnprocessableEntity, httpguard.KindInvalid
		var fe *lane.FieldError
		if errors.As(err, &fe) {
			e.Field = fe.Field
		} else if errors.Is(err, scanner.ErrInvalidCode) {
			e.Field = "auth_code"
		}
	case errors.Is(err, lane.ErrOutOfService):
		status, e.Kind = http.StatusServiceUnavailable, httpguard.KindOutOfService
	}
	if status == http.StatusInternalServerError {
		s.log.Error("api", zap.Error(err))
		e.Error = "posd could not do it (logged): try again; if it persists, see posd's journal"
	}
	writeJSON(w, status, e)
}

// reply writes v with status, or the error's answer.
func (s *Server) reply(w http.ResponseWriter, status int, v any, err error) {
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, status, v)
}

// maxBody bounds a request's JSON body.
const maxBody = 64 << 10

// decode reads a small JSON body strictly: one object and nothing after
// it, no field it does not know, each of its type. What is wrong is said
// in JSON's words, never Go's.
func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fmt.Errorf("%w: the body is over %d bytes", errTooLarge, maxBody)
	}
	if err := exactKeys(body, v); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	if err == nil {
		if _, next := dec.Token(); next != io.EOF {
			return fmt.Errorf("%w: the body holds more than one JSON object", errMalformed)
		}
		return nil
	}
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%w: the body is empty: a JSON object is expected", errMalformed)
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: the body is not JSON (at byte %d)", errMalformed, dec.InputOffset())
	case errors.As(err, &typ) && typ.Field == "":
		return fmt.Errorf("%w: the body must be a JSON object, not %s", errMalformed, typ.Value)
	case errors.As(err, &typ):
		return lane.Invalid(typ.Field, "%s must be %s, not %s", typ.Field, jsonType(typ.Type.Kind()), typ.Value)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, _ = strconv.Unquote(name)
		return lane.Invalid(name, "%s: no such field", name)
	}
	return fmt.Errorf("%w: the body is not the JSON object expected", errMalformed)
}

// exactKeys holds a body's top level to what Go's decoder lets through:
// an object (not null), each key exactly a field's name (Go matches keys
// in any case) and given once (Go keeps the last of two): what the till
// meant is what posd does. A body broken further in is left to decode.
func exactKeys(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return nil
	}
	if tok != json.Delim('{') {
		return fmt.Errorf("%w: the body must be a JSON object", errMalformed)
	}
	fields := map[string]bool{}
	t := reflect.TypeOf(v).Elem()
	if t.Kind() != reflect.Struct {
		return nil
	}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		fields[name] = true
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		key, _ := tok.(string)
		switch {
		case seen[key]:
			return lane.Invalid(key, "%s is given twice", key)
		case !fields[key]:
			return lane.Invalid(key, "%s: no such field (names are case-sensitive)", key)
		}
		seen[key] = true
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return nil
		}
	}
	return nil
}

// jsonType names a Go kind as JSON has it.
func jsonType(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

func (s *Server) open(w http.ResponseWriter, r *http.Request) {
	var body openRequest
	if err := decode(r, &body); err != nil {
		s.fail(w, err)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > 255 {
		s.fail(w, lane.Invalid("Idempotency-Key", "Idempotency-Key: at most 255 bytes"))
		return
	}
	if err := checkText("lane", body.Lane, "subject", body.Subject, "body", body.Body, "attach", body.Attach, "op_user_id", body.OpUserID,
		"shift", body.Shift, "goods_tag", body.GoodsTag, "reference", body.Reference, "Idempotency-Key", key); err != nil {
		s.fail(w, err)
		return
	}
	v, created, err := s.svc.Open(lane.OpenRequest{Lane: body.Lane, TotalFee: body.TotalFee, Subject: body.Subject, Body: body.Body,
		Attach: body.Attach, OpUserID: body.OpUserID, Shift: body.Shift, GoodsTag: body.GoodsTag, IdempotencyKey: key,
		Reference: body.Reference})
	if err != nil {
		s.fail(w, err)
		return
	}
	if !created {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, http.StatusCreated, chargeOf(v))
}

// maxWait bounds a long-poll; a longer wait is refused, not cut short
// silently.
const maxWait = 120 * time.Second

func joinStates(states []money.State) string {
	s := make([]string, len(states))
	for i, st := range states {
		s[i] = string(st)
	}
	return strings.Join(s, ", ")
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if ws := r.URL.Query().Get("wait"); ws != "" {
		d, err := time.ParseDuration(ws)
		if err != nil || d < 0 || d > maxWait {
			s.fail(w, lane.Invalid("wait", "wait %q: a duration such as 30s, at most %s", ws, maxWait))
			return
		}
		// A long-poll has its own bound, past the server's write timeout.
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Time{})
		_ = rc.SetWriteDeadline(time.Now().Add(d + 10*time.Second))
		seen := lane.Seen{State: money.State(r.URL.Query().Get("state"))}
		if seen.State != "" && !slices.Contains(money.ChargeStates, seen.State) {
			s.fail(w, lane.Invalid("state", "state %q: a charge's state (%s)", seen.State, joinStates(money.ChargeStates)))
			return
		}
		if vs := r.URL.Query().Get("version"); vs != "" {
			n, err := strconv.ParseUint(vs, 10, 64)
			if err != nil {
				s.fail(w, lane.Invalid("version", "version %q: the charge's version the till last saw", vs))
				return
			}
			seen.Version = n
		}
		v, err := s.svc.Wait(r.Context(), id, d, seen)
		s.reply(w, http.StatusOK, chargeOf(v), err)
		return
	}
	v, err := s.svc.Get(id)
	s.reply(w, http.StatusOK, chargeOf(v), err)
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request) {
	v, err := s.svc.Cancel(r.PathValue("id"))
	status := http.StatusOK
	if v.Charge.State == money.Paying {
		status = http.StatusAccepted // stopping: the long-poll tells canceled or paid
	}
	s.reply(w, status, chargeOf(v), err)
}

func (s *Server) refund(w http.ResponseWriter, r *http.Request) {
	v, err := s.svc.Refund(r.PathValue("id"))
	s.reply(w, http.StatusAccepted, chargeOf(v), err)
}

func (s *Server) receipt(w http.ResponseWriter, r *http.Request) {
	v, err := s.svc.Reprint(r.PathValue("id"))
	s.reply(w, http.StatusAccepted, chargeOf(v), err)
}

func (s *Server) lanes(w http.ResponseWriter, _ *http.Request) {
	out := []Lane{}
	for _, l := range s.svc.Lanes() {
		out = append(out, laneOf(l))
	}
	writeJSON(w, http.StatusOK, map[string]any{"lanes": out})
}

func (s *Server) lane(w http.ResponseWriter, r *http.Request) {
	l, err := s.svc.Lane(r.PathValue("lane"))
	s.reply(w, http.StatusOK, laneOf(l), err)
}

// scan lets a till that reads the scanner itself hand posd the code.
func (s *Server) scan(w http.ResponseWriter, r *http.Request) {
	var body struct {
		AuthCode string `json:"auth_code"`
		Scene    string `json:"scene"`
	}
	if err := decode(r, &body); err != nil {
		s.fail(w, err)
		return
	}
	if body.Scene != "" && body.Scene != scanner.SceneBarCode && body.Scene != scanner.SceneWaveCode {
		s.fail(w, lane.Invalid("scene", "scene %q: bar_code or wave_code", body.Scene))
		return
	}
	id := r.PathValue("lane")
	if err := s.svc.Scan(id, scanner.Scan{Code: body.AuthCode, Scene: body.Scene, Source: "api"}); err != nil {
		s.fail(w, err)
		return
	}
	l, err := s.svc.Lane(id)
	s.reply(w, http.StatusAccepted, laneOf(l), err)
}

func (s *Server) orders(w http.ResponseWriter, r *http.Request) {
	state := r.URL.Query().Get("state")
	if state != "" && state != "unresolved" && state != "all" {
		s.fail(w, lane.Invalid("state", "state %q: unresolved or all", state))
		return
	}
	os, err := s.hist.Orders(state == "unresolved", 1000)
	if err != nil {
		s.fail(w, err)
		return
	}
	out := make([]Attempt, 0, len(os))
	for i := range os {
		out = append(out, attemptOf(&os[i]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"orders": out})
}

func (s *Server) resolve(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Decision    string `json:"decision"` // paid or not_paid
		RefundedFee int64  `json:"refunded_fee"`
		By          string `json:"by"`
		Why         string `json:"why"`
	}
	if err := decode(r, &body); err != nil {
		s.fail(w, err)
		return
	}
	if body.Decision != "paid" && body.Decision != "not_paid" {
		s.fail(w, lane.Invalid("decision", "decision %q: paid or not_paid", body.Decision))
		return
	}
	if err := checkText("by", body.By, "why", body.Why); err != nil {
		s.fail(w, err)
		return
	}
	o, err := s.svc.Resolve(r.PathValue("id"), poller.Decision{Paid: body.Decision == "paid", RefundedFee: body.RefundedFee, By: body.By, Why: body.Why})
	s.reply(w, http.StatusOK, attemptOf(&o), err)
}

// writeCSV writes rows a spreadsheet reads as text: till, gateway and
// fleet values could otherwise be run as formulas on the office's desktop.
func writeCSV(w http.ResponseWriter, rows [][]string) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	cw := csvsafe.NewWriter(w)
	_ = cw.WriteAll(rows)
}

// parseDay reads the day named field: YYYY-MM-DD, in the box's time zone.
// csvOrJSON reads ?format=: json (the default) or csv.
func csvOrJSON(r *http.Request) (bool, error) {
	switch f := r.URL.Query().Get("format"); f {
	case "", "json":
		return false, nil
	case "csv":
		return true, nil
	default:
		return false, lane.Invalid("format", "format %q: json or csv", f)
	}
}

func parseDay(field, s string) (time.Time, error) {
	t, err := time.ParseInLocation("2006-01-02", s, time.Local)
	if err != nil {
		return t, lane.Invalid(field, "%s %q: a day as YYYY-MM-DD", field, s)
	}
	return t, nil
}

func (s *Server) report(w http.ResponseWriter, r *http.Request) {
	asCSV, err := csvOrJSON(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	day, err := parseDay("date", r.URL.Query().Get("date"))
	if err != nil {
		s.fail(w, err)
		return
	}
	totals, err := s.hist.Report(day, day.AddDate(0, 0, 1))
	if err != nil {
		s.fail(w, err)
		return
	}
	rows := make([]reportRow, 0, len(totals))
	for _, t := range totals {
		rows = append(rows, reportRow{Wallet: t.Wallet, State: t.State, Count: t.Count, Total: t.Fee})
	}
	if asCSV {
		out := [][]string{{"wallet", "state", "count", "total_fee"}}
		for _, row := range rows {
			out = append(out, []string{row.Wallet, string(row.State), strconv.Itoa(row.Count), strconv.FormatInt(row.Total, 10)})
		}
		writeCSV(w, out)
		return
	}
	sums, err := s.hist.Totals(day, day.AddDate(0, 0, 1), money.TotalsFilter{})
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"date": day.Format("2006-01-02"), "rows": rows, "totals": sums})
}

func (s *Server) export(w http.ResponseWriter, r *http.Request) {
	asCSV, err := csvOrJSON(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	from, err := parseDay("from", r.URL.Query().Get("from"))
	if err != nil {
		s.fail(w, err)
		return
	}
	to, err := parseDay("to", r.URL.Query().Get("to"))
	if err != nil {
		s.fail(w, err)
		return
	}
	// Streamed, an order at a time: a year of a busy lane must not take
	// the box's memory; one export at a time. An error once orders were
	// sent can only cut the answer short: the connection ends without the
	// chunked answer's end, which every HTTP client reports as an error.
	// The server's write timeout is for answers of one piece: an export
	// has minutes to list its range, then 30 s for each batch.
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Minute))
	select {
	case s.exports <- struct{}{}:
		defer func() { <-s.exports }()
	case <-r.Context().Done():
		return
	}
	to = to.AddDate(0, 0, 1)
	each := func(fn func(*money.Order) error) error {
		n := 0
		return s.hist.ExportEach(from, to, func(o *money.Order) error {
			if n++; n%256 == 1 {
				_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
			}
			return fn(o)
		})
	}
	if asCSV {
		s.exportCSV(w, each)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	bw := bufio.NewWriter(w)
	var one bytes.Buffer
	enc := json.NewEncoder(&one)
	enc.SetEscapeHTML(false)
	n := 0
	err = each(func(o *money.Order) error {
		one.Reset()
		if err := enc.Encode(exportOf(o)); err != nil {
			return err
		}
		sep := ","
		if n == 0 {
			sep = `{"orders":[`
		}
		n++
		bw.WriteString(sep) //nolint:errcheck // a failed write fails the next, and the flush
		_, err := bw.Write(bytes.TrimSuffix(one.Bytes(), []byte("\n")))
		return err
	})
	if err != nil {
		s.exportFailed(w, n == 0, err)
		return
	}
	if n == 0 {
		bw.WriteString(`{"orders":[`) //nolint:errcheck
	}
	bw.WriteString("]}\n") //nolint:errcheck
	_ = bw.Flush()
}

var exportColumns = []string{"created_at", "finished_at", "lane", "charge_id", "mch_trade_id", "wallet", "pay_type", "state", "total_fee", "trade_id", "out_trade_id", "auth_code", "err_msg", "resolution",
	"coupon_fee", "buyer_pay_amount", "op_user_id", "shift"}

func (s *Server) exportCSV(w http.ResponseWriter, each func(func(*money.Order) error) error) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	cw := csvsafe.NewWriter(w) // every cell: op_user_id and shift are the till's, err_msg the gateway's
	_ = cw.Write(exportColumns)
	rows := 0
	err := each(func(o *money.Order) error {
		a := exportOf(o)
		rows++
		return cw.Write([]string{a.CreatedAt.Format(time.RFC3339), a.FinishedAt.Format(time.RFC3339), a.Lane, a.ChargeID, a.MchTradeID, a.Wallet, a.PayType,
			string(a.State), strconv.FormatInt(a.TotalFee, 10), a.TradeID, a.OutTradeID, a.AuthCode, a.ErrMsg, a.Resolution,
			strconv.FormatInt(a.CouponFee, 10), strconv.FormatInt(a.BuyerPayAmount, 10), a.OpUserID, a.Shift})
	})
	if err != nil {
		s.exportFailed(w, rows == 0, err) // no rows: the header line is still in cw's buffer, never sent
		return
	}
	cw.Flush()
}

// exportFailed answers an export that failed: with an error when nothing
// was sent yet; otherwise it can only log it and end the answer early.
func (s *Server) exportFailed(w http.ResponseWriter, nothingSent bool, err error) {
	if nothingSent {
		s.fail(w, err)
		return
	}
	s.log.Error("api: export cut short", zap.Error(err))
	panic(http.ErrAbortHandler) // the client sees the connection end, not a complete answer
}

// ErrDegraded marks a health problem that stops payments for now but
// needs no repair on the box (the gateway cannot be reached).
var ErrDegraded = errors.New("degraded")

// healthz is GET /healthz: ok says whether payments are taken. A clock
// fault degrades the status (with its reason) without stopping payments:
// the windows and the pruning no longer trust the wall clock.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	var clk *clock.Status
	if s.Clock != nil {
		st := s.Clock()
		clk = &st
	}
	if err := s.health(); err != nil {
		status := "unavailable"
		if errors.Is(err, ErrDegraded) {
			status = "degraded"
		}
		out := map[string]any{"ok": false, "status": status, "error": err.Error()}
		if clk != nil {
			out["clock"] = clk
		}
		writeJSON(w, http.StatusServiceUnavailable, out)
		return
	}
	out := map[string]any{"ok": true, "status": "ok"}
	if clk != nil {
		out["clock"] = clk
		if clk.Degraded {
			out["status"], out["reason"] = "degraded", clk.Reason
		}
	}
	if s.Fleet != nil {
		out["fleet"] = s.Fleet() // a warning here stops no payment
	}
	writeJSON(w, http.StatusOK, out)
}

// fleet is GET /v1/fleet: the outbox (pending, oldest, last ack).
func (s *Server) fleet(w http.ResponseWriter, _ *http.Request) {
	if s.Fleet == nil {
		writeJSON(w, http.StatusOK, map[string]any{"enabled": false})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"enabled": true, "status": s.Fleet()})
}

// Serve runs the server on l until ctx ends, then shuts it down. Every
// route has read, write and idle timeouts; a long-poll and an event
// stream set their own.
func Serve(ctx context.Context, l net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ConnContext: httpguard.ConnContext, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 64 << 10}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	}
}
