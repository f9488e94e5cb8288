package api

import (
	"net/http"

	"example.com/posd/internal/lane"
)

// findCharges is GET /v1/charges?reference=…[&lane=…]: the charges opened
// with the till's own sale reference (one per lane), for a till that lost
// the reply.
func (s *Server) findCharges(w http.ResponseWriter, r *http.Request) {
	ref := r.URL.Query().Get("reference")
	if ref == "" {
		s.fail(w, lane.Invalid("reference", "reference is required"))
		return
	}
	vs, err := s.svc.ByReference(r.URL.Query().Get("lane"), ref)
	if err != nil {
		s.fail(w, err)
		return
	}
	out := make([]Charge, 0, len(vs))
	for _, v := range vs {
		out = append(out, chargeOf(v))
	}
	writeJSON(w, http.StatusOK, map[string]any{"charges": out})
}

// KnownLane refuses, 404, a request whose ?lane= names no lane, before h:
// a till that mistyped a lane hears so, instead of an empty stream.
func (s *Server) KnownLane(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := r.URL.Query().Get("lane"); id != "" {
			if _, err := s.svc.Lane(id); err != nil {
				s.fail(w, err)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// lastCharge is GET /v1/lanes/{lane}/last: the lane's latest charge.
func (s *Server) lastCharge(w http.ResponseWriter, r *http.Request) {
	v, err := s.svc.Last(r.PathValue("lane"))
	s.reply(w, http.StatusOK, chargeOf(v), err)
}
