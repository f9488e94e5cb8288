package payment

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A redirecting gateway must not get the signed request, payment code
// included, re-sent elsewhere: the 3xx is an Unknown answer to query.
func TestClientFollowsNoRedirect(t *testing.T) {
	var hits atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write(signed("k", order("0")...))
	}))
	defer elsewhere.Close()

	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL+r.URL.Path, status)
		}))
		c, err := NewClient(ClientOptions{BaseURL: gw.URL, MerchantID: "M1", Key: "k"})
		require.NoError(t, err)
		req := &PayRequest{MchTradeID: "T0001", PayType: "alipay.micro", DeviceInfo: "L1", Subject: "s", Body: "b",
			TotalFee: 100, SpbillCreateIP: "127.0.0.1", AuthCode: "281234567890123456"}
		r := c.Pay(context.Background(), req)
		gw.Close()

		assert.Equal(t, Unknown, r.Outcome, "HTTP %d", status)
		assert.Equal(t, status, r.HTTPStatus)
		assert.Zero(t, hits.Load(), "HTTP %d: the request was re-sent to the redirect target", status)
	}
}
