package api_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/docs"
	"example.com/posd/internal/api"
	"example.com/posd/internal/httpguard"
)

// Every error answer is one JSON shape, its kind one of the closed list
// for its status, a 422 naming the field at fault, and its words a till
// developer's, never Go's.
func TestErrorModel(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef"
	s := guarded(t, api.Protection{Listen: "127.0.0.1:8321"}, token)
	auth := []string{"Authorization", "Bearer " + token, "Content-Type", "application/json"}
	host := "127.0.0.1:8321"
	for _, tc := range []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		kind, field              string
	}{
		{"UnknownRoute", "GET", "/v1/nothing", "", auth, 404, httpguard.KindNotFound, ""},
		{"UnknownCharge", "GET", "/v1/charges/CHNOSUCH", "", auth, 404, httpguard.KindNotFound, ""},
		{"UnknownLane", "GET", "/v1/lanes/L9", "", auth, 404, httpguard.KindNotFound, ""},
		{"WrongMethod", "PUT", "/v1/charges", "{}", auth, 405, httpguard.KindMethodNotAllowed, ""},
		{"NoToken", "GET", "/v1/lanes", "", nil, 401, httpguard.KindUnauthorized, ""},
		{"WrongScheme", "GET", "/v1/lanes", "", []string{"Authorization", "Basic " + token}, 401, httpguard.KindUnauthorized, ""},
		{"CrossOrigin", "GET", "/v1/lanes", "", append([]string{"Origin", "https://example.net"}, auth...), 403, httpguard.KindForbidden, ""},
		{"NotJSON", "POST", "/v1/charges", "lane=L1", []string{"Authorization", "Bearer " + token, "Content-Type", "application/x-www-form-urlencoded"}, 415, httpguard.KindUnsupportedMediaType, ""},
		{"EmptyBody", "POST", "/v1/charges", "", auth, 400, httpguard.KindMalformed, ""},
		{"BrokenJSON", "POST", "/v1/charges", `{"lane":`, auth, 400, httpguard.KindMalformed, ""},
		{"TwoObjects", "POST", "/v1/charges", `{"lane":"L1","total_fee":1}{"lane":"L1","total_fee":2}`, auth, 400, httpguard.KindMalformed, ""},
		{"NotAnObject", "POST", "/v1/charges", `[1]`, auth, 400, httpguard.KindMalformed, ""},
		{"Null", "POST", "/v1/charges", ` null `, auth, 400, httpguard.KindMalformed, ""},
		{"KeyInAnotherCase", "POST", "/v1/charges", `{"lane":"L1","TOTAL_FEE":100,"subject":"s","body":"b"}`, auth, 422, httpguard.KindInvalid, "TOTAL_FEE"},
		{"KeyTwice", "POST", "/v1/charges", `{"lane":"L1","total_fee":1,"total_fee":100,"subject":"s","body":"b"}`, auth, 422, httpguard.KindInvalid, "total_fee"},
		{"TooLarge", "POST", "/v1/charges", `{"subject":"` + strings.Repeat("x", 70<<10) + `"}`, auth, 413, httpguard.KindTooLarge, ""},
		{"WrongType", "POST", "/v1/charges", `{"lane":"L1","total_fee":"12"}`, auth, 422, httpguard.KindInvalid, "total_fee"},
		{"UnknownField", "POST", "/v1/charges", `{"lane":"L1","total_fee":1,"ttl":5}`, auth, 422, httpguard.KindInvalid, "ttl"},
		{"ZeroFee", "POST", "/v1/charges", `{"lane":"L1","total_fee":0,"subject":"s","body":"b"}`, auth, 422, httpguard.KindInvalid, "total_fee"},
		{"MissingSubject", "POST", "/v1/charges", `{"lane":"L1","total_fee":1,"body":"b"}`, auth, 422, httpguard.KindInvalid, "subject"},
		{"LongReference", "POST", "/v1/charges", `{"lane":"L1","total_fee":1,"reference":"` + strings.Repeat("r", 65) + `"}`, auth, 422, httpguard.KindInvalid, "reference"},
		{"LongShift", "POST", "/v1/charges", `{"lane":"L1","total_fee":1,"shift":"` + strings.Repeat("s", 33) + `"}`, auth, 422, httpguard.KindInvalid, "shift"},
		{"ControlInSubject", "POST", "/v1/charges", `{"lane":"L1","total_fee":1,"subject":"a\u0007b"}`, auth, 422, httpguard.KindInvalid, "subject"},
		{"LongIdempotencyKey", "POST", "/v1/charges", `{"lane":"L1","total_fee":1}`, append([]string{"Idempotency-Key", strings.Repeat("k", 256)}, auth...), 422, httpguard.KindInvalid, "Idempotency-Key"},
		{"BadCode", "POST", "/v1/lanes/L1/scans", `{"auth_code":"12"}`, auth, 422, httpguard.KindInvalid, "auth_code"},
		{"BadDay", "GET", "/v1/totals?date=yesterday", "", auth, 422, httpguard.KindInvalid, "date"},
		{"OrdersState", "GET", "/v1/orders?state=bogus", "", auth, 422, httpguard.KindInvalid, "state"},
		{"ReportFormat", "GET", "/v1/report?date=2026-01-02&format=xml", "", auth, 422, httpguard.KindInvalid, "format"},
		{"ExportFormat", "GET", "/v1/export?from=2026-01-02&to=2026-01-02&format=xlsx", "", auth, 422, httpguard.KindInvalid, "format"},
		{"ReconcileFormat", "GET", "/v1/reconcile?date=2026-01-02&format=pdf", "", auth, 422, httpguard.KindInvalid, "format"},
		{"ResolveUnknown", "POST", "/v1/orders/S001_POS01_NOSUCH/resolve", `{"decision":"paid","by":"op","why":"checked"}`, auth, 404, httpguard.KindNotFound, ""},
		{"ResolveWithoutWhy", "POST", "/v1/orders/S001_POS01_NOSUCH/resolve", `{"decision":"paid"}`, auth, 422, httpguard.KindInvalid, "by"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := send(s, tc.method, host, tc.path, tc.body, tc.hdr...)
			require.Equal(t, tc.status, w.Code, "%s", w.Body)
			checkError(t, w.Header(), w.Body.Bytes(), tc.kind, tc.field)
			if tc.status == 405 {
				assert.Contains(t, w.Header().Get("Allow"), "POST")
			}
		})
	}
}

