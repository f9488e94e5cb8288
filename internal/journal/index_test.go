package journal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"example.com/posd/internal/money"
)

type rec struct {
	Phase      string    `json:"phase,omitempty"`
	State      string    `json:"state,omitempty"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	UpdatedAt  time.Time `json:"updated_at,omitzero"`
}

func live(t *testing.T, j *Journal, bucket string) []string {
	var out []string
	require.NoError(t, j.View(func(tx *Tx) error {
		return tx.forEachLive(bucket, func(k string, _ []byte) error { out = append(out, k); return nil })
	}))
	return out
}

func TestIndexesFollowPutAndDelete(t *testing.T) {
	j, err := Open(filepath.Join(t.TempDir(), "j.db"))
	require.NoError(t, err)
	defer j.Close()
	t0 := time.Unix(1_700_000_000, 0)
	put := func(bucket, key string, r rec) {
		require.NoError(t, j.Update(func(tx *Tx) error { return tx.putJSON(bucket, key, r) }))
	}
	done := func(bucket string, cutoff time.Time) []string {
		var ids []string
		require.NoError(t, j.View(func(tx *Tx) error { ids, _ = tx.doneBefore(bucket, cutoff, "", 100); return nil }))
		return ids
	}
	put(orderBucket, "A", rec{Phase: "pay"})
	put(orderBucket, "B", rec{Phase: "query"})
	put(orderBucket, "C", rec{Phase: "attention"})
	require.Equal(t, []string{"A", "B"}, live(t, j, orderBucket))
	put(orderBucket, "A", rec{Phase: "done", FinishedAt: t0.Add(2 * time.Hour)})
	put(orderBucket, "B", rec{Phase: "done", FinishedAt: t0})
	require.Empty(t, live(t, j, orderBucket))
	require.Equal(t, []string{"B", "A"}, done(orderBucket, t0.Add(3*time.Hour)), "oldest first")
	require.Equal(t, []string{"B"}, done(orderBucket, t0.Add(time.Hour)), "stops at the cutoff")
	// A final record written again with another time moves in the index.
	put(orderBucket, "B", rec{Phase: "done", FinishedAt: t0.Add(5 * time.Hour)})
	require.Equal(t, []string{"A"}, done(orderBucket, t0.Add(3*time.Hour)))
	require.NoError(t, j.Update(func(tx *Tx) error { return tx.remove(orderBucket, "A") }))
	require.Equal(t, []string{"B"}, done(orderBucket, t0.Add(6*time.Hour)))
	// chargeBucket: live while open or needing attention, then final by updated_at.
	put(chargeBucket, "X", rec{State: "awaiting_scan"})
	put(chargeBucket, "Y", rec{State: "needs_attention"})
	require.Equal(t, []string{"X", "Y"}, live(t, j, chargeBucket))
	put(chargeBucket, "X", rec{State: "paid", UpdatedAt: t0})
	require.Equal(t, []string{"Y"}, live(t, j, chargeBucket))
	require.Equal(t, []string{"X"}, done(chargeBucket, t0.Add(time.Second)))
	require.Empty(t, done(orderBucket, t0), "buckets do not mix")
}

func TestDoneBeforePages(t *testing.T) {
	j, err := Open(filepath.Join(t.TempDir(), "j.db"))
	require.NoError(t, err)
	defer j.Close()
	t0 := time.Unix(1_700_000_000, 0)
	require.NoError(t, j.Update(func(tx *Tx) error {
		for i := range 25 {
			if err := tx.putJSON(orderBucket, fmt.Sprintf("O%02d", i), rec{Phase: "done", FinishedAt: t0.Add(time.Duration(i) * time.Minute)}); err != nil {
				return err
			}
		}
		return nil
	}))
	var all []string
	after := ""
	for {
		var ids []string
		require.NoError(t, j.View(func(tx *Tx) error {
			ids, after = tx.doneBefore(orderBucket, t0.Add(20*time.Minute), after, 7)
			return nil
		}))
		all = append(all, ids...)
		if len(ids) < 7 {
			break
		}
	}
	require.Len(t, all, 20)
	require.Equal(t, "O00", all[0])
	require.Equal(t, "O19", all[19])
}

// A journal of schema 1 (no indexes) gets them when it is opened.
func TestMigrationBuildsIndexes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	j, err := Open(path)
	require.NoError(t, err)
	t0 := time.Unix(1_700_000_000, 0)
	require.NoError(t, j.Update(func(tx *Tx) error {
		if err := tx.putJSON(orderBucket, "LIVE", rec{Phase: "reverse"}); err != nil {
			return err
		}
		return tx.putJSON(orderBucket, "OLD", rec{Phase: "done", FinishedAt: t0})
	}))
	// Back to schema 1: no index buckets.
	require.NoError(t, j.db.Update(func(tx *bolt.Tx) error {
		for _, b := range []string{liveIndex, doneIndex} {
			if err := tx.DeleteBucket([]byte(b)); err != nil {
				return err
			}
		}
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], 1)
		return tx.Bucket([]byte(meta)).Put(keySchema, v[:])
	}))
	require.NoError(t, j.Close())
	j, err = Open(path)
	require.NoError(t, err)
	defer j.Close()
	require.Equal(t, []string{"LIVE"}, live(t, j, orderBucket))
	require.NoError(t, j.View(func(tx *Tx) error {
		ids, _ := tx.doneBefore(orderBucket, t0.Add(time.Second), "", 10)
		require.Equal(t, []string{"OLD"}, ids)
		return nil
	}))
}

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
