package journal

import (
	"math"
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
