package daemon

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"example.com/posd/internal/clock"
	"example.com/posd/internal/device"
	"example.com/posd/internal/journal"
	"example.com/posd/internal/money"
	"example.com/posd/payment"
	"example.com/posd/poller"
)

// posdMetrics are what GET /metrics shows, through the Prometheus client
// library: posd's own series and the process and Go runtime series
// operators expect beside them. Labels carry wallets, outcomes, calls and
// device names: never a code, an order id or a key.
type posdMetrics struct {
	r        *prometheus.Registry
	reg      http.Handler // GET /metrics
	payments *prometheus.CounterVec
	requests *prometheus.CounterVec
	reverses prometheus.Counter
	lateN    *prometheus.CounterVec
	disagree *prometheus.CounterVec
	// clockJumps and future are the signs of a clock fault.
	clockJumps *prometheus.CounterVec
	future     *prometheus.CounterVec
	duration   prometheus.Histogram
}

func newMetrics() *posdMetrics {
	r := prometheus.NewRegistry()
	m := &posdMetrics{
		r: r,
		payments: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "posd_payments_total",
			Help: "Attempts that reached a final state, by wallet and state."}, []string{"wallet", "state"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "posd_gateway_requests_total",
			Help: "Gateway round trips by call and classified outcome."}, []string{"call", "outcome"}),
		reverses: prometheus.NewCounter(prometheus.CounterOpts{Name: "posd_reverses_total", Help: "Reverse calls sent."}),
		lateN: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "posd_late_results_total",
			Help: "Results of charges their lane had moved on from (kept off the customer displays), by charge state."}, []string{"state"}),
		disagree: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "posd_reconcile_disagreements_total",
			Help: "Orders a reconciliation found the journal and the gateway disagree on, by what."}, []string{"what"}),
		clockJumps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "posd_clock_jumps_total",
			Help: "Clock faults: at start, a wall clock behind the journal or far ahead of it; while running, a step against the monotonic clock."}, []string{"when", "direction"}),
		future: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "posd_clock_future_records_total",
			Help: "Records dated in the future (a clock that ran ahead wrote them) that a window stepped over, by kind."}, []string{"kind"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "posd_payment_seconds",
			Help: "From the scan to the attempt's final state.", Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}}),
	}
	r.MustRegister(m.payments, m.requests, m.reverses, m.lateN, m.disagree, m.clockJumps, m.future, m.duration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg = promhttp.HandlerFor(r, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}) // a bad series never hides the others
	return m
}

func (m *posdMetrics) call(c payment.Call, r payment.Result) {
	m.requests.WithLabelValues(string(c), r.Outcome.String()).Inc()
	if c == payment.CallReverse {
		m.reverses.Inc()
	}
}

func (m *posdMetrics) late(state string) { m.lateN.WithLabelValues(state).Inc() }

func (m *posdMetrics) order(o money.Order) {
	if !o.Final() || o.RefundBy == "operator" {
		return
	}
	m.payments.WithLabelValues(o.Wallet, string(o.State)).Inc()
	m.duration.Observe(o.FinishedAt.Sub(o.CreatedAt).Seconds())
}

func (m *posdMetrics) gauges(p *poller.Poller, j *journal.Journal, reg *device.Registry, gw *payment.Client, clk *clock.Clock) {
	m.r.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "posd_clock_offset_seconds",
			Help: "The wall clock minus the time posd has measured (the journal's observed time plus the monotonic clock)."},
			func() float64 { return clk.Status().Offset }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "posd_clock_degraded",
			Help: "1 while the clock is at fault (as /healthz says), 0 otherwise."}, func() float64 {
			if clk.Status().Degraded {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "posd_gateway_up",
			Help: "1 while the gateway can be reached (probe or last call), 0 while it cannot."}, func() float64 {
			if up, _ := gw.LinkUp(); up {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "posd_unresolved_orders",
			Help: "Orders the poller is still driving to a final state."}, func() float64 { return float64(p.Pending()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "posd_journal_bytes",
			Help: "Size of the journal file."}, func() float64 { return float64(j.Size()) }),
		deviceCollector{reg},
	)
}

// deviceCollector reports posd_device_up for the devices known at scrape
// time: their set changes with the config, so it is collected, not kept.
type deviceCollector struct{ reg *device.Registry }

var deviceUp = prometheus.NewDesc("posd_device_up", "1 while a scanner or display is connected.",
	[]string{"lane", "role", "type", "device"}, nil)

func (deviceCollector) Describe(ch chan<- *prometheus.Desc) { ch <- deviceUp }

func (d deviceCollector) Collect(ch chan<- prometheus.Metric) {
	for _, h := range d.reg.List() {
		up := 0.0
		if h.State == device.Connected {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(deviceUp, prometheus.GaugeValue, up, h.Lane, h.Role, h.Type, h.Name)
	}
}