// checkError holds an error answer to the error model.
func checkError(t *testing.T, h http.Header, body []byte, kind, field string) {
	t.Helper()
	assert.True(t, strings.HasPrefix(h.Get("Content-Type"), "application/json"), "Content-Type %q", h.Get("Content-Type"))
	var e map[string]any
	require.NoError(t, json.Unmarshal(body, &e), "%s", body)
	assert.Equal(t, kind, e["kind"], "%s", body)
	assert.True(t, slices.Contains(httpguard.Kinds, e["kind"].(string)), "kind %v is in the list", e["kind"])
	if field != "" {
		assert.Equal(t, field, e["field"], "%s", body)
	} else {
		assert.NotContains(t, e, "field")
	}
	msg, _ := e["error"].(string)
	assert.NotEmpty(t, msg)
	for _, goWords := range []string{"Go ", "struct", "int64", "json:", "openRequest"} {
		assert.NotContains(t, msg, goWords, "no Go internals in %q", msg)
	}
	for k := range e {
		assert.Contains(t, []string{"error", "kind", "field"}, k, "only the error model's keys")
	}
}

// A till may write the scheme in any case: "bearer" is "Bearer".
func TestBearerSchemeAnyCase(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef"
	s := guarded(t, api.Protection{Listen: "127.0.0.1:8321"}, token)
	for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
		w := send(s, "GET", "127.0.0.1:8321", "/v1/lanes", "", "Authorization", scheme+" "+token)
		assert.Equal(t, 200, w.Code, "%s: %s", scheme, w.Body)
	}
}

