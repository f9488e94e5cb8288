package journal

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"example.com/posd/internal/money"
	"example.com/posd/payment"
)

// fullOrder is an order with every field set, each to a value of its own,
// so that a key lost, renamed, moved or doubled shows in its JSON.
func fullOrder() money.Order {
	at := time.Date(2026, 3, 14, 9, 26, 53, 589793238, time.UTC)
	return money.Order{
		MchTradeID: "S001_POS01_G00000042", ChargeID: "CHQ7RZ3K", Lane: "L1", DeviceInfo: "POS01",
		PayType: "alipay.micro", Wallet: "alipay", Scene: "bar_code", TotalFee: 1651,
		Subject: "goods", Body: "two goods", Attach: "table 4", OpUserID: "cashier7", Shift: "early",
		GoodsTag: "promo", ClientIP: "10.0.0.7", TimeStart: 1773480413,
		AuthCode: "284761234567891234", CodeMasked: "**************1234", CodeSHA256: "c0de",
		State: money.Refunded, Phase: money.PhaseDone, Queries: 3, Reverses: 1, Tries: 2,
		PayFlags:      money.PayFlags{Adopt: true, Seen: true, ReverseSent: true, NotSent: true},
		RefundUnknown: true, Abort: true,
		RefundProgress: money.RefundProgress{
			RefundSends: 2, RefundMissing: 1, RefundID: "S001_POS01_G00000042R2",
			RefundFee: 651, RefundedFee: 1000, RefundResult: money.Refunded, RefundedElsewhere: 5,
			Refunds: []string{"S001_POS01_G00000042R1", "S001_POS01_G00000042R2"}, RefundSeq: 1,
			RefundCheck: true, RefundFound: true, RefundAsk: 1, RefundsFound: 2, FoundFee: 1651,
		},
		Restored: true, RefundBy: "operator",
		TradeState: 4, TradeID: "T42", OutTradeID: "W42", ErrMsg: "refunded in full", Reason: "operator refund",
		NextAt: at.Add(time.Minute), CreatedAt: at, UpdatedAt: at.Add(2 * time.Second), FinishedAt: at.Add(3 * time.Second),
		Resolution: "paid", Reopened: "reconciliation found it open",
		PayDetail: payment.PayDetail{
			CouponFee: 100, BuyerPayAmount: 1551, ReceiptAmount: 1650, InvoiceAmount: 1649, PointAmount: 7,
			TimeEnd: "1773480415", BankType: "CMB_DEBIT", FundBillList: `[{"fund_channel":"ALIPAYACCOUNT","amount":"15.51"}]`,
			BuyerLogonID: "138****0000",
		},
		Version: 41,
	}
}

// fullOrderJSON is fullOrder as the journal holds it (version one more:
// the journal numbers each write), in the flat shape every posd has
// written: one object, its keys in this order.
const fullOrderJSON = `{"mch_trade_id":"S001_POS01_G00000042","charge_id":"CHQ7RZ3K","lane":"L1","device_info":"POS01",` +
	`"pay_type":"alipay.micro","wallet":"alipay","scene":"bar_code","total_fee":1651,"subject":"goods","body":"two goods",` +
	`"attach":"table 4","op_user_id":"cashier7","shift":"early","goods_tag":"promo","client_ip":"10.0.0.7",` +
	`"time_start":1773480413,"code_masked":"**************1234","code_sha256":"c0de","state":"refunded","phase":"done",` +
	`"queries":3,"reverses":1,"tries":2,"adopt":true,"seen":true,"reverse_sent":true,"not_sent":true,` +
	`"refund_unknown":true,"abort":true,"refund_sends":2,"refund_missing":1,"refund_id":"S001_POS01_G00000042R2",` +
	`"refund_fee":651,"refunded_fee":1000,"refund_result":"refunded","refunded_elsewhere":5,` +
	`"refunds":["S001_POS01_G00000042R1","S001_POS01_G00000042R2"],"refund_seq":1,"refund_check":true,` +
	`"refund_found":true,"refund_ask":1,"refunds_found":2,"found_fee":1651,"restored":true,"refund_by":"operator",` +
	`"trade_state":4,"trade_id":"T42","out_trade_id":"W42","err_msg":"refunded in full","reason":"operator refund",` +
	`"next_at":"2026-03-14T09:27:53.589793238Z","created_at":"2026-03-14T09:26:53.589793238Z",` +
	`"updated_at":"2026-03-14T09:26:55.589793238Z","finished_at":"2026-03-14T09:26:56.589793238Z",` +
	`"resolution":"paid","reopened":"reconciliation found it open","coupon_fee":100,"buyer_pay_amount":1551,` +
	`"receipt_amount":1650,"invoice_amount":1649,"point_amount":7,"time_end":"1773480415","bank_type":"CMB_DEBIT",` +
	`"fund_bill_list":"[{\"fund_channel\":\"ALIPAYACCOUNT\",\"amount\":\"15.51\"}]","buyer_logon_id":"138****0000",` +
	`"version":42}`

