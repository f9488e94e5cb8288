package display

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A display that never reads must not delay a publisher: it loses the
// oldest frames and keeps the newest.
func TestHubNeverBlocks(t *testing.T) {
	h := NewHub()
	stuck := h.Subscribe("L1", 4)
	other := h.Subscribe("L2", 4)
	start := time.Now()
	for i := range 10_000 {
		h.Publish(Event{Lane: "L1", Kind: Paying, TotalFee: int64(i)})
	}
	assert.Less(t, time.Since(start), time.Second)
	var last Event
	for len(stuck.C()) > 0 {
		last = <-stuck.C()
	}
	assert.EqualValues(t, 9999, last.TotalFee, "the newest frame survives")
	assert.Empty(t, other.C(), "other lanes see nothing of L1")

	late := h.Subscribe("", 4)
	e := <-late.C()
	assert.EqualValues(t, 9999, e.TotalFee, "a new subscriber starts from each lane's latest state")
	h.Unsubscribe(late)
	h.Publish(Event{Lane: "L1", Kind: Paid})
	assert.Empty(t, late.C())
}

func TestTerminalLines(t *testing.T) {
	var b bytes.Buffer
	term := &Terminal{W: &b}
	for _, e := range []Event{
		{Lane: "L1", Kind: AwaitingScan, TotalFee: 1234, Sandbox: true},
		{Lane: "L1", Kind: Paid, TotalFee: 5, Wallet: "alipay", MchTradeID: "M1", TradeID: "T1"},
		{Lane: "L1", Kind: Declined, Reason: "余额不足"},
		{Lane: "L1", Kind: NeedsAttention},
		{Lane: "L1", Kind: OutOfService, Reason: "journal"},
	} {
		require.NoError(t, term.Show(e))
	}
	out := b.String()
	assert.Contains(t, out, "[SANDBOX] lane L1: ¥12.34 due")
	assert.Contains(t, out, "PAID ¥0.05 with alipay")
	assert.Contains(t, out, "余额不足")
	assert.Contains(t, out, "do not take the money again")
	assert.Contains(t, out, "OUT OF SERVICE")
	assert.Equal(t, "-0.05", Yuan(-5))
	assert.Equal(t, "100.00", Yuan(10000))
}
