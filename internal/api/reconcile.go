package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"example.com/posd/internal/lane"
	"example.com/posd/internal/money"
)

// Reconciler runs a day's reconciliation against the gateway.
type Reconciler interface {
	Start(day time.Time) (money.ReconcileRun, error)
	Status(date string) (money.ReconcileRun, bool, error)
}

var errNoReconcile = fmt.Errorf("%w: no reconciliation here", lane.ErrOutOfService)

// startReconcile is POST /v1/reconcile {"date":"YYYY-MM-DD"}: every order
// of that day is queried at the gateway (rate-limited; a run that stopped
// resumes), and every disagreement is listed (GET /v1/reconcile) and
// counted in /metrics. Nothing is changed.
func (s *Server) startReconcile(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Date string `json:"date"`
	}
	if err := decode(r, &body); err != nil {
		s.fail(w, err)
		return
	}
	day, err := parseDay("date", body.Date)
	if err != nil {
		s.fail(w, err)
		return
	}
	if s.Reconcile == nil {
		s.fail(w, errNoReconcile)
		return
	}
	run, err := s.Reconcile.Start(day)
	s.reply(w, http.StatusAccepted, run, err)
}

// reconcileStatus is GET /v1/reconcile?date=…[&format=csv]: the run as it
// stands, or its disagreements as CSV.
func (s *Server) reconcileStatus(w http.ResponseWriter, r *http.Request) {
	asCSV, err := csvOrJSON(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	day, err := parseDay("date", r.URL.Query().Get("date"))
	if err != nil {
		s.fail(w, err)
		return
	}
	if s.Reconcile == nil {
		s.fail(w, errNoReconcile)
		return
	}
	run, found, err := s.Reconcile.Status(day.Format(time.DateOnly))
	if err == nil && !found {
		err = fmt.Errorf("%w: no reconciliation of %s yet (POST /v1/reconcile)", lane.ErrNotFound, day.Format(time.DateOnly))
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	if asCSV {
		out := [][]string{{"mch_trade_id", "charge_id", "lane", "total_fee", "journal_state", "gateway_state", "what", "action"}}
		for _, d := range run.Disagreements {
			out = append(out, []string{d.MchTradeID, d.ChargeID, d.Lane, strconv.FormatInt(d.TotalFee, 10), string(d.JournalState), d.GatewayState, d.What, d.Action})
		}
		writeCSV(w, out)
		return
	}
	writeJSON(w, http.StatusOK, run)
}