// zeroFields names the fields of v left at their zero value, looking
// inside embedded structs (time.Time is a value, not a group).
func zeroFields(v reflect.Value, prefix string) []string {
	var zero []string
	for i := range v.NumField() {
		f, fv := v.Type().Field(i), v.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Time]() {
			zero = append(zero, zeroFields(fv, prefix+f.Name+".")...)
			continue
		}
		if fv.IsZero() {
			zero = append(zero, prefix+f.Name)
		}
	}
	return zero
}

// An order is written to the journal as one flat JSON object, byte for
// byte what every posd before wrote, and read back whole.
func TestOrderJSONIsFlat(t *testing.T) {
	o := fullOrder()
	require.Empty(t, zeroFields(reflect.ValueOf(o), ""), "fullOrder must set every field")

	j, err := Open(filepath.Join(t.TempDir(), "j.db"))
	require.NoError(t, err)
	defer j.Close()
	require.NoError(t, j.Update(func(tx *Tx) error {
		_, err := tx.SaveStep(&o, o.UpdatedAt)
		return err
	}))

	stored := storedValue(t, j, orderBucket, o.MchTradeID)
	require.Equal(t, byte(formatFlate), stored[0], "a final order is stored compressed")
	js, err := decode(stored)
	require.NoError(t, err)
	require.Equal(t, fullOrderJSON, string(js))

	want := o
	want.AuthCode = "" // never journaled
	require.NoError(t, j.View(func(tx *Tx) error {
		got, ok, err := tx.Order(o.MchTradeID)
		require.True(t, ok)
		require.Equal(t, want, got)
		return err
	}))
}

// A record an older posd wrote, plain or compressed, reads to the same
// order; a typical final one, read and written again, keeps its bytes.
func TestOlderOrderRecordsRead(t *testing.T) {
	want := fullOrder()
	want.AuthCode, want.Version = "", 42

	j, err := Open(filepath.Join(t.TempDir(), "j.db"))
	require.NoError(t, err)
	defer j.Close()
	putStored(t, j, orderBucket, "plain", []byte(fullOrderJSON))
	putStored(t, j, orderBucket, "compressed", encode([]byte(fullOrderJSON)))
	typical := exampleOrder(7, "CHGS001_POS01_G00000007", exampleAt)
	putStored(t, j, orderBucket, "typical", typical)

	require.NoError(t, j.View(func(tx *Tx) error {
		for _, key := range []string{"plain", "compressed"} {
			got, ok, err := tx.Order(key)
			require.NoError(t, err, key)
			require.True(t, ok, key)
			require.Equal(t, want, got, key)
		}
		o, ok, err := tx.Order("typical")
		require.NoError(t, err)
		require.True(t, ok)
		var b []byte
		b, err = json.Marshal(&o)
		require.NoError(t, err)
		require.Equal(t, string(typical), string(b))
		return nil
	}))
}
