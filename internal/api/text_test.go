package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"example.com/posd/test/harness"
)

// Every text field a till sends refuses control characters and invalid
// UTF-8 with 422, naming the field; printable text (CJK included) passes.
func TestTillTextFieldsRefuseControlCharacters(t *testing.T) {
	s := newServer(t)
	fields := []struct {
		path, field string
		body        map[string]any // the field is added
		header      bool           // the field is a header
	}{
		{"/v1/charges", "subject", map[string]any{"lane": "L1", "total_fee": 100, "body": "b"}, false},
		{"/v1/charges", "body", map[string]any{"lane": "L1", "total_fee": 100, "subject": "s"}, false},
		{"/v1/charges", "attach", map[string]any{"lane": "L1", "total_fee": 100, "subject": "s", "body": "b"}, false},
		{"/v1/charges", "op_user_id", map[string]any{"lane": "L1", "total_fee": 100, "subject": "s", "body": "b"}, false},
		{"/v1/charges", "shift", map[string]any{"lane": "L1", "total_fee": 100, "subject": "s", "body": "b"}, false},
		{"/v1/charges", "goods_tag", map[string]any{"lane": "L1", "total_fee": 100, "subject": "s", "body": "b"}, false},
		{"/v1/charges", "reference", map[string]any{"lane": "L1", "total_fee": 100, "subject": "s", "body": "b"}, false},
		{"/v1/charges", "Idempotency-Key", map[string]any{"lane": "L1", "total_fee": 100, "subject": "s", "body": "b"}, true},
		{"/v1/charges/CHX/refunds", "refund_id", map[string]any{"refund_fee": 1}, false},
		{"/v1/charges/CHX/refunds", "reason", map[string]any{"refund_fee": 1, "refund_id": "R1"}, false},
		{"/v1/charges/CHX/refunds", "op_user_id", map[string]any{"refund_fee": 1, "refund_id": "R1"}, false},
		{"/v1/charges/CHX/refunds", "shift", map[string]any{"refund_fee": 1, "refund_id": "R1"}, false},
		{"/v1/charges/CHX/refunds", "Idempotency-Key", map[string]any{"refund_fee": 1}, true},
		{"/v1/orders/X/resolve", "by", map[string]any{"decision": "paid", "why": "w"}, false},
		{"/v1/orders/X/resolve", "why", map[string]any{"decision": "paid", "by": "b"}, false},
	}
	bad := map[string]string{"NUL": "a\x00b", "ESC": "\x1b[2J", "TAB": "a\tb", "LF": "a\nb", "DEL": "a\x7f", "C1 CSI": "a\u009b2J",
		"NEL": "a\u0085", "invalid UTF-8": "a\xffb"}
	send := func(path string, body map[string]any, key string) *httptest.ResponseRecorder {
		b, _ := json.Marshal(body)
		r := httptest.NewRequest("POST", path, strings.NewReader(string(b)))
		r.Header.Set("Content-Type", "application/json")
		if key != "" {
			r.Header["Idempotency-Key"] = []string{key}
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		harness.Hold(harness.Exchange{Method: "POST", Path: path, Header: r.Header, Body: b,
			Status: w.Code, RespHeader: w.Header(), RespBody: w.Body.Bytes()})
		return w
	}
	for _, f := range fields {
		for what, v := range bad {
			body := map[string]any{}
			for k, x := range f.body {
				body[k] = x
			}
			key := ""
			if f.header {
				key = v
			} else {
				body[f.field] = v
			}
			w := send(f.path, body, key)
			assert.Equal(t, http.StatusUnprocessableEntity, w.Code, "%s %s with %s: %s", f.path, f.field, what, w.Body)
			assert.Contains(t, w.Body.String(), f.field+":", "%s %s with %s: the answer names the field", f.path, f.field, what)
		}
	}
	w := send("/v1/lanes/L1/display", map[string]any{"lines": []string{"Apples", "\x1b[2J"}}, "")
	assert.Equal(t, http.StatusUnprocessableEntity, w.Code, "a line for the customer display: %s", w.Body)
	assert.Contains(t, w.Body.String(), "lines[1]:")
	w = send("/v1/charges", map[string]any{"lane": "L1", "total_fee": 100, "subject": "苹果 2 × ¥3.50", "body": "b",
		"op_user_id": "王 07", "reference": "S-1"}, "")
	assert.Equal(t, http.StatusCreated, w.Code, "printable text passes: %s", w.Body)
}
