package api

import (
	"fmt"
	"net/http"

	"example.com/posd/internal/lane"
)

// refundRequest is POST /v1/charges/{id}/refunds.
type refundRequest struct {
	RefundFee int64  `json:"refund_fee"`
	RefundID  string `json:"refund_id"`
	Reason    string `json:"reason"`
	OpUserID  string `json:"op_user_id"`
}

// newRefund asks for a refund of part (or the rest) of a paid charge: 202
// and the refund, pending until the gateway confirms it (GET it, or follow
// /v1/events). The till's refund_id makes it idempotent.
func (s *Server) newRefund(w http.ResponseWriter, r *http.Request) {
	var body refundRequest
	if err := decode(r, &body); err != nil {
		s.fail(w, err)
		return
	}
	if body.RefundFee <= 0 {
		s.fail(w, fmt.Errorf("%w: refund_fee must be a positive number of fen", lane.ErrInvalid))
		return
	}
	ref, created, err := s.svc.RefundCharge(r.PathValue("id"), lane.RefundRequest{
		RefundFee: body.RefundFee, RefundID: body.RefundID, Reason: body.Reason, OpUserID: body.OpUserID})
	if err != nil {
		s.fail(w, err)
		return
	}
	if !created {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, http.StatusAccepted, ref)
}

func (s *Server) listRefunds(w http.ResponseWriter, r *http.Request) {
	refunds, err := s.svc.Refunds(r.PathValue("id"))
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"refunds": refunds})
}

func (s *Server) getRefund(w http.ResponseWriter, r *http.Request) {
	ref, err := s.svc.RefundOf(r.PathValue("id"), r.PathValue("refund_id"))
	s.reply(w, http.StatusOK, ref, err)
}
