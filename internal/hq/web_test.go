package hq

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every list is a window: the page shows PageRows of each and how many
// more there are; /v1/ answers ?limit= rows after ?offset= with the
// total and the next offset, refuses a limit above MaxLimit, and paging
// on visits every row once.
func TestListsArePaged(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, databases(t)["sqlite"](t))
	require.NoError(t, err)
	defer s.Close()
	at := time.Now().Add(-time.Hour)
	var recs []Record
	for i := range PageRows + 50 {
		for _, b := range [][]byte{
			msg("device", "S1", fmt.Sprintf("scan%03d", i), "gone", "", 7, 0, 0, at.Add(time.Duration(i)*time.Second)),
			msg("order", "S1", fmt.Sprintf("S1_POS1_%03d", i), "paying", "query", 1, 100, 0, at.Add(time.Duration(i)*time.Second)),
		} {
			r, err := Parse(b)
			require.NoError(t, err)
			recs = append(recs, r)
		}
	}
	require.NoError(t, s.Apply(ctx, recs))
	srv := httptest.NewServer(Handler(s, NewMetrics()))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	code, page := get("/")
	require.Equal(t, 200, code)
	for _, id := range []string{"unresolved", "down"} {
		table := regexp.MustCompile(`(?s)<table id=` + id + `>.*?</table>`).FindString(page)
		assert.Len(t, regexp.MustCompile(`<tr>`).FindAllString(table, -1), PageRows+1, "%s: the header and %d rows", id, PageRows)
	}
	assert.Contains(t, page, "Devices down (150)")
	assert.Contains(t, page, "Unresolved orders (150)")
	assert.Contains(t, page, "50 more")

	for _, list := range []struct{ path, key string }{{"/v1/devices/down", "devices"}, {"/v1/unresolved", "orders"}} {
		seen := map[string]bool{}
		next := 0
		for pages := 0; ; pages++ {
			require.Less(t, pages, 10)
			code, body := get(fmt.Sprintf("%s?limit=40&offset=%d", list.path, next))
			require.Equal(t, 200, code, body)
			var v map[string]json.RawMessage
			require.NoError(t, json.Unmarshal([]byte(body), &v))
			var rows []map[string]any
			require.NoError(t, json.Unmarshal(v[list.key], &rows))
			assert.LessOrEqual(t, len(rows), 40)
			assert.JSONEq(t, "150", string(v["total"]))
			for _, r := range rows {
				k := fmt.Sprint(r["device"], r["mch_trade_id"])
				assert.False(t, seen[k], "%s twice", k)
				seen[k] = true
			}
			if v["next"] == nil {
				break
			}
			require.NoError(t, json.Unmarshal(v["next"], &next))
		}
		assert.Len(t, seen, 150, list.path)
		code, body := get(list.path)
		require.Equal(t, 200, code)
		assert.NotContains(t, body, `"next"`, "the default window holds 150")
		for _, q := range []string{"limit=0", fmt.Sprintf("limit=%d", MaxLimit+1), "limit=x", "offset=-1"} {
			code, _ := get(list.path + "?" + q)
			assert.Equal(t, 400, code, q)
		}
	}
	code, body := get("/v1/totals?limit=1")
	require.Equal(t, 200, code)
	assert.Contains(t, body, `"total":0`)
}

// The day's orders as CSV need a day.
func TestOrdersCSVNeedsADay(t *testing.T) {
	s, err := Open(context.Background(), databases(t)["sqlite"](t))
	require.NoError(t, err)
	defer s.Close()
	srv := httptest.NewServer(Handler(s, NewMetrics()))
	defer srv.Close()
	for _, q := range []string{"", "?day=", "?day=2026-13-01", "?day=yesterday"} {
		resp, err := http.Get(srv.URL + "/v1/orders.csv" + q)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 400, resp.StatusCode, q)
	}
}
