package sim

import (
	"fmt"
	"strconv"
	"strings"

	"example.com/posd/payment"
)

func (g *Gateway) query(id string) ([]payment.Param, int) {
	o := g.orders[id]
	if o == nil || g.lagging(o) {
		return nil, payment.CodeOrderNotFound
	}
	o.queries++
	if o.how == payLater && o.State == payment.StatePaying && o.queries >= o.payAfter {
		g.paid(o)
	}
	return g.orderData(o), 0
}

func (g *Gateway) reverse(id string) ([]payment.Param, int) {
	o := g.orders[id]
	if o == nil || g.lagging(o) {
		return nil, payment.CodeOrderNotFound
	}
	if g.noReverse {
		return nil, payment.CodeParseError // 100 on reverse: the gateway has none
	}
	o.reverses++
	if o.State == payment.StatePaying && o.reverses <= o.recallY {
		d := g.orderData(o)
		setState(d, payment.StateRevoking)
		return append(d, payment.Param{Key: "recall", Value: "Y"}), 0
	}
	if o.how == payAtReverse && o.State == payment.StatePaying {
		g.paid(o) // the customer confirmed just before the reverse arrived
	}
	switch o.State {
	case payment.StatePaid, payment.StatePaying, payment.StateUnpaid:
		if o.Charged > 0 {
			o.Refunded += o.Charged
			o.Charged = 0
			o.State = payment.StateReversed
			if o.ts1 {
				o.State = payment.StateRefunding
			}
		} else {
			o.State = payment.StateReversed
		}
	}
	return append(g.orderData(o), payment.Param{Key: "recall", Value: "N"}), 0
}

func (g *Gateway) close(id string) ([]payment.Param, int) {
	o := g.orders[id]
	if o == nil || g.lagging(o) {
		return nil, payment.CodeOrderNotFound
	}
	status := "0"
	switch o.State {
	case payment.StatePaying, payment.StateUnpaid:
		if o.how == payAtReverse {
			g.paid(o) // paid just before the close: it cannot be closed
			status = "-1"
		} else {
			o.State = payment.StateClosed
		}
	case payment.StateClosed:
		status = "1"
	default:
		status = "-1"
	}
	return append(g.orderData(o), payment.Param{Key: "close_status", Value: status, Num: true}), 0
}

func (g *Gateway) refund(id, rid string, fee int64) ([]payment.Param, int) {
	o := g.orders[id]
	if o == nil {
		return nil, payment.CodeOrderNotFound
	}
	if fee > o.TotalFee {
		g.violate("refund %s of %d fen for %s, which was %d", rid, fee, id, o.TotalFee)
	}
	if rf := g.refunds[rid]; rf != nil {
		// The same refund asked again: some gateways answer it as done,
		// others refuse it as a duplicate (it was made).
		if g.rng(rid, "dup-refund", 0).IntN(2) == 0 {
			return nil, 1500
		}
		return g.refundData(rf, 0), 0
	}
	if (o.State != payment.StatePaid && o.State != payment.StateRefunding) || fee > o.Charged {
		return g.refundData(&ledgerRefund{ID: rid, Order: id, Fee: fee}, -1), 0
	}
	g.seq++
	rf := &ledgerRefund{ID: rid, Order: id, RefundID: fmt.Sprintf("SIMR%08d", g.seq), Fee: fee}
	g.refunds[rid] = rf
	o.refunds = append(o.refunds, rid)
	if o.Refunded+fee > o.TotalFee {
		g.violate("order %s refunded %d fen in all, more than its %d: %v", id, o.Refunded+fee, o.TotalFee, o.refunds)
	}
	o.Charged -= fee
	o.Refunded += fee
	o.State = payment.StateRefunding
	return g.refundData(rf, 0), 0
}

func (g *Gateway) orderData(o *ledgerOrder) []payment.Param {
	return []payment.Param{
		{Key: "merchant_id", Value: merchantID},
		{Key: "mch_trade_id", Value: o.ID},
		{Key: "trade_id", Value: o.TradeID},
		{Key: "total_fee", Value: strconv.FormatInt(o.TotalFee, 10), Num: true},
		{Key: "device_info", Value: o.Device},
		{Key: "trade_state", Value: strconv.Itoa(o.State), Num: true},
	}
}

func (g *Gateway) refundData(rf *ledgerRefund, status int) []payment.Param {
	return []payment.Param{
		{Key: "merchant_id", Value: merchantID},
		{Key: "mch_trade_id", Value: rf.Order},
		{Key: "mch_refund_id", Value: rf.ID},
		{Key: "refund_id", Value: rf.RefundID},
		{Key: "refund_fee", Value: strconv.FormatInt(rf.Fee, 10), Num: true},
		{Key: "refund_status", Value: strconv.Itoa(status), Num: true},
	}
}

func setState(d []payment.Param, s int) {
	for i := range d {
		if d[i].Key == "trade_state" {
			d[i].Value = strconv.Itoa(s)
		}
	}
}

func describe(d []payment.Param) string {
	var b strings.Builder
	for _, p := range d {
		switch p.Key {
		case "trade_state", "recall", "refund_status", "close_status", "need_query":
			fmt.Fprintf(&b, "%s=%s ", p.Key, p.Value)
		}
	}
	return strings.TrimSpace(b.String())
}
