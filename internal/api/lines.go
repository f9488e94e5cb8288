package api

import (
	"fmt"
	"net/http"
	"time"

	"example.com/posd/internal/lane"
)

// showLines is POST /v1/lanes/{lane}/display {"lines":[…],"ttl":"30s"}:
// the till's lines on the lane's customer displays between payments.
func (s *Server) showLines(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Lines []string `json:"lines"`
		TTL   string   `json:"ttl"`
	}
	if err := decode(r, &body); err != nil {
		s.fail(w, err)
		return
	}
	for i, l := range body.Lines {
		if err := checkText(fmt.Sprintf("lines[%d]", i), l); err != nil {
			s.fail(w, err)
			return
		}
	}
	ttl := 30 * time.Second
	if body.TTL != "" {
		d, err := time.ParseDuration(body.TTL)
		if err != nil {
			s.fail(w, lane.Invalid("ttl", "ttl %q: a duration such as 30s", body.TTL))
			return
		}
		ttl = d
	}
	id := r.PathValue("lane")
	if err := s.svc.ShowLines(id, body.Lines, ttl); err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"lane": id, "lines": body.Lines, "until": time.Now().Add(ttl)})
}
