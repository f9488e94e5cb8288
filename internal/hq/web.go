package hq

import (
	"crypto/subtle"
	"encoding/json"
	"example.com/posd/internal/httpguard"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"example.com/posd/internal/csvsafe"

	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Lists in /v1/ are windows: ?limit= rows (DefaultLimit, at most
// MaxLimit) after ?offset=, with the whole list's "total" and, while there
// are more, the "next" offset. The page shows PageRows of each list.
const (
	DefaultLimit = 1000
	MaxLimit     = 5000
	PageRows     = 100
)

// Handler serves the fleet view: JSON under /v1/, a small page at /,
// and /metrics.
func Handler(s *Store, m *Metrics) http.Handler {
	m.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /v1/unresolved", func(w http.ResponseWriter, r *http.Request) {
		p, ok := page(w, r)
		if !ok {
			return
		}
		u, total, err := s.Unresolved(r.Context(), p)
		reply(w, listed("orders", u, p, total), err)
	})
	mux.HandleFunc("GET /v1/devices/down", func(w http.ResponseWriter, r *http.Request) {
		p, ok := page(w, r)
		if !ok {
			return
		}
		d, total, err := s.DevicesDown(r.Context(), p)
		reply(w, listed("devices", d, p, total), err)
	})
	mux.HandleFunc("GET /v1/totals", func(w http.ResponseWriter, r *http.Request) {
		day := r.URL.Query().Get("day")
		if day != "" {
			if _, err := time.Parse(time.DateOnly, day); err != nil {
				http.Error(w, "day: YYYY-MM-DD", http.StatusBadRequest)
				return
			}
		}
		p, ok := page(w, r)
		if !ok {
			return
		}
		t, total, err := s.TotalsPage(r.Context(), day, p)
		reply(w, listed("totals", t, p, total), err)
	})
	mux.HandleFunc("GET /v1/orders.csv", func(w http.ResponseWriter, r *http.Request) { ordersCSV(w, r, s) })
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		var v struct {
			Day                         string
			Unresolved                  []Unresolved
			Down                        []Device
			Totals                      []Total
			NUnresolved, NDown, NTotals int
			MoreUnresolved, MoreDown    int
			MoreTotals, Rows            int
			Err                         error
		}
		v.Day, v.Rows = time.Now().Format(time.DateOnly), PageRows
		p := Page{Limit: PageRows}
		if v.Unresolved, v.NUnresolved, v.Err = s.Unresolved(r.Context(), p); v.Err == nil {
			if v.Down, v.NDown, v.Err = s.DevicesDown(r.Context(), p); v.Err == nil {
				v.Totals, v.NTotals, v.Err = s.TotalsPage(r.Context(), v.Day, p)
			}
		}
		v.MoreUnresolved, v.MoreDown = v.NUnresolved-len(v.Unresolved), v.NDown-len(v.Down)
		v.MoreTotals = v.NTotals - len(v.Totals)
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		_ = pageTmpl.Execute(w, v)
	})
	return mux
}

// page reads a list's ?limit= and ?offset=; a bad one is answered 400.
func page(w http.ResponseWriter, r *http.Request) (Page, bool) {
	p := Page{Limit: DefaultLimit}
	q := r.URL.Query()
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLimit {
			http.Error(w, fmt.Sprintf("limit: 1 to %d", MaxLimit), http.StatusBadRequest)
			return p, false
		}
		p.Limit = n
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			http.Error(w, "offset: 0 or more", http.StatusBadRequest)
			return p, false
		}
		p.Offset = n
	}
	return p, true
}

// listed is a window of a list as /v1/ answers it.
func listed(name string, items any, p Page, total int) map[string]any {
	out := map[string]any{name: items, "total": total}
	if next := p.Offset + p.Limit; next < total {
		out["next"] = next
	}
	return out
}

