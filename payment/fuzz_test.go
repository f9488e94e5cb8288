package payment

import (
	"net/http"
	"testing"
)

func seedBodies(f *testing.F) {
	for _, v := range loadVectors(f) {
		if v.Response != nil {
			f.Add([]byte(v.Response))
		}
	}
	f.Add(signed(tk, order("0", Param{Key: "need_query", Value: "N"})...))
	f.Add([]byte(`{"code":601,"msg":"timeout"}`))
	f.Add([]byte(`{"code":"0","data":{"trade_state":"0"}}`))
	f.Add([]byte(`{"code":0,"data":{"a":{"b":[1,2,{"c":null}]}},"sign":""}`))
	f.Add([]byte(`null`))
}

// Whatever the gateway (or anyone in between) sends, decoding never panics
// and a decoded envelope re-encodes to data that verifies the same way.
func FuzzDecodeEnvelope(f *testing.F) {
	seedBodies(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := DecodeEnvelope(body)
		if err != nil {
			return
		}
		for i := 1; i < len(env.Data); i++ {
			if env.Data[i-1].Key >= env.Data[i].Key {
				t.Fatalf("data not sorted: %q >= %q", env.Data[i-1].Key, env.Data[i].Key)
			}
		}
		_ = Verify(env.Data, tk, env.Sign)
	})
}

// No body is ever classified Paid unless it is signed with the key and is
// about the order that was sent.
func FuzzClassify(f *testing.F) {
	seedBodies(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		exp := Expect{MerchantID: "M1", MchTradeID: "T0001", TotalFee: 100}
		for _, call := range []Call{CallPay, CallQuery, CallReverse, CallClose, CallRefund} {
			r := Classify(call, exp, tk, http.StatusOK, body, nil)
			if r.Outcome != Paid {
				continue
			}
			env, err := DecodeEnvelope(body)
			if err != nil || !Verify(env.Data, tk, env.Sign) {
				t.Fatalf("%s: paid without a valid signature: %q", call, body)
			}
			if id, _ := env.Get("mch_trade_id"); id != "T0001" {
				t.Fatalf("%s: paid for another order %q", call, id)
			}
			if fee, _ := env.Get("total_fee"); fee != "100" {
				t.Fatalf("%s: paid with another amount %q", call, fee)
			}
		}
	})
}