// The long-poll's bound is the document's: a longer wait, or a state no
// charge takes, is refused by name instead of answered as something else.
func TestLongPollLimits(t *testing.T) {
	s := newServer(t)
	w := send(s, "POST", "posd", "/v1/charges", `{"lane":"L1","total_fee":100,"subject":"s","body":"b"}`, "Content-Type", "application/json")
	require.Equal(t, 201, w.Code, "%s", w.Body)
	var c struct{ ID string }
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &c))
	for q, field := range map[string]string{"wait=10m": "wait", "wait=2m1s": "wait", "wait=soon": "wait", "wait=1s&state=bogus": "state", "wait=1s&version=x": "version"} {
		w := send(s, "GET", "posd", "/v1/charges/"+c.ID+"?"+q, "")
		require.Equal(t, 422, w.Code, "%s: %s", q, w.Body)
		checkError(t, w.Header(), w.Body.Bytes(), httpguard.KindInvalid, field)
	}
	w = send(s, "GET", "posd", "/v1/charges/"+c.ID+"?wait=2m&state=paying", "")
	assert.Equal(t, 200, w.Code, "the longest wait is allowed: %s", w.Body)
}

// A lane no one configured is 404 on every route that names one, a query
// parameter too: a till that mistyped it hears so, not an empty answer.
func TestUnknownLaneIsNotFoundEverywhere(t *testing.T) {
	s := newServer(t)
	for _, path := range []string{"/v1/lanes/L9", "/v1/lanes/L9/last", "/v1/charges?reference=SALE1&lane=L9", "/v1/events?lane=L9",
		"/v1/totals?date=2026-01-02&lane=L9"} {
		w := send(s, "GET", "posd", path, "")
		require.Equal(t, 404, w.Code, "%s: %s", path, w.Body)
		checkError(t, w.Header(), w.Body.Bytes(), httpguard.KindNotFound, "")
	}
	for _, path := range []string{"/v1/lanes/L9/scans", "/v1/lanes/L9/display"} {
		body := `{"auth_code":"12"}` // a bad code too: the lane is what is wrong first
		if strings.HasSuffix(path, "display") {
			body = `{"lines":["x"],"ttl":"5s"}`
		}
		w := send(s, "POST", "posd", path, body, "Content-Type", "application/json")
		require.Equal(t, 404, w.Code, "%s: %s", path, w.Body)
		checkError(t, w.Header(), w.Body.Bytes(), httpguard.KindNotFound, "")
	}
	w := send(s, "GET", "posd", "/v1/charges?reference=SALE1&lane=L1", "")
	assert.Equal(t, 200, w.Code, "a known lane without that sale: %s", w.Body)
}

// GET /v1/devices lists every display, the terminal too.
func TestDevicesListEveryDisplay(t *testing.T) {
	s := newServerWith(t, `
  - {id: L1, device_info: POS01, scanners: [{type: stdin}], displays: [{type: terminal}]}
`)
	w := send(s, "GET", "posd", "/v1/devices", "")
	require.Equal(t, 200, w.Code, "%s", w.Body)
	assert.Contains(t, w.Body.String(), `"terminal"`)
	var out struct {
		Devices []struct{ Lane, Role, Type, State string }
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &out), "%s", w.Body)
	var roles []string
	for _, d := range out.Devices {
		if d.Lane == "L1" {
			roles = append(roles, d.Role+"/"+d.Type+"/"+d.State)
		}
	}
	assert.Contains(t, roles, "display/terminal/connected", "%s", w.Body)
}

// posd serves the document its API keeps, without a token.
func TestServesItsOpenAPIDocument(t *testing.T) {
	s := guarded(t, api.Protection{Listen: "127.0.0.1:8321"}, "0123456789abcdef0123456789abcdef")
	w := send(s, "GET", "127.0.0.1:8321", "/openapi.yaml", "")
	require.Equal(t, 200, w.Code, "%s", w.Body)
	assert.Equal(t, "application/yaml", w.Header().Get("Content-Type"))
	assert.Equal(t, string(docs.OpenAPI), w.Body.String())
	assert.Contains(t, w.Body.String(), "openapi: 3.0")
}
