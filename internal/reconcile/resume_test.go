package reconcile

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"example.com/posd/internal/journal"
	"example.com/posd/internal/journal/journaltest"
	"example.com/posd/internal/money"
	"example.com/posd/payment"
)

func paidDay(t *testing.T, n int) (*journal.Journal, time.Time, *answers) {
	j := journaltest.Open(t)
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.Local)
	gw := &answers{by: map[string]payment.Result{}}
	for i := range n {
		id := "C" + string(rune('A'+i/26)) + string(rune('A'+i%26))
		o := money.NewOrder(money.Order{MchTradeID: id, AuthCode: "28" + id, TotalFee: 100}, day.Add(time.Hour))
		o.State, o.Phase = money.Paid, money.PhaseDone
		require.NoError(t, j.Update(func(tx *journal.Tx) error { _, err := tx.SaveStep(&o, time.Now()); return err }))
		gw.by[id] = payment.Result{Outcome: payment.Paid, TradeState: 0}
	}
	return j, day, gw
}

// The start's Resume and the API's POST /v1/reconcile for the same day at
// once: one run, every order asked once.
func TestResumeAndStartAtOnceRunOnce(t *testing.T) {
	for range 20 {
		j, day, gw := paidDay(t, 30)
		killed := money.ReconcileRun{Date: "2026-11-25", State: "running", Total: 30, Checked: 0, Disagreements: []money.Disagreement{}}
		require.NoError(t, j.Update(func(tx *journal.Tx) error { return tx.PutReconcileRun(&killed) }))
		r := &Reconciler{Ctx: context.Background(), Journal: j, Gateway: gw, Rate: 100000, Log: zap.NewNop()}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _, _ = r.Resume() }()
		go func() { defer wg.Done(); _, _ = r.Start(day) }()
		wg.Wait()
		r.Wait()
		run, _, err := r.Status("2026-11-25")
		require.NoError(t, err)
		// Either one run, or the second started after the first ended (a
		// finished run is run again): never two at once.
		assert.Equal(t, "done", run.State)
		assert.Contains(t, []int{30, 60}, len(gw.asked), "asked %d times", len(gw.asked))
		seen := map[string]int{}
		for _, id := range gw.asked {
			seen[id]++
		}
		for id, n := range seen {
			assert.Equal(t, len(gw.asked)/30, n, "%s asked %d times", id, n)
		}
		assert.Equal(t, [3]int{30, 30, 30}, [3]int{run.Total, run.Checked, run.Agreed})
	}
}

// A back office polling a run's status while runs finish: a run that
// finished normally is never reported "interrupted" ("posd stopped while
// it ran ... POST /v1/reconcile again"), whenever the poll falls.
func TestStatusNeverSaysInterruptedForARunThatFinishes(t *testing.T) {
	j, day, gw := paidDay(t, 1)
	r := &Reconciler{Ctx: context.Background(), Journal: j, Gateway: gw, Rate: 100000, Log: zap.NewNop()}
	var interrupted atomic.Int64
	for range 300 {
		_, err := r.Start(day)
		require.NoError(t, err)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if run, _, _ := r.Status("2026-11-25"); run.State == "interrupted" {
						interrupted.Add(1)
					}
				}
			}()
		}
		r.Wait()
		close(stop)
		wg.Wait()
	}
	assert.Zero(t, interrupted.Load(), "a run that finished was reported interrupted")
}
