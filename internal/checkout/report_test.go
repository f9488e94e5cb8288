package checkout

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/journal"
	"example.com/posd/internal/money"
)

func TestReportRefusesAnOverflowingTotal(t *testing.T) {
	s, j, _ := newService(t, LaneConfig{ID: "L1", DeviceInfo: "POS01"})
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.Local)
	put := func(id string, fee int64) {
		o := money.NewOrder(money.Order{MchTradeID: id, ChargeID: "CH" + id, AuthCode: "28" + id, Wallet: "alipay", TotalFee: fee}, day.Add(time.Hour))
		o.Phase, o.State = money.PhaseDone, money.Paid
		require.NoError(t, j.Update(func(tx *journal.Tx) error { return saveOrder(tx, o) }))
	}
	put("BIG000001", math.MaxInt64-1)
	put("SMALL0001", 1)
	rows, err := s.Report(day)
	require.NoError(t, err)
	require.Len(t, rows, 1)
	assert.Equal(t, int64(math.MaxInt64), rows[0].Total, "up to the limit the sum is exact")
	assert.Equal(t, 2, rows[0].Count)

	put("BIG000002", math.MaxInt64)
	rows, err = s.Report(day)
	assert.ErrorContains(t, err, "overflow")
	assert.Nil(t, rows, "no wrong number")
}

// saveOrder journals an order as a step would.
func saveOrder(tx *journal.Tx, o money.Order) error {
	_, err := tx.SaveStep(&o, time.Now())
	return err
}
