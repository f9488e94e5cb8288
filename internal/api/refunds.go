package api

import (
	"cmp"
	"net/http"

	"example.com/posd/internal/lane"
)

// refundRequest is POST /v1/charges/{id}/refunds.
type refundRequest struct {
	RefundFee int64  `json:"refund_fee"`
	RefundID  string `json:"refund_id"`
	Reason    string `json:"reason"`
	OpUserID  string `json:"op_user_id"`
	Shift     string `json:"shift"`
}

// newRefund asks for a refund of part (or the rest) of a paid charge: 202
// and the refund, pending until the gateway confirms it (GET it, or follow
// /v1/events). The till's id for it — refund_id, or an Idempotency-Key
// header, the same id either way — is required: asked again, it is the
// same refund, here and at the gateway.
func (s *Server) newRefund(w http.ResponseWriter, r *http.Request) {
	var body refundRequest
	if err := decode(r, &body); err != nil {
		s.fail(w, err)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if err := checkText("refund_id", body.RefundID, "reason", body.Reason, "op_user_id", body.OpUserID, "shift", body.Shift,
		"Idempotency-Key", key); err != nil {
		s.fail(w, err)
		return
	}
	switch {
	case body.RefundFee <= 0:
		s.fail(w, lane.Invalid("refund_fee", "refund_fee must be a positive number of fen"))
		return
	case key != "" && body.RefundID != "" && key != body.RefundID:
		s.fail(w, lane.Invalid("refund_id", "refund_id %q and Idempotency-Key %q differ: give the till's id for the refund once, or the same in both", body.RefundID, key))
		return
	}
	ref, created, err := s.svc.RefundCharge(r.PathValue("id"), lane.RefundRequest{
		RefundFee: body.RefundFee, RefundID: cmp.Or(body.RefundID, key), Reason: body.Reason, OpUserID: body.OpUserID, Shift: body.Shift})
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
