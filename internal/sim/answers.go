package sim

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"example.com/posd/payment"
)

func (g *Gateway) query(id string) ([]payment.Param, int) {
	o := g.orders[id]
	if o == nil || g.lagging(o) {
		return nil, payment.CodeOrderNotFound
	}
	defer g.leftPaying(o, o.State)
	g.expire(o)
	if now().Before(o.staleUntil) && g.rng(id, "stale-read", o.queries).IntN(2) == 0 {
		d := g.orderData(o)
		setState(d, payment.StatePaying)
		return d, 0
	}
	o.queries++
	if o.how == payLater && o.State == payment.StatePaying && o.queries >= o.payAfter {
		g.paid(o)
	}
	if now().Sub(o.noReverseAt) < 10*time.Second && o.Charged > 0 && g.rng(id, "back-office-in-fallback", 0).IntN(4) == 0 {
		// A gateway without reverse: the merchant refunds the payment at
		// the counter meanwhile, and posd's fallback query, the next one,
		// finds it going back.
		g.log(g.backOfficeRefund(o, o.Charged))
	}
	o.noReverseAt = time.Time{}
	return g.orderData(o), 0
}

func (g *Gateway) reverse(id string) ([]payment.Param, int) {
	o := g.orders[id]
	if g.noReverse || g.rng(id, "no-reverse", 0).IntN(5) == 0 {
		// 100 on reverse: the gateway has none, or not for this order's
		// wallet; whether it has the order does not matter. The customer
		// may confirm just then: the fallback's query finds it paid.
		if o != nil && o.how == payAtReverse && o.State == payment.StatePaying && g.rng(id, "paid-at-no-reverse", 0).IntN(2) == 0 {
			g.paid(o)
		}
		if o != nil {
			o.noReverseAt = now()
		}
		return nil, payment.CodeParseError
	}
	if o == nil || g.lagging(o) {
		return nil, payment.CodeOrderNotFound
	}
	defer g.leftPaying(o, o.State)
	g.expire(o)
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
	defer g.leftPaying(o, o.State)
	g.expire(o)
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
		return g.refundData(rf, rf.status()), 0
	}
	if (o.State != payment.StatePaid && o.State != payment.StateRefunding) || fee > o.Charged {
		g.failed[rid] = id
		return g.refundData(&ledgerRefund{ID: rid, Order: id, Fee: fee}, -1), 0
	}
	g.seq++
	rf := &ledgerRefund{ID: rid, Order: id, RefundID: fmt.Sprintf("SIMR%08d", g.seq), Fee: fee}
	if x := g.rng(rid, "processing", 0); x.IntN(4) == 0 {
		// Made, and said to be in progress a while (to a bank card: hours).
		rf.processing = now().Add(time.Duration(5+x.IntN(7200)) * time.Second)
	}
	g.refunds[rid] = rf
	delete(g.failed, rid)
	o.refunds = append(o.refunds, rid)
	if o.Refunded+fee > o.TotalFee {
		g.violate("order %s refunded %d fen in all, more than its %d: %v", id, o.Refunded+fee, o.TotalFee, o.refunds)
	}
	o.Charged -= fee
	o.Refunded += fee
	o.State = payment.StateRefunding
	return g.refundData(rf, rf.status()), 0
}

// refundFailed answers a refund refund_status -1 (failed, may be tried
// again) without making it; the gateway remembers the failure. A refund
// made already is answered as it is.
func (g *Gateway) refundFailed(id, rid, fee string) []payment.Param {
	if rf := g.refunds[rid]; rf != nil {
		return g.refundData(rf, rf.status())
	}
	f, _ := strconv.ParseInt(fee, 10, 64)
	g.failed[rid] = id
	return g.refundData(&ledgerRefund{ID: rid, Order: id, Fee: f}, -1)
}

// status is a made refund's refund_status: in progress (1) for a while
// after it was made, if it is one of those, then done (0).
func (rf *ledgerRefund) status() int {
	if now().Before(rf.processing) {
		return 1
	}
	return 0
}

// leftPaying: for minutes after an order stopped "paying" (paid,
// reversed, closed), a replica behind may answer it "paying" still, now
// and then: a reconciliation then finds it open at the gateway though the
// journal has it final.
func (g *Gateway) leftPaying(o *ledgerOrder, before int) {
	if before == payment.StatePaying && o.State != payment.StatePaying && g.rng(o.ID, "stale", 0).IntN(2) == 0 {
		o.staleUntil = now().Add(time.Duration(1+g.rng(o.ID, "stale", 1).IntN(300)) * time.Second)
	}
}

// expire closes an order still unpaid at its time_expire, as the gateway
// does.
func (g *Gateway) expire(o *ledgerOrder) {
	if o.State == payment.StatePaying && !o.expireAt.IsZero() && !now().Before(o.expireAt) {
		o.State = payment.StateClosed
	}
}

func (g *Gateway) orderData(o *ledgerOrder) []payment.Param {
	state := o.State
	if g.keepsTS0 && o.refundedByRefund && state == payment.StateRefunding {
		state = payment.StatePaid
	}
	return []payment.Param{
		{Key: "merchant_id", Value: merchantID},
		{Key: "mch_trade_id", Value: o.ID},
		{Key: "trade_id", Value: o.TradeID},
		{Key: "total_fee", Value: strconv.FormatInt(o.TotalFee, 10), Num: true},
		{Key: "device_info", Value: o.Device},
		{Key: "trade_state", Value: strconv.Itoa(state), Num: true},
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
