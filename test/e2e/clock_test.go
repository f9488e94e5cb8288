package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/internal/journal"
	"example.com/posd/internal/money"
	"example.com/posd/test/harness"
)

// A wrong wall clock, through the real binary: records dated in the future
// bind nothing, pruning goes by the time posd has seen pass rather than by
// the wall clock, the fault shows in /healthz and /metrics, and a
// reconciliation cut short by a kill finishes by itself. The journals are
// written with the journal's own code while posd is stopped, as a posd
// whose clock was wrong would have written them.

// setObserved records t as the time the journal has seen pass: what a posd
// that started under that clock would have left in it.
func setObserved(j *journal.Journal, t time.Time) error { return j.SetObserved(t, t) }

// healthJSON is GET /healthz as a monitor reads it.
type healthJSON struct {
	OK     bool   `json:"ok"`
	Status string `json:"status"`
	Reason string `json:"reason"`
	Clock  *struct {
		Degraded bool    `json:"degraded"`
		Reason   string  `json:"reason"`
		Offset   float64 `json:"offset_seconds"`
		Faults   []struct {
			When      string `json:"when"`
			Direction string `json:"direction"`
			Reason    string `json:"reason"`
		} `json:"faults"`
	} `json:"clock"`
}

func (d *posdProc) health() healthJSON {
	d.t.Helper()
	code, body := d.do("GET", "/healthz", nil)
	require.Equal(d.t, 200, code, "a clock fault stops no payment: %s", body)
	var h healthJSON
	require.NoError(d.t, json.Unmarshal(body, &h), "%s", body)
	return h
}

// clockDegraded holds that /healthz says the clock is at fault, way
// ("behind" or "ahead") at start, while payments go on.
func clockDegraded(t *testing.T, h healthJSON, way string) {
	t.Helper()
	assert.True(t, h.OK, "payments go on")
	assert.Equal(t, "degraded", h.Status)
	assert.True(t, strings.HasPrefix(h.Reason, "clock: "), "the reason names the clock: %q", h.Reason)
	if assert.NotNil(t, h.Clock, "/healthz shows the clock") {
		assert.True(t, h.Clock.Degraded)
		if assert.NotEmpty(t, h.Clock.Faults) {
			assert.Equal(t, "start", h.Clock.Faults[0].When)
			assert.Equal(t, way, h.Clock.Faults[0].Direction)
		}
	}
}

var seriesLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)
var seriesLabel = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// metric is the sum of the /metrics series of name whose labels include
// the pairs given (label, value, …); 0 when there is none.
func (d *posdProc) metric(name string, labels ...string) float64 {
	d.t.Helper()
	code, body := d.do("GET", "/metrics", nil)
	require.Equal(d.t, 200, code)
	sum := 0.0
	for _, line := range strings.Split(string(body), "\n") {
		m := seriesLine.FindStringSubmatch(line)
		if m == nil || m[1] != name {
			continue
		}
		have := map[string]string{}
		for _, l := range seriesLabel.FindAllStringSubmatch(m[2], -1) {
			have[l[1]] = l[2]
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			match = match && have[labels[i]] == labels[i+1]
		}
		if v, err := strconv.ParseFloat(m[3], 64); match && err == nil {
			sum += v
		}
	}
	return sum
}

// paidRecord is a paid attempt and its charge, final at at, as a lane
// writes them.
func paidRecord(id string, at time.Time) (money.Order, money.Charge) {
	sum := sha256.Sum256([]byte(id))
	o := money.Order{
		MchTradeID: id, ChargeID: "CH" + id, Lane: "L1", DeviceInfo: "POS01",
		PayType: "alipay.micro", Wallet: "alipay", Scene: "bar_code", TotalFee: 100,
		Subject: "goods", Body: "goods", ClientIP: "127.0.0.1", TimeStart: at.Add(-time.Second).Unix(),
		CodeMasked: "**************1234", CodeSHA256: hex.EncodeToString(sum[:]),
		State: money.Paid, Phase: money.PhaseDone, TradeID: "T" + id, OutTradeID: "W" + id,
		CreatedAt: at.Add(-time.Second), UpdatedAt: at, FinishedAt: at,
	}
	c := money.Charge{ID: o.ChargeID, Lane: "L1", TotalFee: o.TotalFee, Subject: "goods", Body: "goods",
		State: money.Paid, AttemptIDs: []string{id}, CreatedAt: o.CreatedAt, ExpiresAt: o.CreatedAt.Add(10 * time.Minute), UpdatedAt: at}
	return o, c
}

