package metrics

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestText(t *testing.T) {
	r := New()
	r.Counter("posd_payments_total", "Payments by wallet and outcome.", "wallet", "outcome")
	r.Add("posd_payments_total", 1, "alipay", "paid")
	r.Add("posd_payments_total", 2, "alipay", "paid")
	r.Add("posd_payments_total", 1, "wechat", `de"clined`)
	r.Histogram("posd_payment_seconds", "Scan to final state.", 0.5, 5)
	r.Observe("posd_payment_seconds", 0.1)
	r.Observe("posd_payment_seconds", 2)
	r.Gauge("posd_unresolved_orders", "Orders not final.", func() []Sample { return []Sample{{Value: 3}} })
	var b bytes.Buffer
	r.WriteText(&b)
	out := b.String()
	assert.Contains(t, out, `posd_payments_total{wallet="alipay",outcome="paid"} 3`)
	assert.Contains(t, out, `outcome="de\"clined"`)
	assert.Contains(t, out, `posd_payment_seconds_bucket{le="0.5"} 1`)
	assert.Contains(t, out, `posd_payment_seconds_bucket{le="5"} 2`)
	assert.Contains(t, out, `posd_payment_seconds_count 2`)
	assert.Contains(t, out, "# TYPE posd_unresolved_orders gauge\nposd_unresolved_orders 3\n")
}
