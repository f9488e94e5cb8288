package payment

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// ClientOptions configure a gateway client.
type ClientOptions struct {
	BaseURL    string
	MerchantID string
	Key        string
	// Timeout bounds a whole exchange; ConnectTimeout the TCP+TLS setup.
	Timeout        time.Duration
	ConnectTimeout time.Duration
	// CAFile, when set, is the only trusted root for the gateway's TLS.
	CAFile string
	// Transport and Probe replace the network (the simulation's in-memory
	// gateway). A Transport must call the request's httptrace hooks as
	// http.Transport does: a call whose request was never written is
	// "not sent".
	Transport http.RoundTripper
	Probe     func(context.Context) error
}

// Client speaks the gateway protocol. It is safe for concurrent use.
type Client struct {
	base       string
	merchantID string
	key        atomic.Pointer[string] // swapped on a key rotation (SIGHUP)
	http       *http.Client

	// For the link probe: where the gateway is and how to reach it.
	dialer         *net.Dialer
	addr           string
	tls            *tls.Config
	connectTimeout time.Duration
	probe          func(context.Context) error
	link           link
}

// SetKey replaces the merchant key for every request from now on.
func (c *Client) SetKey(key string) { c.key.Store(&key) }

func (c *Client) secret() string { return *c.key.Load() }

// maxBody bounds what is read of an answer: a real one is a few hundred bytes.
const maxBody = 1 << 20

// NewClient checks the options and builds a client with its own
// http.Client. Plain http is accepted only for loopback addresses (the
// sandbox); everything else must be https with a verified certificate.
func NewClient(o ClientOptions) (*Client, error) {
	u, err := url.Parse(o.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("payment: gateway url: %w", err)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && IsLoopbackHost(u.Hostname()):
	default:
		return nil, fmt.Errorf("payment: gateway url %q: https required (plain http only on loopback)", o.BaseURL)
	}
	if o.MerchantID == "" || o.Key == "" {
		return nil, errors.New("payment: merchant id and key are required")
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 3 * time.Second
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("payment: ca file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("payment: ca file %s holds no certificate", o.CAFile)
		}
		tlsConf.RootCAs = pool
	}
	dialer := &net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   o.ConnectTimeout,
		ResponseHeaderTimeout: o.Timeout,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	var rt http.RoundTripper = tr
	if o.Transport != nil {
		rt = o.Transport
	}
	base := o.BaseURL
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	c := &Client{
		base:       base,
		merchantID: o.MerchantID,
		http: &http.Client{
			Transport: rt,
			Timeout:   o.Timeout,
			// A redirect would re-send the signed request, payment code
			// included, wherever the answer points (plain http too). The
			// 3xx reaches Classify instead: Unknown, so the order is queried.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		dialer:         dialer,
		addr:           hostPort(u),
		connectTimeout: o.ConnectTimeout,
		probe:          o.Probe,
	}
	if u.Scheme == "https" {
		c.tls = tlsConf.Clone()
		c.tls.ServerName = u.Hostname()
	}
	c.SetKey(o.Key)
	return c, nil
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// IsLoopbackHost reports whether host names this machine.
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Pay submits a scanned code. Invalid requests are refused before sending
// with a Rejected result wrapping ErrInvalidRequest in Reason.
func (c *Client) Pay(ctx context.Context, r *PayRequest) Result {
	if err := r.Validate(); err != nil {
		return Result{Outcome: Rejected, TradeState: NoTradeState, Reason: err.Error()}
	}
	exp := Expect{MerchantID: c.merchantID, MchTradeID: r.MchTradeID, TotalFee: r.TotalFee}
	var arr [payParams]Param
	return c.do(ctx, CallPay, r.appendParams(arr[:0], c.merchantID, nonce()), exp)
}

// Query asks the order's state; totalFee, when known, is checked in the answer.
func (c *Client) Query(ctx context.Context, ref OrderRef, totalFee int64) Result {
	if err := ref.validate(); err != nil {
		return Result{Outcome: Rejected, TradeState: NoTradeState, Reason: err.Error()}
	}
	exp := Expect{MerchantID: c.merchantID, MchTradeID: ref.MchTradeID, TotalFee: totalFee}
	return c.do(ctx, CallQuery, ref.params(c.merchantID, nonce()), exp)
}

// Reverse cancels an order, refunding it if it was paid.
func (c *Client) Reverse(ctx context.Context, ref OrderRef) Result {
	if err := ref.validate(); err != nil {
		return Result{Outcome: Rejected, TradeState: NoTradeState, Reason: err.Error()}
	}
	exp := Expect{MerchantID: c.merchantID, MchTradeID: ref.MchTradeID}
	return c.do(ctx, CallReverse, ref.params(c.merchantID, nonce()), exp)
}

// Close closes an unpaid order.
func (c *Client) Close(ctx context.Context, ref OrderRef) Result {
	if err := ref.validate(); err != nil {
		return Result{Outcome: Rejected, TradeState: NoTradeState, Reason: err.Error()}
	}
	exp := Expect{MerchantID: c.merchantID, MchTradeID: ref.MchTradeID}
	return c.do(ctx, CallClose, ref.params(c.merchantID, nonce()), exp)
}

// Refund refunds a paid order.
func (c *Client) Refund(ctx context.Context, r *RefundRequest) Result {
	if err := r.validate(); err != nil {
		return Result{Outcome: Rejected, TradeState: NoTradeState, Reason: err.Error()}
	}
	exp := Expect{MerchantID: c.merchantID, MchTradeID: r.MchTradeID, MchRefundID: r.MchRefundID}
	return c.do(ctx, CallRefund, r.params(c.merchantID, nonce()), exp)
}

// RefundQuery asks after a refund.
func (c *Client) RefundQuery(ctx context.Context, r *RefundQueryRequest) Result {
	exp := Expect{MerchantID: c.merchantID, MchRefundID: r.MchRefundID}
	return c.do(ctx, CallRefundQuery, r.params(c.merchantID, nonce()), exp)
}

func (c *Client) do(ctx context.Context, call Call, params []Param, exp Expect) Result {
	key := c.secret()
	body := EncodeBody(params, Sign(params, key))
	var st sendTrace
	req, err := http.NewRequestWithContext(st.with(ctx), http.MethodPost, c.base+string(call), bytes.NewReader(body))
	if err != nil {
		return Classify(call, exp, key, 0, nil, err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	// posd decides every resend itself: without GetBody neither HTTP/1 nor
	// HTTP/2 replays a request that may have reached the gateway (a pay
	// replayed after a stream reset would meet 107, and be taken for a
	// duplicate that is not this pay's).
	req.GetBody = nil
	resp, err := c.http.Do(req)
	if err != nil {
		r := Classify(call, exp, key, 0, nil, err)
		if st.notSent(ctx, err) {
			r.Outcome = NotSent
			c.link.set(false, "gateway unreachable: "+err.Error())
		}
		return r
	}
	c.link.set(true, "")
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	return Classify(call, exp, key, resp.StatusCode, data, err)
}

const nonceChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func nonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = nonceChars[int(b[i])%len(nonceChars)]
	}
	return string(b[:])
}

// MaskCode keeps only the last four digits of a payment code: what logs,
// displays, receipts and the journal show once the code has been sent.
func MaskCode(code string) string {
	if len(code) <= 4 {
		return strings.Repeat("*", len(code))
	}
	return strings.Repeat("*", len(code)-4) + code[len(code)-4:]
}

// CodeHash is the hex SHA-256 of a payment code: enough to recognise the
// same code again, not enough to use it.
func CodeHash(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}
