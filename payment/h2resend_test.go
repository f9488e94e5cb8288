package payment_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/money"
	"example.com/posd/payment"
	"example.com/posd/poller"
)

func h2frame(w io.Writer, typ, flags byte, sid uint32, p []byte) {
	h := []byte{byte(len(p) >> 16), byte(len(p) >> 8), byte(len(p)), typ, flags, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(h[5:], sid)
	_, _ = w.Write(append(h, p...))
}

// A minimal HTTP/2 gateway: it takes the first pay whole (the gateway acts
// on it), then resets the stream with PROTOCOL_ERROR; the next copy of the
// same pay is answered 107, as a gateway answers a duplicate mch_trade_id.
func serveH2(conn net.Conn, got chan<- string, pays *atomic.Int32) {
	defer conn.Close()
	if _, err := io.ReadFull(conn, make([]byte, 24)); err != nil {
		return
	}
	h2frame(conn, 0x4, 0, 0, nil)
	bodies := map[uint32][]byte{}
	for {
		hdr := make([]byte, 9)
		if _, err := io.ReadFull(conn, hdr); err != nil {
			return
		}
		n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
		typ, flags, sid := hdr[3], hdr[4], binary.BigEndian.Uint32(hdr[5:])&0x7fffffff
		p := make([]byte, n)
		if _, err := io.ReadFull(conn, p); err != nil {
			return
		}
		switch typ {
		case 0x4:
			if flags&1 == 0 {
				h2frame(conn, 0x4, 1, 0, nil)
			}
		case 0x6:
			if flags&1 == 0 {
				h2frame(conn, 0x6, 1, 0, p)
			}
		case 0x0:
			bodies[sid] = append(bodies[sid], p...)
			if flags&1 == 0 {
				continue
			}
			got <- string(bodies[sid])
			if pays.Add(1) == 1 {
				h2frame(conn, 0x3, 0, sid, []byte{0, 0, 0, 1}) // RST_STREAM PROTOCOL_ERROR
			} else {
				h2frame(conn, 0x1, 0x4, sid, []byte{0x88}) // :status 200
				h2frame(conn, 0x0, 0x1, sid, []byte(`{"code":107,"msg":"duplicate mch_trade_id","data":null}`))
			}
		}
	}
}

// A pay is never replayed by the transport: an HTTP/2 server that takes the
// first copy whole and then resets the stream (PROTOCOL_ERROR) would get a
// second copy from net/http if the request could be rewound, and answer it
// 107. posd sends one copy, and the outcome is unknown (query).
func TestHTTP2NeverReplaysAPay(t *testing.T) {
	ts := httptest.NewUnstartedServer(http.NotFoundHandler())
	ts.StartTLS()
	cert, leaf := ts.TLS.Certificates[0], ts.Certificate()
	ts.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}), 0o644))

	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}})
	require.NoError(t, err)
	defer l.Close()
	got := make(chan string, 16)
	var pays atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serveH2(c, got, &pays)
		}
	}()

	c, err := payment.NewClient(payment.ClientOptions{BaseURL: "https://" + l.Addr().String() + "/", MerchantID: "M1", Key: "k", CAFile: ca, Timeout: 5 * time.Second})
	require.NoError(t, err)
	req := &payment.PayRequest{MchTradeID: "S001_L1_ABCDEF1", PayType: "alipay.micro", DeviceInfo: "L1", Subject: "s", Body: "b",
		TotalFee: 100, SpbillCreateIP: "127.0.0.1", AuthCode: "281234567890123456"}
	r := c.Pay(context.Background(), req)

	var sent []string
	for len(got) > 0 {
		sent = append(sent, <-got)
	}
	require.Len(t, sent, 1, "the signed pay left the box once")
	assert.Equal(t, payment.Unknown, r.Outcome, "the stream was reset after the pay was written: unknown, %s", r.Reason)
	o := money.NewOrder(money.Order{MchTradeID: req.MchTradeID, TotalFee: 100, DeviceInfo: "L1", AuthCode: req.AuthCode}, time.Now())
	o = poller.Step(o, r, time.Now(), poller.DefaultPolicy())
	assert.Equal(t, money.PhaseQuery, o.Phase, "queried, never 'not charged'")
}
