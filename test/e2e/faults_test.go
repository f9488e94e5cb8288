package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/test/harness"
)

// matrixCase is one column of the fault matrix: a call kind and the
// scenario that makes posd call it.
type matrixCase struct {
	call     string
	scenario int
	refund   bool   // the call is an operator refund of a paid charge
	want     string // the attempt's final state without any fault
}

var matrixCalls = []matrixCase{
	{call: "pay", scenario: 23, want: "paid"},
	{call: "query", scenario: 80, want: "paid"},
	{call: "reverse", scenario: 81, want: "reversed"},
	{call: "order_close", scenario: 89, want: "closed"},
	{call: "refund", scenario: 23, refund: true, want: "refunded"},
}

// expected is the matrix: what posd ends with for a fault on a call. A pay
// that never reached the gateway created nothing (failed); every other
// fault leaves the outcome as it would be without it — nothing lost,
// nothing charged twice.
func expected(f Fault, c matrixCase) string {
	if c.call == "pay" && (f == DropBefore || f == Status500) {
		return "failed"
	}
	return c.want
}

// TestFaultMatrix: every fault kind on the first call of every kind, each
// cell through the real binary, a fault proxy and the sandbox, checked
// against the ledger. docs/reliability.md lists the cells.
func TestFaultMatrix(t *testing.T) {
	for _, f := range AllFaults {
		for _, c := range matrixCalls {
			t.Run(fmt.Sprintf("%s/%s", f, c.call), func(t *testing.T) {
				t.Parallel()
				g := startSandbox(t, "-slow", "1500ms")
				p := startFaultProxy(t, g.url, 700*time.Millisecond, only(c.call, 1, f))
				d := newDaemon(t, g, opts{gateway: p.url})
				d.start()
				ch := d.openCharge("L1", 2468)
				d.scan(harness.AlipayCode(c.scenario))
				got := d.settle(ch.ID, 20*time.Second)
				if c.refund {
					require.Equal(t, "paid", got.State)
					code, body := d.do("POST", "/v1/charges/"+ch.ID+"/refund", nil)
					require.Equal(t, 202, code, "%s", body)
					harness.WaitFor(t, 20*time.Second, func() bool { return d.charge(ch.ID, "1s").State == "refunded" }, "refunded")
					got = d.charge(ch.ID, "")
					require.Len(t, g.ledger(t).Refunds, 1, "one refund, however often it was sent")
				}
				require.Len(t, got.Attempts, 1)
				assert.Equal(t, expected(f, c), got.Attempts[0].State)
				assert.Equal(t, 1, p.faults()[f], "the fault was injected")
				checkLedger(t, g.ledger(t), got)
			})
		}
	}
}
