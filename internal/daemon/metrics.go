package daemon

import (
	"example.com/posd/internal/device"
	"example.com/posd/internal/journal"
	"example.com/posd/internal/metrics"
	"example.com/posd/payment"
	"example.com/posd/poller"
)

// posdMetrics are what GET /metrics shows. Labels carry wallets, outcomes,
// calls and device names: never a code, an order id or a key.
type posdMetrics struct{ reg *metrics.Registry }

func newMetrics() *posdMetrics {
	r := metrics.New()
	r.Counter("posd_payments_total", "Attempts that reached a final state, by wallet and state.", "wallet", "state")
	r.Counter("posd_gateway_requests_total", "Gateway round trips by call and classified outcome.", "call", "outcome")
	r.Counter("posd_reverses_total", "Reverse calls sent.")
	r.Counter("posd_late_results_total", "Results of charges their lane had moved on from (kept off the customer displays), by charge state.", "state")
	r.Histogram("posd_payment_seconds", "From the scan to the attempt's final state.", 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
	return &posdMetrics{reg: r}
}

func (m *posdMetrics) call(c payment.Call, r payment.Result) {
	m.reg.Add("posd_gateway_requests_total", 1, string(c), r.Outcome.String())
	if c == payment.CallReverse {
		m.reg.Add("posd_reverses_total", 1)
	}
}

func (m *posdMetrics) late(state string) { m.reg.Add("posd_late_results_total", 1, state) }

func (m *posdMetrics) order(o poller.Order) {
	if !o.Final() || o.RefundBy == "operator" {
		return
	}
	m.reg.Add("posd_payments_total", 1, o.Wallet, string(o.State))
	m.reg.Observe("posd_payment_seconds", o.FinishedAt.Sub(o.CreatedAt).Seconds())
}

func (m *posdMetrics) gauges(p *poller.Poller, j *journal.Journal, reg *device.Registry, gw *payment.Client) {
	m.reg.Gauge("posd_gateway_up", "1 while the gateway can be reached (probe or last call), 0 while it cannot.", func() []metrics.Sample {
		up, _ := gw.LinkUp()
		v := 0.0
		if up {
			v = 1
		}
		return []metrics.Sample{{Value: v}}
	})
	m.reg.Gauge("posd_unresolved_orders", "Orders the poller is still driving to a final state.", func() []metrics.Sample {
		return []metrics.Sample{{Value: float64(p.Pending())}}
	})
	m.reg.Gauge("posd_journal_bytes", "Size of the journal file.", func() []metrics.Sample {
		return []metrics.Sample{{Value: float64(j.Size())}}
	})
	m.reg.Gauge("posd_device_up", "1 while a scanner or display is connected.", func() []metrics.Sample {
		var out []metrics.Sample
		for _, h := range reg.List() {
			up := 0.0
			if h.State == device.Connected {
				up = 1
			}
			out = append(out, metrics.Sample{Labels: []string{h.Lane, h.Role, h.Type, h.Name}, Value: up})
		}
		return out
	}, "lane", "role", "type", "device")
}
