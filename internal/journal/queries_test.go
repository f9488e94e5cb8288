package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/money"
)

func TestReportRefusesAnOverflowingTotal(t *testing.T) {
	j := openTest(t)
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.Local)
	put := func(id string, fee int64) {
		o := money.NewOrder(money.Order{MchTradeID: id, ChargeID: "CH" + id, AuthCode: "28" + id, Wallet: "alipay", TotalFee: fee}, day.Add(time.Hour))
		o.Phase, o.State = money.PhaseDone, money.Paid
		require.NoError(t, j.Update(func(tx *Tx) error { _, err := tx.SaveStep(&o, time.Now()); return err }))
	}
	put("BIG000001", math.MaxInt64-1)
	put("SMALL0001", 1)
	rows, err := j.Report(day, day.AddDate(0, 0, 1))
	require.NoError(t, err)
	require.Len(t, rows, 1)
	assert.Equal(t, int64(math.MaxInt64), rows[0].Fee, "up to the limit the sum is exact")
	assert.Equal(t, 2, rows[0].Count)

	put("BIG000002", math.MaxInt64)
	rows, err = j.Report(day, day.AddDate(0, 0, 1))
	assert.ErrorContains(t, err, "overflow")
	assert.Nil(t, rows, "no wrong number")
}

func TestOrdersAndExport(t *testing.T) {
	j := openTest(t)
	t0 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.Local)
	for i, ph := range []money.Phase{money.PhaseDone, money.PhaseReconcile, money.PhaseDone} {
		o := money.NewOrder(money.Order{MchTradeID: string(rune('A' + i)), AuthCode: "28" + string(rune('A'+i))}, t0.Add(time.Duration(i)*time.Hour))
		o.Phase = ph
		require.NoError(t, j.Update(func(tx *Tx) error { _, err := tx.SaveStep(&o, time.Now()); return err }))
	}
	all, err := j.Orders(false, 2)
	require.NoError(t, err)
	assert.Equal(t, []string{"C", "B"}, []string{all[0].MchTradeID, all[1].MchTradeID}, "newest first, limited")
	open, err := j.Orders(true, 0)
	require.NoError(t, err)
	require.Len(t, open, 1)
	assert.Equal(t, "B", open[0].MchTradeID)
	ex, err := j.Export(t0, t0.Add(2*time.Hour))
	require.NoError(t, err)
	assert.Equal(t, []string{"A", "B"}, []string{ex[0].MchTradeID, ex[1].MchTradeID}, "oldest first, [from, to)")
	assert.Len(t, ex, 2)
}

// An export of more orders than a read batch: oldest first across the
// batches (written in another order), only the range asked, and fn's
// error stops it.
func TestExportEachAcrossBatches(t *testing.T) {
	j := openTest(t)
	t0 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.Local)
	const n = 2*exportBatch + 17
	require.NoError(t, j.Update(func(tx *Tx) error {
		for i := range n {
			k := (i * 7919) % n // written out of time order
			o := money.NewOrder(money.Order{MchTradeID: fmt.Sprintf("X%05d", k), AuthCode: fmt.Sprintf("28%016d", k)}, t0.Add(time.Duration(k)*time.Second))
			o.Phase, o.State = money.PhaseDone, money.Paid
			if _, err := tx.SaveStep(&o, time.Now()); err != nil {
				return err
			}
		}
		return nil
	}))
	var got []string
	require.NoError(t, j.ExportEach(t0.Add(time.Second), t0.Add((n-1)*time.Second), func(o *money.Order) error {
		got = append(got, o.MchTradeID)
		return nil
	}))
	require.Len(t, got, n-2, "[from, to)")
	for i, id := range got {
		require.Equal(t, fmt.Sprintf("X%05d", i+1), id, "oldest first")
	}
	newest, err := j.Orders(false, 10)
	require.NoError(t, err)
	require.Len(t, newest, 10, "a limit far below the orders: the list is cut as it grows")
	for i, o := range newest {
		assert.Equal(t, fmt.Sprintf("X%05d", n-1-i), o.MchTradeID, "newest first")
	}
	stop := errors.New("client gone")
	calls := 0
	err = j.ExportEach(t0, t0.Add(n*time.Second), func(*money.Order) error {
		calls++
		if calls == exportBatch+1 {
			return stop
		}
		return nil
	})
	assert.ErrorIs(t, err, stop)
	assert.Equal(t, exportBatch+1, calls)
}

// BenchmarkExport: the heap an export of POSD_EXPORT_ORDERS orders (default
// 50,000) takes at its peak, written as it is read ("stream": ExportEach,
// as GET /v1/export does) or gathered first ("slice": Export, as it did).
func BenchmarkExport(b *testing.B) {
	n := 50_000
	if v, err := strconv.Atoi(os.Getenv("POSD_EXPORT_ORDERS")); err == nil {
		n = v
	}
	j, err := Open(filepath.Join(b.TempDir(), "j.db"))
	require.NoError(b, err)
	defer j.Close()
	t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.Local)
	for lo := 0; lo < n; lo += 5000 {
		require.NoError(b, j.Update(func(tx *Tx) error {
			for i := lo; i < min(n, lo+5000); i++ {
				o := money.NewOrder(money.Order{MchTradeID: fmt.Sprintf("S001_POS01_%08d", i), ChargeID: fmt.Sprintf("CH%020d", i), Lane: "L1",
					AuthCode: fmt.Sprintf("28%016d", i), Wallet: "alipay", TotalFee: 1234, Subject: "groceries", Body: "groceries"}, t0.Add(time.Duration(i)*time.Minute))
				o.Phase, o.State, o.FinishedAt = money.PhaseDone, money.Paid, o.CreatedAt.Add(2*time.Second)
				if _, err := tx.SaveStep(&o, o.FinishedAt); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	peak := func(f func(sample func())) uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		base, top := m.HeapAlloc, m.HeapAlloc
		f(func() {
			runtime.ReadMemStats(&m)
			top = max(top, m.HeapAlloc)
		})
		return top - base
	}
	to := t0.AddDate(1, 0, 0)
	b.Run("stream", func(b *testing.B) {
		for b.Loop() {
			p := peak(func(sample func()) {
				k := 0
				enc := json.NewEncoder(io.Discard)
				require.NoError(b, j.ExportEach(t0, to, func(o *money.Order) error {
					if k++; k%1000 == 0 {
						sample()
					}
					return enc.Encode(o)
				}))
			})
			b.ReportMetric(float64(p)/(1<<20), "peak-heap-MB")
		}
	})
	b.Run("slice", func(b *testing.B) {
		for b.Loop() {
			p := peak(func(sample func()) {
				os, err := j.Export(t0, to)
				require.NoError(b, err)
				sample()
				require.NoError(b, json.NewEncoder(io.Discard).Encode(os))
				sample()
			})
			b.ReportMetric(float64(p)/(1<<20), "peak-heap-MB")
		}
	})
}
