package api

import (
	"net/http"
	"time"

	"example.com/posd/internal/money"
)

// totals is GET /v1/totals?date=…[&lane=…][&op_user_id=…][&shift=…]: the
// day's payments by wallet — paid, refunded of them, net — and their sum
// (the row whose wallet is ""). The daily report carries the same figures.
func (s *Server) totals(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	day, err := parseDay("date", q.Get("date"))
	if err != nil {
		s.fail(w, err)
		return
	}
	f := money.TotalsFilter{Lane: q.Get("lane"), OpUserID: q.Get("op_user_id"), Shift: q.Get("shift")}
	if f.Lane != "" {
		if _, err := s.svc.Lane(f.Lane); err != nil {
			s.fail(w, err)
			return
		}
	}
	sums, err := s.hist.Totals(day, day.AddDate(0, 0, 1), f)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"date": day.Format(time.DateOnly), "lane": f.Lane, "op_user_id": f.OpUserID,
		"shift": f.Shift, "wallets": sums[:len(sums)-1], "total": sums[len(sums)-1]})
}
