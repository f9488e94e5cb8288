package journal

// A write derives the index entries of the record it replaces from the
// record it read (typed), and compresses only done records. Whatever format the replaced record was stored in (plain or
// compressed, done or live, as this or an older posd wrote it), the index
// must afterwards hold exactly the entries of the records stored.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"example.com/posd/internal/money"
)

// indexAgrees checks the live and done indexes against every stored
// order and charge.
func indexAgrees(t *testing.T, j *Journal, step string) {
	t.Helper()
	var want, got []string
	require.NoError(t, j.db.View(func(tx *bolt.Tx) error {
		for _, b := range []string{orderBucket, chargeBucket} {
			_ = tx.Bucket([]byte(b)).ForEach(func(k, v []byte) error {
				e := storedEntries(b, string(k), v)
				if e.live != nil {
					want = append(want, "live "+string(e.live))
				}
				if e.done != nil {
					want = append(want, "done "+string(e.done))
				}
				return nil
			})
		}
		for _, ix := range []string{liveIndex, doneIndex} {
			_ = tx.Bucket([]byte(ix)).ForEach(func(k, _ []byte) error { got = append(got, ix+" "+string(k)); return nil })
		}
		return nil
	}))
	sort.Strings(want)
	sort.Strings(got)
	require.Equal(t, want, got, "after %s", step)
}

func TestIndexFollowsEveryRewrite(t *testing.T) {
	j := openTest(t)
	rng := rand.New(rand.NewPCG(7, 7))
	t0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	phases := []money.Phase{money.PhasePay, money.PhaseQuery, money.PhaseReverse, money.PhaseConfirm, money.PhaseReconcile,
		money.PhaseRefund, money.PhaseAttention, money.PhaseDone, money.PhaseDone, money.PhaseDone}
	cstates := []money.State{money.AwaitingScan, money.Paying, money.Paid, money.Canceled, money.NeedsAttention, money.PartiallyRefunded, money.Refunded}
	ids := []string{"O1", "O2", "O3", "O4"}
	for _, id := range ids {
		c := money.Charge{ID: "C" + id, Lane: "L1", TotalFee: 100, State: money.Paying, AttemptIDs: []string{id}, UpdatedAt: t0}
		o := money.NewOrder(money.Order{MchTradeID: id, ChargeID: c.ID, Lane: "L1", TotalFee: 100, AuthCode: "28" + id}, t0)
		require.NoError(t, j.Update(func(tx *Tx) error { return tx.RecordAttempt(&o, &c) }))
	}
	indexAgrees(t, j, "record")
	for i := 0; i < 3000; i++ {
		id := ids[rng.IntN(len(ids))]
		// Now and then the stored record is in the other format, as an
		// older posd (everything compressed) or a plain done one wrote it.
		if rng.IntN(4) == 0 {
			for _, b := range []string{orderBucket, chargeBucket} {
				key := id
				if b == chargeBucket {
					key = "C" + id
				}
				require.NoError(t, j.db.Update(func(tx *bolt.Tx) error {
					bk := tx.Bucket([]byte(b))
					v := bk.Get([]byte(key))
					js, err := decode(v)
					if err != nil {
						return err
					}
					js = bytes.Clone(js)
					if len(v) > 0 && v[0] == formatFlate {
						return bk.Put([]byte(key), js)
					}
					return bk.Put([]byte(key), encode(js))
				}))
			}
		}
		now := t0.Add(time.Duration(rng.IntN(100000)) * time.Second)
		step := fmt.Sprintf("step %d (%s)", i, id)
		wrote := false
		switch rng.IntN(4) {
		case 0, 1:
			wrote = true // an order's step, its charge moved by Settle
			require.NoError(t, j.Update(func(tx *Tx) error {
				o, _, err := tx.Order(id)
				if err != nil {
					return err
				}
				o.Phase = phases[rng.IntN(len(phases))]
				o.State = []money.State{money.Paying, money.Paid, money.Declined, money.Unknown, money.Reversed}[rng.IntN(5)]
				if o.Phase == money.PhaseDone {
					o.FinishedAt = now
				}
				_, err = tx.SaveStep(&o, now)
				return err
			}))
		case 2: // the lane changes the charge
			_, _, err := func() (money.Charge, bool, error) {
				var c money.Charge
				var ok bool
				err := j.Update(func(tx *Tx) error {
					var err error
					c, ok, err = tx.UpdateCharge("C"+id, func(c *money.Charge) bool {
						c.State, c.UpdatedAt = cstates[rng.IntN(len(cstates))], now
						return true
					})
					return err
				})
				return c, ok, err
			}()
			require.NoError(t, err)
		case 3: // a refund named on the charge
			require.NoError(t, j.Update(func(tx *Tx) error {
				return tx.RecordRefund(&money.Refund{MchRefundID: fmt.Sprintf("%sR%d", id, i), ChargeID: "C" + id, MchTradeID: id, RefundFee: 1})
			}))
		}
		indexAgrees(t, j, step)
		// An order just written is stored plain while live, compressed once done.
		if strings.HasPrefix(step, "step") {
			var o money.Order
			require.NoError(t, j.View(func(tx *Tx) error { var err error; o, _, err = tx.Order(id); return err }))
			v := storedValue(t, j, orderBucket, id)
			if wrote {
				require.Equal(t, !o.Active(), len(v) > 0 && v[0] == formatFlate, "%s: order %s (%s) stored compressed", step, id, o.Phase)
			}
		}
	}
}
