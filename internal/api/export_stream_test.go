package api_test

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The export is written an order at a time; what it writes is the same
// JSON document and CSV as a whole answer would be: every order of the
// range, oldest first, and an empty range an empty list.
func TestExportStreamed(t *testing.T) {
	s := newServer(t)
	const host = "127.0.0.1:8321"
	var ids []string
	for i, code := range []string{"282941234567890107", "282941234567890207", "282941234567890307"} {
		w := send(s, "POST", host, "/v1/charges", `{"lane":"L1","total_fee":10`+string(rune('0'+i))+`,"subject":"s","body":"b"}`, "Content-Type", "application/json")
		require.Equal(t, http.StatusCreated, w.Code, "%s", w.Body)
		c := decodeAs[chargeJSON](t, w.Body.Bytes())
		w = send(s, "POST", host, "/v1/lanes/L1/scans", `{"auth_code":"`+code+`"}`, "Content-Type", "application/json")
		require.Equal(t, http.StatusAccepted, w.Code, "%s", w.Body)
		deadline := time.Now().Add(10 * time.Second)
		for decodeAs[chargeJSON](t, send(s, "GET", host, "/v1/charges/"+c.ID+"?wait=2s", "").Body.Bytes()).State != "paid" {
			require.True(t, time.Now().Before(deadline), "charge %s never paid", c.ID)
		}
		ids = append(ids, c.ID)
	}
	today := time.Now().Format(time.DateOnly)
	w := send(s, "GET", host, "/v1/export?from="+today+"&to="+today, "")
	require.Equal(t, http.StatusOK, w.Code, "%s", w.Body)
	assert.Equal(t, "application/json; charset=utf-8", w.Header().Get("Content-Type"))
	var doc struct {
		Orders []struct {
			ChargeID string `json:"charge_id"`
			TotalFee int64  `json:"total_fee"`
			State    string `json:"state"`
		} `json:"orders"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &doc), "%s", w.Body)
	require.Len(t, doc.Orders, 3)
	for i, o := range doc.Orders {
		assert.Equal(t, ids[i], o.ChargeID, "oldest first")
		assert.Equal(t, int64(100+i), o.TotalFee)
		assert.Equal(t, "paid", o.State)
	}
	assert.True(t, strings.HasPrefix(w.Body.String(), `{"orders":[{`) && strings.HasSuffix(w.Body.String(), "}]}\n"), "%s", w.Body)

	w = send(s, "GET", host, "/v1/export?from="+today+"&to="+today+"&format=csv", "")
	require.Equal(t, http.StatusOK, w.Code)
	rows, err := csv.NewReader(w.Body).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 4, "a header and three orders")
	assert.Equal(t, "created_at", rows[0][0])
	assert.Equal(t, ids[2], rows[3][3])

	w = send(s, "GET", host, "/v1/export?from=2001-01-01&to=2001-01-02", "")
	require.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, "{\"orders\":[]}\n", w.Body.String())
	w = send(s, "GET", host, "/v1/export?from=yesterday&to="+today, "")
	assert.Equal(t, http.StatusUnprocessableEntity, w.Code, "%s", w.Body)
}