// writeHistory writes a paid record final at each of the times, named by
// the key, and the journal's observed time.
func writeHistory(t *testing.T, path string, observed time.Time, records map[string]time.Time) {
	t.Helper()
	j, err := journal.Open(path)
	require.NoError(t, err)
	defer j.Close()
	require.NoError(t, j.Update(func(tx *journal.Tx) error {
		for id, at := range records {
			o, c := paidRecord(id, at)
			if err := tx.RecordAttempt(&o, &c); err != nil {
				return err
			}
		}
		return nil
	}))
	require.NoError(t, setObserved(j, observed))
}

// onlyOldPruned waits for the start's pruning, which must delete orders
// orders, and checks that exactly the records named _O… are gone (their
// orders and their charges).
func onlyOldPruned(t *testing.T, d *posdProc, orders int, records map[string]time.Time) {
	t.Helper()
	harness.WaitFor(t, 20*time.Second, func() bool {
		return strings.Contains(d.out.String(), "pruned final records past retention")
	}, "the start's pruning")
	assert.Contains(t, d.out.String(), fmt.Sprintf(`"orders":%d,`, orders), "orders pruned at start")
	gone := map[string]bool{}
	for id := range records {
		code, _ := d.do("GET", "/v1/charges/CH"+id, nil)
		require.Contains(t, []int{200, 404}, code)
		gone[id] = code == 404
	}
	code, body := d.do("GET", "/v1/orders?state=all", nil)
	require.Equal(t, 200, code, "%s", body)
	var list struct {
		Orders []struct {
			MchTradeID string `json:"mch_trade_id"`
		} `json:"orders"`
	}
	require.NoError(t, json.Unmarshal(body, &list))
	kept := map[string]bool{}
	for _, o := range list.Orders {
		kept[o.MchTradeID] = true
	}
	for id := range records {
		assert.Equal(t, gone[id], !kept[id], "record %s: its order and its charge go together", id)
		assert.Equal(t, strings.Contains(id, "_O"), gone[id], "record %s final at %s: pruned %v", id, records[id].Format(time.RFC3339), gone[id])
	}
}

// dateAhead moves a paid charge and its attempts to ahead, as a wall
// clock set to then would have dated them.
func dateAhead(tx *journal.Tx, chargeID string, ahead time.Time) error {
	c, ok, err := tx.Charge(chargeID)
	if err != nil || !ok {
		return fmt.Errorf("charge %s: %v (found %v)", chargeID, err, ok)
	}
	by := ahead.Sub(c.CreatedAt)
	for _, id := range c.AttemptIDs {
		o, ok, err := tx.Order(id)
		if err != nil || !ok {
			return fmt.Errorf("order %s: %v (found %v)", id, err, ok)
		}
		o.CreatedAt, o.UpdatedAt, o.FinishedAt = o.CreatedAt.Add(by), o.UpdatedAt.Add(by), o.FinishedAt.Add(by)
		if !o.NextAt.IsZero() {
			o.NextAt = o.NextAt.Add(by)
		}
		o.TimeStart += int64(by / time.Second)
		if _, err := tx.SaveStep(&o, o.UpdatedAt); err != nil {
			return err
		}
	}
	_, _, err = tx.UpdateCharge(chargeID, func(c *money.Charge) bool {
		c.CreatedAt, c.ExpiresAt, c.UpdatedAt = c.CreatedAt.Add(by), c.ExpiresAt.Add(by), c.UpdatedAt.Add(by)
		return true
	})
	return err
}

