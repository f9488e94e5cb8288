package sandbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"example.com/posd/payment"
	"example.com/posd/payment/sandbox"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// gateway is a sandbox on a test server, a client of it, and one order of
// 1000 fen paid.
type gateway struct {
	t     *testing.T
	srv   *httptest.Server
	sb    *sandbox.Sandbox
	c     *payment.Client
	order string
}

var orders int

func newGateway(t *testing.T, opt sandbox.Options) *gateway {
	t.Helper()
	sb := sandbox.New(opt)
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	c, err := payment.NewClient(payment.ClientOptions{BaseURL: srv.URL, MerchantID: sandbox.MerchantID, Key: sandbox.Key,
		Transport: srv.Client().Transport})
	if err != nil {
		t.Fatal(err)
	}
	orders++
	g := &gateway{t: t, srv: srv, sb: sb, c: c, order: fmt.Sprintf("S001_L1_TEST%d", orders)}
	r := c.Pay(context.Background(), &payment.PayRequest{MchTradeID: g.order, PayType: "alipay.micro", DeviceInfo: "L1",
		Subject: "s", Body: "b", TotalFee: 1000, SpbillCreateIP: "127.0.0.1", AuthCode: fmt.Sprintf("2829412345678901%02d", orders)})
	if r.Outcome != payment.Paid {
		t.Fatalf("pay: %+v", r)
	}
	return g
}

func (g *gateway) refund(id string, fee int64) payment.Result {
	return g.c.Refund(context.Background(), &payment.RefundRequest{OrderRef: payment.OrderRef{MchTradeID: g.order}, MchRefundID: id, RefundFee: fee})
}

func (g *gateway) tradeState() int {
	return g.c.Query(context.Background(), payment.OrderRef{MchTradeID: g.order}, 1000).TradeState
}

func (g *gateway) backOffice(body string) (int, map[string]any) {
	g.t.Helper()
	resp, err := g.srv.Client().Post(g.srv.URL+"/_sandbox/backoffice/refund", "application/json", strings.NewReader(body))
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		g.t.Fatal(err)
	}
	return resp.StatusCode, out
}

func TestBackOfficeRefund(t *testing.T) {
	g := newGateway(t, sandbox.Options{})
	code, out := g.backOffice(`{"mch_trade_id":"` + g.order + `","refund_fee":300}`)
	if code != 200 || out["refund_fee"] != 300.0 || !strings.HasPrefix(out["mch_refund_id"].(string), "BO") || out["back_office"] != true {
		t.Fatalf("back-office refund: %d %v", code, out)
	}
	if ts := g.tradeState(); ts != payment.StateRefunding {
		t.Errorf("trade_state %d after a back-office refund, want 1", ts)
	}
	q := g.c.RefundQuery(context.Background(), &payment.RefundQueryRequest{MchRefundID: out["mch_refund_id"].(string)})
	if q.Outcome != payment.Done || q.RefundFee != 300 {
		t.Errorf("refund_query of the back-office refund: %+v", q)
	}

	// The same rules as a refund through the API: no more than is left.
	if code, out := g.backOffice(`{"mch_trade_id":"` + g.order + `","refund_fee":701}`); code != 422 || !strings.Contains(out["error"].(string), "700 fen left") {
		t.Errorf("a refund past what is left: %d %v", code, out)
	}
	if code, _ := g.backOffice(`{"mch_trade_id":"nosuch","refund_fee":1}`); code != 404 {
		t.Errorf("an unknown order: %d", code)
	}
	if code, _ := g.backOffice(`{"mch_trade_id":"` + g.order + `"}`); code != 400 {
		t.Errorf("no amount: %d", code)
	}
	code, out = g.backOffice(`{"mch_trade_id":"` + g.order + `","refund_fee":700}`)
	if code != 200 || out["mch_refund_id"] == "BO00000001" {
		t.Errorf("a second back-office refund has an id of its own: %d %v", code, out)
	}

	l := g.sb.Ledger()
	if len(l.Refunds) != 2 || l.Refunded(g.order) != 1000 || l.Orders[0].RefundedFee != 1000 || l.Orders[0].Charged != 0 {
		t.Errorf("ledger: %+v", l)
	}
}

