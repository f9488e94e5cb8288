package payment

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClientTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(signed("k", order("0")...))
	}))
	defer srv.Close()
	req := &PayRequest{MchTradeID: "T0001", PayType: "alipay.micro", DeviceInfo: "L1", Subject: "s", Body: "b",
		TotalFee: 100, SpbillCreateIP: "127.0.0.1", AuthCode: "281234567890123456"}

	c, err := NewClient(ClientOptions{BaseURL: srv.URL, MerchantID: "M1", Key: "k"})
	require.NoError(t, err)
	r := c.Pay(context.Background(), req)
	assert.Equal(t, NotSent, r.Outcome, "a gateway with an untrusted certificate is refused before anything is sent")
	assert.Contains(t, r.Reason, "certificate")

	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644))
	c, err = NewClient(ClientOptions{BaseURL: srv.URL, MerchantID: "M1", Key: "k", CAFile: ca})
	require.NoError(t, err)
	assert.Equal(t, Paid, c.Pay(context.Background(), req).Outcome, "trusted through gateway.ca_file")

	for _, u := range []string{"http://gateway.example.com/", "ftp://x/", "http://10.0.0.1/"} {
		_, err := NewClient(ClientOptions{BaseURL: u, MerchantID: "M1", Key: "k"})
		assert.Error(t, err, "%s: https required off loopback", u)
	}
	_, err = NewClient(ClientOptions{BaseURL: "http://127.0.0.1:1/", MerchantID: "M1", Key: "k"})
	assert.NoError(t, err, "plain http on loopback (the sandbox)")
}
