package journal

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
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