func TestRefundKeepsTradeState(t *testing.T) {
	for _, keeps := range []bool{false, true} {
		g := newGateway(t, sandbox.Options{RefundKeepsTradeState: keeps})
		if r := g.refund(g.order+"R1", 400); r.Outcome != payment.Done || r.Status != 0 {
			t.Fatalf("refund: %+v", r)
		}
		g.backOffice(`{"mch_trade_id":"` + g.order + `","refund_fee":100}`)
		want := payment.StateRefunding
		if keeps {
			want = payment.StatePaid
		}
		if ts := g.tradeState(); ts != want {
			t.Errorf("keeps %v: trade_state %d after refunds, want %d", keeps, ts, want)
		}
		q := g.c.RefundQuery(context.Background(), &payment.RefundQueryRequest{MchRefundID: g.order + "R1"})
		if q.Outcome != payment.Done || q.RefundFee != 400 {
			t.Errorf("keeps %v: refund_query: %+v", keeps, q)
		}
		// What is left can still be refunded, and no more.
		if r := g.refund(g.order+"R2", 501); r.Outcome != payment.Pending {
			t.Errorf("keeps %v: a refund past what is left: %+v", keeps, r)
		}
		if r := g.refund(g.order+"R3", 500); r.Outcome != payment.Done || r.Status != 0 {
			t.Errorf("keeps %v: the rest: %+v", keeps, r)
		}
		if got := g.sb.Ledger().Refunded(g.order); got != 1000 {
			t.Errorf("keeps %v: refunded %d", keeps, got)
		}
	}
}

// A mch_refund_id sent again is the same refund: answered as the first,
// no money moves. Sent again with another amount it is listed, for tests
// to hold that nobody reuses an id for a new refund.
func TestRefundIDReuseIsListed(t *testing.T) {
	g := newGateway(t, sandbox.Options{})
	id := g.order + "R1"
	g.refund(id, 400)
	if r := g.refund(id, 400); r.Outcome != payment.Done || r.RefundFee != 400 {
		t.Fatalf("the same refund again: %+v", r)
	}
	if l := g.sb.Ledger(); len(l.RefundIDReuses) != 0 {
		t.Errorf("the same refund sent again is no reuse: %+v", l.RefundIDReuses)
	}
	if r := g.refund(id, 300); r.Outcome != payment.Done || r.RefundFee != 400 {
		t.Errorf("answered as the first refund: %+v", r)
	}
	l := g.sb.Ledger()
	want := []sandbox.RefundIDReuse{{MchRefundID: id, MchTradeID: g.order, FirstFee: 400, Fee: 300}}
	if fmt.Sprint(l.RefundIDReuses) != fmt.Sprint(want) || l.Refunded(g.order) != 400 || len(l.Refunds) != 1 {
		t.Errorf("ledger: %+v", l)
	}

	resp, err := g.srv.Client().Get(g.srv.URL + "/_sandbox/orders")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw map[string]json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw["refund_id_reuses"]), `"first_fee": 400`) {
		t.Errorf("the ledger's JSON: %s", raw["refund_id_reuses"])
	}
}

func TestLedgerListsNoReuseWhenNoneHappened(t *testing.T) {
	l := sandbox.New(sandbox.Options{}).Ledger()
	if l.RefundIDReuses == nil || len(l.RefundIDReuses) != 0 {
		t.Errorf("an empty list, never null: %#v", l.RefundIDReuses)
	}
}

// A page in the box's browser can post a form to the sandbox's port, not
// JSON: the back office refunds nothing for it.
func TestBackOfficeRefundTakesJSONOnly(t *testing.T) {
	g := newGateway(t, sandbox.Options{})
	resp, err := g.srv.Client().Post(g.srv.URL+"/_sandbox/backoffice/refund", "text/plain", strings.NewReader(`{"mch_trade_id":"`+g.order+`","refund_fee":300}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("a text/plain post answered %d", resp.StatusCode)
	}
	if ts := g.tradeState(); ts != payment.StatePaid {
		t.Fatalf("trade_state %d after a refused post: something was refunded", ts)
	}
}
