package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"example.com/posd/display"
	"example.com/posd/internal/lane"
	"example.com/posd/internal/money"
)

// receiptOf is the payment's receipt of a paid (or refunded) charge: its
// paying attempt, at the time it was paid, with every refund made of it
// since (each refund has a receipt of its own too).
func (s *Server) receiptOf(v lane.View) (display.Receipt, error) {
	c := v.Charge
	var paid *money.Order
	for i := range v.Attempts {
		if st := v.Attempts[i].State; st == money.Paid || st == money.Refunded {
			paid = &v.Attempts[i]
		}
	}
	if paid == nil || (c.State != money.Paid && c.State != money.PartiallyRefunded && c.State != money.Refunded) {
		return display.Receipt{}, fmt.Errorf("%w: charge %s is %s; only a paid or refunded charge has a receipt", lane.ErrConflict, c.ID, c.State)
	}
	rc := display.Receipt{ID: c.ID, Store: s.Store, Lane: c.Lane, Time: paidAt(paid), TotalFee: c.TotalFee, Wallet: paid.Wallet,
		MchTradeID: paid.MchTradeID, TradeID: paid.TradeID, OutTradeID: paid.OutTradeID,
		Sandbox: v.Sandbox, BuyerPayAmount: paid.BuyerPayAmount, CouponFee: paid.CouponFee}
	if c.State == money.Paid {
		return rc, nil
	}
	refunds, err := s.svc.Refunds(c.ID)
	if err != nil {
		return display.Receipt{}, err
	}
	var listed int64
	for _, r := range refunds {
		if r.State == money.Refunded {
			rc.Refunds = append(rc.Refunds, display.ReceiptRefund{RefundID: r.RefundID, MchRefundID: r.MchRefundID, RefundFee: r.RefundFee, Time: refundedAt(&r)})
			listed += r.RefundFee
		}
	}
	rest := c.RefundedFee - listed
	if c.State == money.Refunded {
		rest = c.TotalFee - listed
	}
	if rest > 0 { // given back with no refund record of posd's (the back office, an older posd)
		rc.Refunds = append(rc.Refunds, display.ReceiptRefund{RefundFee: rest, Time: paid.UpdatedAt})
	}
	return rc, nil
}

// paidAt is when a payment completed: the gateway's time_end, or when
// posd learned it (a refund since moves FinishedAt, never this), or when
// the pay was sent.
func paidAt(o *money.Order) time.Time {
	if t, ok := o.PayDetail.Completed(); ok {
		return t
	}
	if o.State == money.Paid && o.RefundID == "" && !o.FinishedAt.IsZero() {
		return o.FinishedAt
	}
	return o.CreatedAt
}

func refundedAt(r *money.Refund) time.Time {
	if !r.FinishedAt.IsZero() {
		return r.FinishedAt
	}
	return r.UpdatedAt
}

// refundReceiptOf is a refund's own receipt: the money given back.
func (s *Server) refundReceiptOf(v lane.View, r money.Refund) (display.Receipt, error) {
	if r.State != money.Refunded {
		return display.Receipt{}, fmt.Errorf("%w: refund %s is %s; only money given back has a receipt", lane.ErrConflict, r.RefundID, r.State)
	}
	var paid *money.Order
	for i := range v.Attempts {
		if v.Attempts[i].MchTradeID == r.MchTradeID {
			paid = &v.Attempts[i]
		}
	}
	if paid == nil {
		return display.Receipt{}, fmt.Errorf("%w: refund %s names no attempt of charge %s", lane.ErrNotFound, r.RefundID, v.Charge.ID)
	}
	return display.Receipt{ID: r.MchRefundID, Store: s.Store, Lane: v.Charge.Lane, Time: refundedAt(&r), TotalFee: r.RefundFee,
		Wallet: paid.Wallet, MchTradeID: paid.MchTradeID, TradeID: paid.TradeID, OutTradeID: paid.OutTradeID,
		Refund: true, RefundID: r.RefundID, MchRefundID: r.MchRefundID, Sandbox: v.Sandbox}, nil
}

// getReceipt is GET /v1/charges/{id}/receipt?format=json|text|escpos
// [&width=32]: posd's receipt, for a till that prints on its own printer.
func (s *Server) getReceipt(w http.ResponseWriter, r *http.Request) {
	v, err := s.svc.Get(r.PathValue("id"))
	if err != nil {
		s.fail(w, err)
		return
	}
	rc, err := s.receiptOf(v)
	if err != nil {
		s.fail(w, err)
		return
	}
	s.writeReceipt(w, r, rc)
}

// getRefundReceipt is GET /v1/charges/{id}/refunds/{refund_id}/receipt:
// one refund's receipt, in the formats of the payment's.
func (s *Server) getRefundReceipt(w http.ResponseWriter, r *http.Request) {
	v, err := s.svc.Get(r.PathValue("id"))
	if err != nil {
		s.fail(w, err)
		return
	}
	ref, err := s.svc.RefundOf(v.Charge.ID, r.PathValue("refund_id"))
	if err != nil {
		s.fail(w, err)
		return
	}
	rc, err := s.refundReceiptOf(v, ref)
	if err != nil {
		s.fail(w, err)
		return
	}
	s.writeReceipt(w, r, rc)
}

// writeReceipt answers with rc as ?format= asks (json, text, escpos) at
// ?width= characters.
func (s *Server) writeReceipt(w http.ResponseWriter, r *http.Request, rc display.Receipt) {
	var err error
	width := 32
	if ws := r.URL.Query().Get("width"); ws != "" {
		if width, err = strconv.Atoi(ws); err != nil || width < 24 || width > 80 {
			s.fail(w, lane.Invalid("width", "width %q: 24 to 80 characters", ws))
			return
		}
	}
	switch f := r.URL.Query().Get("format"); f {
	case "", "json":
		writeJSON(w, http.StatusOK, rc)
	case "text":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(display.ReceiptText(rc, width)))
	case "escpos":
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(display.ReceiptBytes(rc, width, "gb18030", false))
	default:
		s.fail(w, lane.Invalid("format", "format %q: json, text or escpos", f))
	}
}