// ordersCSV streams a day's orders of every store as CSV, a row at a
// time: a day of a large chain is more than a response should hold.
func ordersCSV(w http.ResponseWriter, r *http.Request, s *Store) {
	day := r.URL.Query().Get("day")
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		http.Error(w, "day: YYYY-MM-DD", http.StatusBadRequest)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="posd-orders-`+day+`.csv"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	rc := http.NewResponseController(w)
	// The server's write timeout is for pages; an export is given time
	// while it makes progress.
	_ = rc.SetWriteDeadline(time.Now().Add(time.Minute))
	out := &sent{w: w}
	cw := csvsafe.NewWriter(out)
	_ = cw.Write([]string{"merchant", "store", "lane", "id", "state", "total_fee", "refunded_fee", "wallet", "created_at", "changed_at"})
	n := 0
	const stamp = "2006-01-02T15:04:05.000Z07:00"
	err := s.EachOrderOfDay(r.Context(), day, func(o *DayOrder) error {
		if err := cw.Write([]string{o.Merchant, o.Store, o.Lane, o.ID, o.State, strconv.FormatInt(o.TotalFee, 10),
			strconv.FormatInt(o.RefundedFee, 10), o.Wallet, o.CreatedAt.UTC().Format(stamp), o.ChangedAt.UTC().Format(stamp)}); err != nil {
			return err
		}
		if n++; n%1000 == 0 {
			cw.Flush()
			_ = rc.SetWriteDeadline(time.Now().Add(time.Minute))
			return cw.Error()
		}
		return nil
	})
	cw.Flush()
	if err == nil {
		err = cw.Error()
	}
	if err != nil && !out.any {
		h.Del("Content-Disposition")
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	if err != nil {
		// Cut off, not ended: a file that ends cleanly must hold the
		// whole day.
		panic(http.ErrAbortHandler)
	}
}

// sent tells whether anything of a response was written.
type sent struct {
	w   io.Writer
	any bool
}

func (s *sent) Write(b []byte) (int, error) {
	s.any = true
	return s.w.Write(b)
}

// Access is who may read the fleet view.
type Access struct {
	Listen string   // the listener's address as bound (its real port)
	Hosts  []string // more names the view is reached by (DNS names)
	Token  string   // "": none asked (posd-hq allows that on loopback only)
}

// Protect guards the fleet view, which shows every store's takings: a
// browser's cross-site request and a name that is not the view's (DNS
// rebinding) are refused (api.Guard), and with a token every request must
// carry it — as a bearer token (scripts, Prometheus) or as basic auth's
// password (a browser asks for it). Wrong tokens are answered slowly.
func Protect(h http.Handler, a Access) http.Handler {
	g := httpguard.NewGuard(a.Listen, false)
	g.Allow(a.Hosts...)
	slow := &httpguard.Throttle{Interval: 250 * time.Millisecond}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.Check(w, r) {
			return
		}
		if a.Token != "" && !tokenOK(r, a.Token) {
			slow.Wait(r.Context())
			w.Header().Set("Connection", "close")
			w.Header().Set("WWW-Authenticate", `Basic realm="posd-hq", charset="UTF-8"`)
			http.Error(w, "posd-hq: a valid token is required (bearer, or as basic auth's password)", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func tokenOK(r *http.Request, token string) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		_, got, ok = r.BasicAuth()
	}
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func formatYuan(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s%d.%02d", sign, fen/100, fen%100)
}

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{"yuan": formatYuan, "ago": func(t time.Time) string {
	return time.Since(t).Round(time.Second).String()
}}).Parse(`<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="10">
<title>posd-hq</title><style>body{font:14px sans-serif;margin:1em}table{border-collapse:collapse;margin-bottom:1.5em}
td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}td.n{text-align:right}</style></head><body>
<h1>posd head office</h1>{{if .Err}}<p><b>database: {{.Err}}</b></p>{{end}}
<h2>Unresolved orders ({{.NUnresolved}}), oldest first</h2><table id=unresolved><tr><th>store</th><th>lane</th><th>order</th><th>state</th><th>phase</th><th>amount</th><th>for</th></tr>
{{range .Unresolved}}<tr><td>{{.Store}}</td><td>{{.Lane}}</td><td>{{.MchTradeID}}</td><td>{{.State}}</td><td>{{.Phase}}</td><td class=n>{{yuan .TotalFee}}</td><td>{{ago .CreatedAt}}</td></tr>{{end}}</table>
{{if .MoreUnresolved}}<p class=more>{{.MoreUnresolved}} more: <a href="/v1/unresolved?offset={{.Rows}}">/v1/unresolved?offset={{.Rows}}</a></p>{{end}}
<h2>Devices down ({{.NDown}})</h2><table id=down><tr><th>store</th><th>device</th><th>state</th><th>for</th></tr>
{{range .Down}}<tr><td>{{.Store}}</td><td>{{.Device}}</td><td>{{.State}}</td><td>{{ago .Since}}</td></tr>{{end}}</table>
{{if .MoreDown}}<p class=more>{{.MoreDown}} more: <a href="/v1/devices/down?offset={{.Rows}}">/v1/devices/down?offset={{.Rows}}</a></p>{{end}}
<h2>Totals of {{.Day}}</h2><table id=totals><tr><th>store</th><th>lane</th><th>wallet</th><th>paid</th><th>amount</th><th>refunded</th><th>net</th></tr>
{{range .Totals}}<tr><td>{{.Store}}</td><td>{{.Lane}}</td><td>{{.Wallet}}</td><td class=n>{{.Paid}}</td><td class=n>{{yuan .PaidFee}}</td><td class=n>{{yuan .RefundedFee}}</td><td class=n>{{yuan .NetFee}}</td></tr>{{end}}</table>
{{if .MoreTotals}}<p class=more>{{.MoreTotals}} more: <a href="/v1/totals?day={{.Day}}&amp;offset={{.Rows}}">/v1/totals?day={{.Day}}&amp;offset={{.Rows}}</a></p>{{end}}
</body></html>`))