// Sales paid under a wall clock that ran ahead to 2038, then the clock set
// right: their till reference and Idempotency-Key are another sale's now,
// and their refund window cannot be judged.
func TestFutureChargeBindsNoReference(t *testing.T) {
	t.Parallel()
	g := startSandbox(t)
	d := newTill(t, g, opts{})
	d.start()
	open := func(fee int64, ref, key string) (int, bool, chargeMoney, []byte) {
		t.Helper()
		body := map[string]any{"lane": "L1", "total_fee": fee, "subject": "s", "body": "b"}
		if ref != "" {
			body["reference"] = ref
		}
		var hdr []string
		if key != "" {
			hdr = []string{"Idempotency-Key", key}
		}
		code, h, answer := d.post("/v1/charges", body, hdr...)
		var c chargeMoney
		_ = json.Unmarshal(answer, &c)
		return code, h.Get("Idempotent-Replayed") == "true", c, answer
	}
	sale := func(ref, key string) chargeMoney {
		t.Helper()
		code, _, c, body := open(1000, ref, key)
		require.Equal(t, 201, code, "%s", body)
		d.scan(harness.AlipayCode(7))
		require.Equal(t, "paid", d.settle(c.ID, 10*time.Second).State)
		return d.money(c.ID)
	}
	s1, s2 := sale("S-1", "K-1"), sale("S-2", "K-2")
	d.kill()

	ahead := time.Date(2038, 6, 1, 10, 0, 0, 0, time.UTC)
	j, err := journal.Open(filepath.Join(d.dir, "journal.db"))
	require.NoError(t, err)
	require.NoError(t, j.Update(func(tx *journal.Tx) error {
		if err := dateAhead(tx, s1.ID, ahead); err != nil {
			return err
		}
		return dateAhead(tx, s2.ID, ahead.Add(time.Minute))
	}))
	// posd ran under that clock, so the journal's observed time is in 2038
	// too: a start compares the wall clock with it, not with the records.
	require.NoError(t, setObserved(j, ahead.Add(2*time.Minute)))
	require.NoError(t, j.Close())
	d.start()

	// Each new sale is a new charge; the lane holds one open charge, so
	// each is canceled before the next.
	fresh := func(what string, fee int64, ref, key string, old chargeMoney) {
		t.Helper()
		code, replayed, c, body := open(fee, ref, key)
		if !assert.Equal(t, 201, code, "%s: not refused: %s", what, body) {
			return
		}
		assert.False(t, replayed, "%s: not a replay", what)
		assert.NotEqual(t, old.ID, c.ID, "%s: a new charge, not the one dated 2038", what)
		assert.Equal(t, "awaiting_scan", c.State, "%s", what)
		if c.ID != old.ID {
			code, body := d.do("DELETE", "/v1/charges/"+c.ID, nil)
			require.Equal(t, 200, code, "%s", body)
		}
	}
	fresh("reference S-1, same amount", 1000, "S-1", "", s1)
	fresh("reference S-2, another amount", 700, "S-2", "", s2)
	fresh("Idempotency-Key K-1, same amount", 1000, "", "K-1", s1)
	fresh("Idempotency-Key K-2, another amount", 500, "", "K-2", s2)

	code, _, body := d.post("/v1/charges/"+s1.ID+"/refunds", map[string]any{"refund_fee": 100, "refund_id": "R-1"})
	assert.Equal(t, 422, code, "a refund of a charge dated 2038: %s", body)
	assert.Contains(t, string(body), "clock")
	code, body = d.do("POST", "/v1/charges/"+s2.ID+"/refund", nil)
	assert.Equal(t, 422, code, "a full refund of a charge dated 2038: %s", body)
	assert.Contains(t, string(body), "clock")
	l := g.ledger(t)
	assert.Zero(t, l.Refunded(s1.order())+l.Refunded(s2.order()), "no money went back")
	for _, c := range []chargeMoney{s1, s2} {
		assert.Equal(t, "paid", d.money(c.ID).State, "the charge dated 2038 is as it was")
	}

	assert.GreaterOrEqual(t, d.metric("posd_clock_future_records_total", "kind", "charge"), 4.0, "each charge dated 2038 stepped over is counted")
	assert.GreaterOrEqual(t, d.metric("posd_clock_future_records_total", "kind", "order"), 2.0, "each order dated 2038 a refund stepped over is counted")
	assert.Equal(t, 1.0, d.metric("posd_clock_jumps_total", "when", "start", "direction", "behind"))
	assert.Equal(t, 1.0, d.metric("posd_clock_degraded"))
	clockDegraded(t, d.health(), "behind")
	assert.Contains(t, d.out.String(), "dated in the future")
	checkRefunds(t, d, true, s1.ID, s2.ID)
}

