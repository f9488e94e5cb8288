package hq

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"example.com/posd/internal/api"

	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves the fleet view: JSON under /v1/, a small page at /,
// and /metrics.
func Handler(s *Store, m *Metrics) http.Handler {
	m.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /v1/unresolved", func(w http.ResponseWriter, r *http.Request) {
		u, err := s.Unresolved(r.Context(), 1000)
		reply(w, map[string]any{"orders": u}, err)
	})
	mux.HandleFunc("GET /v1/devices/down", func(w http.ResponseWriter, r *http.Request) {
		d, err := s.DevicesDown(r.Context())
		reply(w, map[string]any{"devices": d}, err)
	})
	mux.HandleFunc("GET /v1/totals", func(w http.ResponseWriter, r *http.Request) {
		day := r.URL.Query().Get("day")
		if day != "" {
			if _, err := time.Parse(time.DateOnly, day); err != nil {
				http.Error(w, "day: YYYY-MM-DD", http.StatusBadRequest)
				return
			}
		}
		t, err := s.Totals(r.Context(), day)
		reply(w, map[string]any{"totals": t}, err)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		var v struct {
			Day        string
			Unresolved []Unresolved
			Down       []Device
			Totals     []Total
			Err        error
		}
		v.Day = time.Now().Format(time.DateOnly)
		if v.Unresolved, v.Err = s.Unresolved(r.Context(), 200); v.Err == nil {
			if v.Down, v.Err = s.DevicesDown(r.Context()); v.Err == nil {
				v.Totals, v.Err = s.Totals(r.Context(), v.Day)
			}
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		_ = page.Execute(w, v)
	})
	return mux
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
	g := api.NewGuard(a.Listen, false)
	g.Allow(a.Hosts...)
	slow := &api.Throttle{Interval: 250 * time.Millisecond}
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

var page = template.Must(template.New("page").Funcs(template.FuncMap{"yuan": formatYuan, "ago": func(t time.Time) string {
	return time.Since(t).Round(time.Second).String()
}}).Parse(`<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="10">
<title>posd-hq</title><style>body{font:14px sans-serif;margin:1em}table{border-collapse:collapse;margin-bottom:1.5em}
td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}td.n{text-align:right}</style></head><body>
<h1>posd head office</h1>{{if .Err}}<p><b>database: {{.Err}}</b></p>{{end}}
<h2>Unresolved orders ({{len .Unresolved}}), oldest first</h2><table id=unresolved><tr><th>store</th><th>lane</th><th>order</th><th>state</th><th>phase</th><th>amount</th><th>for</th></tr>
{{range .Unresolved}}<tr><td>{{.Store}}</td><td>{{.Lane}}</td><td>{{.MchTradeID}}</td><td>{{.State}}</td><td>{{.Phase}}</td><td class=n>{{yuan .TotalFee}}</td><td>{{ago .CreatedAt}}</td></tr>{{end}}</table>
<h2>Devices down ({{len .Down}})</h2><table id=down><tr><th>store</th><th>device</th><th>state</th><th>for</th></tr>
{{range .Down}}<tr><td>{{.Store}}</td><td>{{.Device}}</td><td>{{.State}}</td><td>{{ago .Since}}</td></tr>{{end}}</table>
<h2>Totals of {{.Day}}</h2><table id=totals><tr><th>store</th><th>lane</th><th>wallet</th><th>paid</th><th>amount</th><th>refunded</th><th>net</th></tr>
{{range .Totals}}<tr><td>{{.Store}}</td><td>{{.Lane}}</td><td>{{.Wallet}}</td><td class=n>{{.Paid}}</td><td class=n>{{yuan .PaidFee}}</td><td class=n>{{yuan .RefundedFee}}</td><td class=n>{{yuan .NetFee}}</td></tr>{{end}}</table>
</body></html>`))
