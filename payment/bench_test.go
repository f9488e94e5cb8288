package payment

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
)

func vectorPay() *PayRequest {
	zero := 0
	return &PayRequest{
		MchTradeID: "S001_L1_1764102600_0001", PayType: "alipay.micro", DeviceInfo: "POS-01",
		Subject: "天虹龙华店", Body: "天虹龙华店-食品", TotalFee: 3, SpbillCreateIP: "127.0.0.1",
		AuthCode: "282941234567890123", TimeStart: 1764102600, SettleType: &zero,
	}
}

const vkey = "m4X2zlLKpQ7vTf3W9sYb2Ec8Rn6Hd1Ja"

// BenchmarkSign: the vector request, from the typed request to the signature.
func BenchmarkSign(b *testing.B) {
	r := vectorPay()
	b.ReportAllocs()
	var arr [payParams]Param
	for b.Loop() {
		ps := r.appendParams(arr[:0], "59382e3c7e3f4b1c8d0cfc3e", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS")
		if Sign(ps, vkey) != "171F32C9C5262FE3EE994C6C63443715" {
			b.Fatal("wrong signature")
		}
	}
}

// BenchmarkSignSDKStyle is the usual Go SDK approach, for comparison: a
// map[string]any, sorted keys, JSON for non-strings, string concatenation.
func BenchmarkSignSDKStyle(b *testing.B) {
	m := map[string]any{
		"sign_type": "MD5", "merchant_id": "59382e3c7e3f4b1c8d0cfc3e", "pay_type": "alipay.micro",
		"mch_trade_id": "S001_L1_1764102600_0001", "device_info": "POS-01", "subject": "天虹龙华店",
		"body": "天虹龙华店-食品", "total_fee": 3, "spbill_create_ip": "127.0.0.1",
		"auth_code": "282941234567890123", "time_start": 1764102600,
		"nonce_str": "5K8264ILTKCH16CQ2502SI8ZNMTM67VS", "attach": "", "settle_type": 0,
	}
	b.ReportAllocs()
	for b.Loop() {
		if sdkSign(m, vkey) != "171F32C9C5262FE3EE994C6C63443715" {
			b.Fatal("wrong signature")
		}
	}
}

func sdkSign(m map[string]any, key string) string {
	keys := make([]string, 0, len(m))
	for k, v := range m {
		if k == "sign" || v == nil || v == "" {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		var s string
		switch v := m[k].(type) {
		case string:
			s = v
		default:
			j, _ := json.Marshal(v)
			s = string(j)
		}
		parts = append(parts, k+"="+s)
	}
	str := strings.Join(parts, "&") + "&key=" + key
	sum := md5.Sum([]byte(str))
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// BenchmarkSignVerify: sign the vector request, and verify the vector
// response's already-decoded data.
func BenchmarkSignVerify(b *testing.B) {
	r := vectorPay()
	var resp vector
	for _, v := range loadVectors(b) {
		if v.Response != nil {
			resp = v
		}
	}
	env, err := DecodeEnvelope(resp.Response)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var arr [payParams]Param
	for b.Loop() {
		ps := r.appendParams(arr[:0], "59382e3c7e3f4b1c8d0cfc3e", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS")
		_ = Sign(ps, vkey)
		if !Verify(env.Data, resp.Key, env.Sign) {
			b.Fatal("verify failed")
		}
	}
}

// BenchmarkDecodeEnvelope: JSON decoding of the vector response, on its own.
func BenchmarkDecodeEnvelope(b *testing.B) {
	var body []byte
	for _, v := range loadVectors(b) {
		if v.Response != nil {
			body = v.Response
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEnvelope(body); err != nil {
			b.Fatal(err)
		}
	}
}

func ExampleSign() {
	ps := []Param{{Key: "nonce_str", Value: "Q1"}, {Key: "mch_trade_id", Value: "S001_L1_1764102600_0001"},
		{Key: "merchant_id", Value: "59382e3c7e3f4b1c8d0cfc3e"}, {Key: "sign_type", Value: "MD5"}}
	fmt.Println(Sign(ps, vkey))
	// Output: 2AE8FC07F6D90125970FD0D759C1AB50
}