// A journal a year ahead of the wall clock (a clock that ran ahead, set
// right since): posd prunes by the wall clock, the earlier of the two,
// so the records from the year ahead all stay, and those old by the wall
// clock go.
func TestJournalAYearAheadPrunesNothingYoung(t *testing.T) {
	t.Parallel()
	g := startSandbox(t)
	d := newDaemon(t, g, opts{})
	path := filepath.Join(d.dir, "journal.db")
	d.setJournal(path, "retention: 48h")
	now := time.Now()
	year := now.AddDate(1, 0, 0)
	records := map[string]time.Time{
		// A year ahead, some of them older than the retention by the
		// journal's own observed time.
		"S001_POS01_A0001": year.Add(-10 * 24 * time.Hour),
		"S001_POS01_A0002": year.Add(-3 * 24 * time.Hour),
		"S001_POS01_A0003": year.Add(-24 * time.Hour),
		"S001_POS01_A0004": year.Add(-time.Hour),
		"S001_POS01_A0005": now.Add(10 * 24 * time.Hour),
		// Young by the wall clock.
		"S001_POS01_Y0001": now.Add(-time.Hour),
		"S001_POS01_Y0002": now.Add(-40 * time.Hour),
		// Older than the retention by the wall clock.
		"S001_POS01_O0001": now.Add(-50 * time.Hour),
		"S001_POS01_O0002": now.Add(-5 * 24 * time.Hour),
		"S001_POS01_O0003": now.Add(-30 * 24 * time.Hour),
	}
	writeHistory(t, path, year, records)
	d.start()

	onlyOldPruned(t, d, 3, records)
	clockDegraded(t, d.health(), "behind")
	assert.Equal(t, 1.0, d.metric("posd_clock_jumps_total", "when", "start", "direction", "behind"))
}

// The wall clock a year ahead of the journal (a technician's typo): a
// record is old by the time posd has seen pass, the journal's observed
// time and the monotonic clock since, never by the wall clock alone.
func TestClockAYearAheadOfJournalPrunesNothing(t *testing.T) {
	t.Parallel()
	g := startSandbox(t)
	d := newDaemon(t, g, opts{})
	path := filepath.Join(d.dir, "journal.db")
	d.setJournal(path, "retention: 48h")
	seen := time.Now().AddDate(-1, 0, -5)
	records := map[string]time.Time{
		// Old by the wall clock, young by the time posd observed.
		"S001_POS01_Y0001": seen.Add(-time.Minute),
		"S001_POS01_Y0002": seen.Add(-20 * time.Hour),
		"S001_POS01_Y0003": seen.Add(-47 * time.Hour),
		// Older than the retention before the journal's observed time.
		"S001_POS01_O0001": seen.Add(-49 * time.Hour),
		"S001_POS01_O0002": seen.Add(-10 * 24 * time.Hour),
	}
	writeHistory(t, path, seen, records)
	d.start()

	onlyOldPruned(t, d, 2, records)
	clockDegraded(t, d.health(), "ahead")
	assert.Equal(t, 1.0, d.metric("posd_clock_jumps_total", "when", "start", "direction", "ahead"))
	assert.Zero(t, d.metric("posd_clock_jumps_total", "direction", "behind"))
	assert.Contains(t, d.out.String(), "CLOCK FAULT")
}

// reconcileRun is GET /v1/reconcile as a till reads it.
type reconcileRun struct {
	State         string            `json:"state"`
	Reason        string            `json:"reason"`
	Total         int               `json:"total"`
	Checked       int               `json:"checked"`
	Agreed        int               `json:"agreed"`
	InProgress    int               `json:"in_progress"`
	Unanswered    int               `json:"unanswered"`
	Disagreements []json.RawMessage `json:"disagreements"`
}

