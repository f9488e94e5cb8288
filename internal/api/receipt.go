package api

import (
	"fmt"
	"net/http"
	"strconv"

	"example.com/posd/display"
	"example.com/posd/internal/lane"
	"example.com/posd/internal/money"
)

// receiptOf is the receipt of a paid (or refunded) charge: its paying
// attempt.
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
	at := paid.FinishedAt
	if at.IsZero() {
		at = paid.UpdatedAt
	}
	return display.Receipt{ID: c.ID, Store: s.Store, Lane: c.Lane, Time: at, TotalFee: c.TotalFee, Wallet: paid.Wallet,
		MchTradeID: paid.MchTradeID, TradeID: paid.TradeID, OutTradeID: paid.OutTradeID,
		Refund: c.State == money.Refunded, Sandbox: v.Sandbox, BuyerPayAmount: paid.BuyerPayAmount, CouponFee: paid.CouponFee}, nil
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
