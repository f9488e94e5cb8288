package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/test/harness"
)

// posd killed with SIGKILL at each step of the journal, restarted, and
// every order reaches the final state the gateway's ledger holds.
func TestCrashAtEveryJournalStep(t *testing.T) {
	cases := []struct {
		failpoint string
		scenario  int
		attempt   string
	}{
		{"recorded", 23, "failed"},                 // order journaled, pay never sent: nothing created
		{"recorded", 86, "failed"},                 // ... and the gateway then creates nothing
		{"pay-answered", 23, "paid"},               // the gateway took the money, posd never recorded it
		{"pay-answered", 82, "declined"},           // the gateway declined, posd never recorded it
		{"query-journaled", 80, "paid"},            // between queries
		{"query-answered", 81, "reversed"},         // a query answered, not recorded
		{"reverse-journaled", 81, "reversed"},      // reverse decided, not sent
		{"reverse-answered", 87, "reversed"},       // during a reverse that recalls
		{"reverse-answered", 88, "reversed"},       // the reverse refunded a late payment
		{"confirm-journaled", 81, "reversed"},      // before the confirming query
		{"order_close-answered", 89, "closed"},     // during the fallback's close
		{"fallback_query-journaled", 89, "closed"}, // before the fallback's query
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s_%02d", c.failpoint, c.scenario), func(t *testing.T) {
			t.Parallel()
			g := startSandbox(t)
			d := newDaemon(t, g, opts{})
			d.start("POSD_FAILPOINT=" + c.failpoint)
			ch := d.openCharge("L1", 888)
			d.scan(harness.AlipayCode(c.scenario))
			err := d.waitExit(20 * time.Second)
			require.Error(t, err)
			require.Contains(t, err.Error(), "killed", "posd died by SIGKILL at %s", c.failpoint)

			d.start() // no failpoint: the restart must finish the job
			got := d.settle(ch.ID, 20*time.Second)
			require.Len(t, got.Attempts, 1, "one code, one attempt, across the crash")
			assert.Equal(t, c.attempt, got.Attempts[0].State)
			checkLedger(t, g.ledger(t), got)
			l := g.ledger(t)
			ids := map[string]bool{}
			for _, r := range l.PayRequests {
				ids[r.MchTradeID] = true
			}
			assert.LessOrEqual(t, len(ids), 1, "the code went out under one mch_trade_id only")
		})
	}
}

// An unresolved order outlives a restart: the reconciler keeps at it, and
// the journal never holds the full code.
func TestJournalKeepsNoFullCode(t *testing.T) {
	t.Parallel()
	g := startSandbox(t)
	d := newDaemon(t, g, opts{})
	d.start()
	code := harness.AlipayCode(42)
	c := d.openCharge("L1", 100)
	d.scan(code)
	d.settle(c.ID, 10*time.Second)
	d.kill()
	raw := harness.ReadFile(t, d.dir+"/journal.db")
	assert.False(t, strings.Contains(raw, code), "the journal holds the code only masked and hashed")
}

// SIGTERM lets the call in flight finish up to the bound, and the order
// completes at the next start.
func TestSIGTERMLeavesTheRestToTheJournal(t *testing.T) {
	t.Parallel()
	g := startSandbox(t, "-slow", "1500ms")
	d := newDaemon(t, g, opts{})
	d.start()
	c := d.openCharge("L1", 321)
	d.scan(harness.AlipayCode(83)) // the pay hangs at the gateway past posd's timeout
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, d.waitExit(10*time.Second), "a clean exit:\n%s", d.out.String())
	assert.Less(t, time.Since(start), 4*time.Second, "within the shutdown bound")
	d.start()
	got := d.settle(c.ID, 20*time.Second)
	assert.Equal(t, "paid", got.Attempts[0].State)
	checkLedger(t, g.ledger(t), got)
}