// A day's reconciliation killed halfway finishes by itself at the next
// start, from where it was: no one posts it again, and it never says it
// runs without moving on.
func TestReconcileResumesAfterKill(t *testing.T) {
	t.Parallel()
	const lanes, perLane = 6, 40
	g := startSandbox(t)
	var laneYAML strings.Builder
	for i := 1; i <= lanes; i++ {
		fmt.Fprintf(&laneYAML, "\n  - {id: L%d, device_info: POS%02d}", i, i)
	}
	d := newDaemon(t, g, opts{lanes: laneYAML.String() + "\n", extra: "reconcile:\n  rate: 50\n"}) // five seconds for the run
	d.start()

	began := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, lanes)
	for i := 1; i <= lanes; i++ {
		lane := fmt.Sprintf("L%d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perLane {
				if err := payOn(d, lane); err != nil {
					errs <- fmt.Errorf("lane %s: %w", lane, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	paying := time.Since(began)

	// The day's orders, as the reconciliation lists them: all of ours,
	// unless the day turned while they were paid.
	day := time.Now().Format(time.DateOnly)
	code, body := d.do("GET", "/v1/orders?state=all", nil)
	require.Equal(t, 200, code, "%s", body)
	var list struct {
		Orders []struct {
			State     string    `json:"state"`
			CreatedAt time.Time `json:"created_at"`
		} `json:"orders"`
	}
	require.NoError(t, json.Unmarshal(body, &list))
	total := 0
	for _, o := range list.Orders {
		require.Equal(t, "paid", o.State)
		if o.CreatedAt.Local().Format(time.DateOnly) == day {
			total++
		}
	}
	require.Equal(t, lanes*perLane, len(list.Orders))
	require.Greater(t, total, 40, "enough of the day's orders to kill the run halfway")

	queries := func() (n int) {
		for _, o := range g.ledger(t).Orders {
			n += o.Queries
		}
		return n
	}
	before := queries()
	status := func() reconcileRun {
		t.Helper()
		code, body := d.do("GET", "/v1/reconcile?date="+day, nil)
		require.Equal(t, 200, code, "%s", body)
		var run reconcileRun
		require.NoError(t, json.Unmarshal(body, &run), "%s", body)
		return run
	}
	code, body = d.do("POST", "/v1/reconcile", map[string]string{"date": day})
	require.Equal(t, 202, code, "%s", body)
	var atKill reconcileRun
	harness.WaitFor(t, 20*time.Second, func() bool {
		atKill = status()
		require.NotEqual(t, "done", atKill.State, "the run ended before it could be killed: lower reconcile.rate")
		return atKill.Checked >= total/3
	}, "the reconciliation a third through")
	d.kill()
	require.Less(t, atKill.Checked, total)
	beforeKill := queries() - before

	restarted := time.Now()
	d.start()
	run, last, moved := reconcileRun{}, -1, time.Now()
	harness.WaitFor(t, 30*time.Second, func() bool {
		run = status()
		require.Contains(t, []string{"running", "done"}, run.State, "resumed at start, never interrupted: %+v", run)
		if run.Checked != last {
			last, moved = run.Checked, time.Now()
		}
		require.Less(t, time.Since(moved), 5*time.Second, "running, yet checked stays at %d", run.Checked)
		return run.State == "done"
	}, "the reconciliation resumed and done")
	finish := time.Since(restarted)
	afterKill := queries() - before - beforeKill

	assert.Equal(t, total, run.Total)
	assert.Equal(t, total, run.Checked, "every order checked once")
	assert.Equal(t, total, run.Agreed, "every order agrees with the gateway")
	assert.Zero(t, run.InProgress+run.Unanswered)
	assert.Empty(t, run.Disagreements)
	assert.LessOrEqual(t, afterKill, total-atKill.Checked, "resumed from where it was saved, not from the start")
	assert.GreaterOrEqual(t, beforeKill+afterKill, total, "every order asked")
	assert.Contains(t, d.out.String(), "resumed reconciliations cut short")
	t.Logf("reconcile resumed: %d orders paid in %s; killed at %d checked (%d queries), then %d queries; done %s after the restart",
		total, paying.Round(time.Millisecond), atKill.Checked, beforeKill, afterKill, finish.Round(time.Millisecond))
}

// payOn opens a charge of 100 on a lane, pays it with a code sent through
// the API, and waits until it is paid. It is safe off the test's
// goroutine.
func payOn(d *posdProc, lane string) error {
	code, body, err := d.try("POST", "/v1/charges", map[string]any{"lane": lane, "total_fee": 100, "subject": "s", "body": "b"})
	if err != nil || code != 201 {
		return fmt.Errorf("open: %d %s %v", code, body, err)
	}
	var c harness.ChargeJSON
	if err := json.Unmarshal(body, &c); err != nil {
		return err
	}
	if code, body, err = d.try("POST", "/v1/lanes/"+lane+"/scans", map[string]string{"auth_code": harness.AlipayCode(7)}); err != nil || code != 202 {
		return fmt.Errorf("scan: %d %s %v", code, body, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		code, body, err := d.try("GET", "/v1/charges/"+c.ID+"?wait=2s", nil)
		if err != nil || code != 200 {
			return fmt.Errorf("charge %s: %d %s %v", c.ID, code, body, err)
		}
		if err := json.Unmarshal(body, &c); err != nil {
			return err
		}
		switch c.State {
		case "paid":
			return nil
		case "awaiting_scan", "paying":
		default:
			return fmt.Errorf("charge %s: %s", c.ID, c.State)
		}
	}
	return fmt.Errorf("charge %s not paid in time: %s", c.ID, c.State)
}
