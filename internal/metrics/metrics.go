// Package metrics keeps posd's counters and writes them in the Prometheus
// text format for GET /metrics. It is small on purpose: a handful of
// counters, gauges read when scraped, and one histogram.
package metrics

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Registry holds the metrics.
type Registry struct {
	mu       sync.Mutex
	counters map[string]*family
	hists    map[string]*histogram
	gauges   []gauge
}

type family struct {
	help   string
	labels []string
	values map[string]float64 // joined label values -> value
}

type gauge struct {
	name, help string
	labels     []string
	read       func() []Sample
}

// Sample is one gauge value with its label values.
type Sample struct {
	Labels []string
	Value  float64
}

type histogram struct {
	help    string
	buckets []float64
	counts  []uint64
	sum     float64
	n       uint64
}

// New returns an empty registry.
func New() *Registry {
	return &Registry{counters: map[string]*family{}, hists: map[string]*histogram{}}
}

// Counter declares a counter family.
func (r *Registry) Counter(name, help string, labels ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counters[name] = &family{help: help, labels: labels, values: map[string]float64{}}
}

// Add adds v to a counter with the given label values.
func (r *Registry) Add(name string, v float64, labelValues ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f := r.counters[name]; f != nil {
		f.values[strings.Join(labelValues, "\x00")] += v
	}
}

// Gauge declares a gauge read at scrape time.
func (r *Registry) Gauge(name, help string, read func() []Sample, labels ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gauges = append(r.gauges, gauge{name, help, labels, read})
}

// Histogram declares a histogram with upper bounds.
func (r *Registry) Histogram(name, help string, buckets ...float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hists[name] = &histogram{help: help, buckets: buckets, counts: make([]uint64, len(buckets))}
}

// Observe records v in a histogram.
func (r *Registry) Observe(name string, v float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.hists[name]
	if h == nil {
		return
	}
	for i, b := range h.buckets {
		if v <= b {
			h.counts[i]++
		}
	}
	h.sum += v
	h.n++
}

func labelText(names, values []string) string {
	if len(names) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		v := ""
		if i < len(values) {
			v = values[i]
		}
		v = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
		fmt.Fprintf(&b, `%s="%s"`, n, v)
	}
	b.WriteByte('}')
	return b.String()
}

// WriteText writes every metric in the Prometheus text format.
func (r *Registry) WriteText(w io.Writer) {
	r.mu.Lock()
	names := make([]string, 0, len(r.counters))
	for n := range r.counters {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := r.counters[n]
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", n, f.help, n)
		keys := make([]string, 0, len(f.values))
		for k := range f.values {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "%s%s %g\n", n, labelText(f.labels, strings.Split(k, "\x00")), f.values[k])
		}
	}
	hnames := make([]string, 0, len(r.hists))
	for n := range r.hists {
		hnames = append(hnames, n)
	}
	sort.Strings(hnames)
	for _, n := range hnames {
		h := r.hists[n]
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", n, h.help, n)
		for i, b := range h.buckets {
			fmt.Fprintf(w, "%s_bucket{le=\"%g\"} %d\n", n, b, h.counts[i])
		}
		fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %g\n%s_count %d\n", n, h.n, n, h.sum, n, h.n)
	}
	gauges := slices.Clone(r.gauges)
	r.mu.Unlock()
	for _, g := range gauges {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n", g.name, g.help, g.name)
		for _, s := range g.read() {
			fmt.Fprintf(w, "%s%s %g\n", g.name, labelText(g.labels, s.Labels), s.Value)
		}
	}
}

// ServeHTTP serves GET /metrics.
func (r *Registry) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	r.WriteText(w)
}
