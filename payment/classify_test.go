package payment

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

const tk = "test-key"

// signed builds a code-0 answer whose data is signed under key.
func signed(key string, data ...Param) []byte {
	sig := Sign(append([]Param(nil), data...), key)
	return []byte(fmt.Sprintf(`{"code":0,"msg":null,"data":%s,"version":"1.0","sign_type":"md5","sign":%q}`, EncodeObject(data), sig))
}

func order(state string, extra ...Param) []Param {
	ps := []Param{
		{Key: "merchant_id", Value: "M1"}, {Key: "mch_trade_id", Value: "T0001"},
		{Key: "total_fee", Value: "100", Num: true}, {Key: "trade_id", Value: "G1"},
	}
	if state != "" {
		ps = append(ps, Param{Key: "trade_state", Value: state, Num: true})
	}
	return append(ps, extra...)
}

func TestClassify(t *testing.T) {
	exp := Expect{MerchantID: "M1", MchTradeID: "T0001", TotalFee: 100}
	nq := func(v string) Param { return Param{Key: "need_query", Value: v} }
	cases := []struct {
		name   string
		call   Call
		status int
		body   []byte
		err    error
		want   Outcome
	}{
		{"pay paid", CallPay, 200, signed(tk, order("0", nq("N"))...), nil, Paid},
		{"pay paid, trade_state as string", CallPay, 200, signed(tk, order("", Param{Key: "trade_state", Value: "0"})...), nil, Paid},
		{"pay declined final with need_query N", CallPay, 200, signed(tk, order("7", nq("N"))...), nil, NotPaid},
		{"pay declined but need_query Y", CallPay, 200, signed(tk, order("7", nq("Y"))...), nil, Pending},
		{"pay declined, need_query missing", CallPay, 200, signed(tk, order("7")...), nil, Pending},
		{"pay paying", CallPay, 200, signed(tk, order("6", nq("Y"))...), nil, Pending},
		{"pay unpaid with N is not final", CallPay, 200, signed(tk, order("2", nq("N"))...), nil, Pending},
		{"pay unknown trade_state", CallPay, 200, signed(tk, order("42", nq("N"))...), nil, Pending},
		{"pay garbage trade_state", CallPay, 200, signed(tk, order("", Param{Key: "trade_state", Value: "x"})...), nil, Unknown},
		{"pay forged signature", CallPay, 200, signed("other", order("0", nq("N"))...), nil, Unknown},
		{"pay other order", CallPay, 200, signed(tk, append(order("0"), Param{Key: "mch_trade_id", Value: "T0002"})[1:]...), nil, Unknown},
		{"pay other amount", CallPay, 200, signed(tk, []Param{{Key: "merchant_id", Value: "M1"}, {Key: "mch_trade_id", Value: "T0001"}, {Key: "total_fee", Value: "1", Num: true}, {Key: "trade_state", Value: "0", Num: true}}...), nil, Unknown},
		{"pay other merchant", CallPay, 200, signed(tk, []Param{{Key: "merchant_id", Value: "M2"}, {Key: "mch_trade_id", Value: "T0001"}, {Key: "total_fee", Value: "100", Num: true}, {Key: "trade_state", Value: "0", Num: true}}...), nil, Unknown},
		{"pay paid without total_fee", CallPay, 200, signed(tk, Param{Key: "merchant_id", Value: "M1"}, Param{Key: "mch_trade_id", Value: "T0001"}, Param{Key: "trade_state", Value: "0", Num: true}), nil, Unknown},
		{"pay 600", CallPay, 200, []byte(`{"code":600,"msg":{"ACQ.SYSTEM_ERROR":"busy"}}`), nil, Unknown},
		{"pay 601", CallPay, 200, []byte(`{"code":601,"msg":"timeout"}`), nil, Unknown},
		{"pay 601 as string", CallPay, 200, []byte(`{"code":"601","msg":"timeout"}`), nil, Unknown},
		{"pay 107", CallPay, 200, []byte(`{"code":107,"msg":"dup"}`), nil, Duplicate},
		{"pay 101", CallPay, 200, []byte(`{"code":101,"msg":"sign"}`), nil, Rejected},
		{"pay 108", CallPay, 200, []byte(`{"code":108,"msg":"closed"}`), nil, Rejected},
		{"pay HTTP 500", CallPay, 500, []byte(`oops`), nil, Unknown},
		{"pay HTTP 202", CallPay, 202, signed(tk, order("0")...), nil, Unknown},
		{"pay HTTP 404", CallPay, 404, nil, nil, Unknown},
		{"pay garbage body", CallPay, 200, []byte(`<html>`), nil, Unknown},
		{"pay empty body", CallPay, 200, nil, nil, Unknown},
		{"pay truncated body", CallPay, 200, signed(tk, order("0")...)[:40], nil, Unknown},
		{"pay code 0 no data", CallPay, 200, []byte(`{"code":0,"msg":null}`), nil, Unknown},
		{"pay data not an object", CallPay, 200, []byte(`{"code":0,"data":[1,2]}`), nil, Unknown},
		{"pay timeout", CallPay, 0, nil, errors.New("context deadline exceeded"), Unknown},
		{"pay unsigned", CallPay, 200, []byte(`{"code":0,"data":{"merchant_id":"M1","mch_trade_id":"T0001","total_fee":100,"trade_state":0}}`), nil, Unknown},
		{"pay sign_type SHA", CallPay, 200, []byte(strings.Replace(string(signed(tk, order("0")...)), `"md5"`, `"SHA256"`, 1)), nil, Unknown},
		{"query paid", CallQuery, 200, signed(tk, order("0")...), nil, Paid},
		{"query refunding counts as paid", CallQuery, 200, signed(tk, order("1")...), nil, Paid},
		{"query closed", CallQuery, 200, signed(tk, order("3")...), nil, NotPaid},
		{"query reversed", CallQuery, 200, signed(tk, order("4")...), nil, NotPaid},
		{"query failed", CallQuery, 200, signed(tk, order("7")...), nil, NotPaid},
		{"query paying", CallQuery, 200, signed(tk, order("6")...), nil, Pending},
		{"query revoking", CallQuery, 200, signed(tk, order("5")...), nil, Pending},
		{"query initial", CallQuery, 200, signed(tk, order("-1")...), nil, Pending},
		{"query unknown state", CallQuery, 200, signed(tk, order("9")...), nil, Pending},
		{"query no trade_state", CallQuery, 200, signed(tk, order("")...), nil, Unknown},
		{"query forged", CallQuery, 200, signed("x", order("0")...), nil, Unknown},
		{"query 301", CallQuery, 200, []byte(`{"code":301,"msg":"not found"}`), nil, NotFound},
		{"query 600", CallQuery, 200, []byte(`{"code":600,"msg":"x"}`), nil, Unknown},
		{"reverse recall Y", CallReverse, 200, signed(tk, order("5", Param{Key: "recall", Value: "Y"})...), nil, Pending},
		{"reverse done", CallReverse, 200, signed(tk, order("4", Param{Key: "recall", Value: "N"})...), nil, NotPaid},
		{"reverse closed", CallReverse, 200, signed(tk, order("3", Param{Key: "recall", Value: "N"})...), nil, NotPaid},
		{"reverse N but paid", CallReverse, 200, signed(tk, order("0", Param{Key: "recall", Value: "N"})...), nil, Pending},
		{"reverse 404", CallReverse, 404, nil, nil, NoReverse},
		{"reverse 100", CallReverse, 200, []byte(`{"code":100,"msg":"?"}`), nil, NoReverse},
		{"reverse 103", CallReverse, 200, []byte(`{"code":103,"msg":"?"}`), nil, NoReverse},
		{"reverse 301", CallReverse, 200, []byte(`{"code":301,"msg":"?"}`), nil, NotFound},
		{"reverse timeout", CallReverse, 0, nil, errors.New("timeout"), Unknown},
		{"close 0", CallClose, 200, signed(tk, order("3", Param{Key: "close_status", Value: "0", Num: true})...), nil, Done},
		{"close 1", CallClose, 200, signed(tk, order("3", Param{Key: "close_status", Value: "1", Num: true})...), nil, Done},
		{"close -1", CallClose, 200, signed(tk, order("0", Param{Key: "close_status", Value: "-1", Num: true})...), nil, Pending},
		{"close no status", CallClose, 200, signed(tk, order("3")...), nil, Unknown},
		{"refund done", CallRefund, 200, signed(tk, Param{Key: "merchant_id", Value: "M1"}, Param{Key: "mch_trade_id", Value: "T0001"}, Param{Key: "refund_status", Value: "0", Num: true}), nil, Done},
		{"refund failed", CallRefund, 200, signed(tk, Param{Key: "merchant_id", Value: "M1"}, Param{Key: "mch_trade_id", Value: "T0001"}, Param{Key: "refund_status", Value: "-1", Num: true}), nil, Pending},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Classify(c.call, exp, tk, c.status, c.body, c.err)
			assert.Equal(t, c.want, r.Outcome, "reason: %s", r.Reason)
			if c.want != Paid && c.want != NotPaid && c.want != Done {
				assert.NotEmpty(t, r.Reason, "a non-final result says why")
			}
		})
	}
}

func TestClassifyKeepsFields(t *testing.T) {
	body := signed(tk, order("7", Param{Key: "need_query", Value: "N"}, Param{Key: "err_msg", Value: "余额不足"}, Param{Key: "out_trade_id", Value: "O1"})...)
	r := Classify(CallPay, Expect{MerchantID: "M1", MchTradeID: "T0001", TotalFee: 100}, tk, http.StatusOK, body, nil)
	assert.Equal(t, NotPaid, r.Outcome)
	assert.Equal(t, 7, r.TradeState)
	assert.Equal(t, "余额不足", r.ErrMsg)
	assert.Equal(t, "G1", r.TradeID)
	assert.Equal(t, "O1", r.OutTradeID)
}
