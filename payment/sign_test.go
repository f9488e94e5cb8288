package payment

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type vector struct {
	Name         string          `json:"name"`
	Key          string          `json:"key"`
	Params       json.RawMessage `json:"params"`
	Response     json.RawMessage `json:"response"`
	StringToSign string          `json:"string_to_sign"`
	Sign         string          `json:"sign"`
}

func loadVectors(t testing.TB) []vector {
	b, err := os.ReadFile("../testdata/sign-vectors.json")
	require.NoError(t, err)
	var f struct{ Vectors []vector }
	require.NoError(t, json.Unmarshal(b, &f))
	require.NotEmpty(t, f.Vectors)
	return f.Vectors
}

func TestSignVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			var params []Param
			var sig string
			if v.Params != nil {
				ps, _, err := ParamsFromJSON(v.Params)
				require.NoError(t, err)
				params, sig = ps, v.Sign
			} else {
				env, err := DecodeEnvelope(v.Response)
				require.NoError(t, err)
				params, sig = env.Data, env.Sign
				assert.Equal(t, v.Sign, env.Sign)
			}
			assert.Equal(t, v.StringToSign, SignString(params, v.Key))
			assert.Equal(t, v.Sign, Sign(params, v.Key))
			assert.True(t, Verify(params, v.Key, sig))
			assert.True(t, Verify(params, v.Key, strings.ToLower(sig)), "lower-case hex accepted")
			assert.False(t, Verify(params, v.Key+"x", sig), "another key must not verify")
			bad := []byte(sig)
			bad[5] ^= 1
			assert.False(t, Verify(params, v.Key, string(bad)))
		})
	}
}

// The typed pay request must sign exactly as the vector's generic params.
func TestPayRequestMatchesVector(t *testing.T) {
	v := loadVectors(t)[0]
	zero := 0
	r := PayRequest{
		MchTradeID: "S001_L1_1764102600_0001", PayType: "alipay.micro", DeviceInfo: "POS-01",
		Subject: "天虹龙华店", Body: "天虹龙华店-食品", TotalFee: 3, SpbillCreateIP: "127.0.0.1",
		AuthCode: "282941234567890123", TimeStart: 1764102600, SettleType: &zero,
	}
	require.NoError(t, r.Validate())
	ps := r.params("59382e3c7e3f4b1c8d0cfc3e", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS")
	assert.Equal(t, v.Sign, Sign(ps, v.Key))
	body := EncodeBody(ps, v.Sign)
	back, sig, err := ParamsFromJSON(body)
	require.NoError(t, err)
	assert.Equal(t, v.Sign, sig)
	assert.True(t, Verify(back, v.Key, sig), "the encoded body verifies: %s", body)
	assert.Contains(t, string(body), `"total_fee":3`, "numbers travel as numbers")
	assert.Contains(t, string(body), `"settle_type":0`)
	assert.NotContains(t, string(body), `"attach"`, "empty fields are not sent")
}

func TestRequestParamsSorted(t *testing.T) {
	one := 1
	lists := [][]Param{
		(&PayRequest{SettleType: &one}).params("m", "n"),
		OrderRef{}.params("m", "n"),
		(&RefundRequest{}).params("m", "n"),
		(&RefundQueryRequest{}).params("m", "n"),
	}
	for _, ps := range lists {
		for i := 1; i < len(ps); i++ {
			assert.Less(t, ps[i-1].Key, ps[i].Key, "params must be listed in byte order")
		}
	}
}

func TestEncodeEscapes(t *testing.T) {
	ps := []Param{{Key: "a", Value: "q\"\\\n\x01é"}}
	var m map[string]string
	require.NoError(t, json.Unmarshal(EncodeObject(ps), &m))
	assert.Equal(t, "q\"\\\n\x01é", m["a"])
}

func TestPayValidate(t *testing.T) {
	ok := func() PayRequest {
		return PayRequest{MchTradeID: "ABCDE", PayType: "alipay.micro", DeviceInfo: "L1", Subject: "s", Body: "b",
			TotalFee: 1, SpbillCreateIP: "127.0.0.1", AuthCode: "281234567890123456"}
	}
	base := ok()
	require.NoError(t, base.Validate())
	cases := map[string]func(*PayRequest){
		"short id":      func(r *PayRequest) { r.MchTradeID = "ABCD" },
		"long id":       func(r *PayRequest) { r.MchTradeID = strings.Repeat("A", 33) },
		"bad id char":   func(r *PayRequest) { r.MchTradeID = "ABC-DE" },
		"zero fee":      func(r *PayRequest) { r.TotalFee = 0 },
		"negative fee":  func(r *PayRequest) { r.TotalFee = -5 },
		"ms time_start": func(r *PayRequest) { r.TimeStart = 1764102600000 },
		"9-digit time":  func(r *PayRequest) { r.TimeStart = 176410260 },
		"no device":     func(r *PayRequest) { r.DeviceInfo = "" },
		"no subject":    func(r *PayRequest) { r.Subject = "" },
		"no body":       func(r *PayRequest) { r.Body = "" },
		"no ip":         func(r *PayRequest) { r.SpbillCreateIP = "" },
		"no code":       func(r *PayRequest) { r.AuthCode = "" },
		"bad scene":     func(r *PayRequest) { r.Scene = "face" },
		"bad utf8":      func(r *PayRequest) { r.Body = "\xff" },
	}
	for name, mut := range cases {
		r := ok()
		mut(&r)
		err := r.Validate()
		assert.ErrorIs(t, err, ErrInvalidRequest, name)
	}
}
