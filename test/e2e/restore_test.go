package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/payment/sandbox"
	"example.com/posd/test/harness"
)

// Refunds against journals put back from a backup, and the till's own ids,
// through the real binary against the standalone sandbox. A mch_refund_id
// sent again for a new refund is answered by the gateway as the old one:
// no money moves, yet the refund looks made. So every test here also holds
// that no id was reused (the sandbox lists each reuse) and that what posd
// reports refunded is what the gateway gave back.

// till is one posd as a till and the store's operator use it, with the
// gateway's ledger at hand.
type till struct {
	*posdProc
	g     *gw
	state string // the journal's folder, when it has one of its own
}

func newTill(t *testing.T, g *gw, o opts) *till {
	return &till{posdProc: newDaemon(t, g, o), g: g}
}

// newBox is a till whose journal has a folder of its own, as on a box
// (StateDirectory), and its second witness outside it: a backup copies
// the folder, and the witness is where backups do not look.
func newBox(t *testing.T, g *gw) *till {
	d := newTill(t, g, opts{})
	d.moveJournal(filepath.Join(t.TempDir(), "state"), filepath.Join(t.TempDir(), "journal.witness"))
	return d
}

func (d *till) moveJournal(folder, witness string) {
	require.NoError(d.t, os.MkdirAll(folder, 0o700))
	d.state = folder
	d.setJournal(filepath.Join(folder, "journal.db"), "witness_path: "+witness)
}

// backup stops posd and copies every file of the journal's folder.
func (d *till) backup() map[string][]byte {
	d.kill()
	files := map[string][]byte{}
	entries, err := os.ReadDir(d.state)
	require.NoError(d.t, err)
	for _, e := range entries {
		files[e.Name()], err = os.ReadFile(filepath.Join(d.state, e.Name()))
		require.NoError(d.t, err)
	}
	require.Contains(d.t, files, "journal.db")
	return files
}

// restore stops posd and puts the named files of a backup back; with no
// name, the whole folder as the backup has it.
func (d *till) restore(backup map[string][]byte, names ...string) {
	d.kill()
	if len(names) == 0 {
		require.NoError(d.t, os.RemoveAll(d.state))
		require.NoError(d.t, os.MkdirAll(d.state, 0o700))
		for n := range backup {
			names = append(names, n)
		}
	}
	for _, n := range names {
		require.NoError(d.t, os.WriteFile(filepath.Join(d.state, n), backup[n], 0o600))
	}
}

// chargeMoney is a charge as the till reads its money.
type chargeMoney struct {
	ID          string `json:"id"`
	Lane        string `json:"lane"`
	State       string `json:"state"`
	Reason      string `json:"reason"`
	RefundedFee int64  `json:"refunded_fee"`
	Attempts    []struct {
		MchTradeID string `json:"mch_trade_id"`
		State      string `json:"state"`
		Phase      string `json:"phase"`
	} `json:"attempts"`
}

// order is the mch_trade_id of the charge's last attempt: the paid one.
func (c chargeMoney) order() string { return c.Attempts[len(c.Attempts)-1].MchTradeID }

// settled: posd has nothing more to ask the gateway about the payment.
func (c chargeMoney) settled() bool {
	ph := c.Attempts[len(c.Attempts)-1].Phase
	return ph == "done" || ph == "attention"
}

type refundJSON struct {
	MchRefundID string `json:"mch_refund_id"`
	RefundID    string `json:"refund_id"`
	RefundFee   int64  `json:"refund_fee"`
	State       string `json:"state"`
	ErrMsg      string `json:"err_msg"`
}

func (d *till) money(id string) chargeMoney {
	d.t.Helper()
	code, body := d.do("GET", "/v1/charges/"+id, nil)
	require.Equal(d.t, 200, code, "%s", body)
	var c chargeMoney
	require.NoError(d.t, json.Unmarshal(body, &c))
	return c
}

func (d *till) refunds(id string) []refundJSON {
	d.t.Helper()
	code, body := d.do("GET", "/v1/charges/"+id+"/refunds", nil)
	require.Equal(d.t, 200, code, "%s", body)
	var out struct{ Refunds []refundJSON }
	require.NoError(d.t, json.Unmarshal(body, &out))
	return out.Refunds
}

// post is do with the answer's header.
func (d *till) post(path string, body any, hdr ...string) (int, http.Header, []byte) {
	d.t.Helper()
	b, err := json.Marshal(body)
	require.NoError(d.t, err)
	req, err := http.NewRequest("POST", "http://posd"+path, bytes.NewReader(b))
	require.NoError(d.t, err)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := d.http.Do(req)
	require.NoError(d.t, err)
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	require.NoError(d.t, err)
	return resp.StatusCode, resp.Header, answer
}

// payCharge opens a charge on L1 and pays it.
func (d *till) payCharge(fee int64) chargeMoney {
	d.t.Helper()
	c := d.openCharge("L1", fee)
	d.scan(harness.AlipayCode(7))
	require.Equal(d.t, "paid", d.settle(c.ID, 10*time.Second).State)
	return d.money(c.ID)
}

// resolve is the operator's decision on a charge that needs attention:
// paid, with the refunded total the gateway's back office shows.
func (d *till) resolve(c chargeMoney) {
	d.t.Helper()
	fee := d.g.ledger(d.t).Refunded(c.order())
	var code int
	var body []byte
	harness.WaitFor(d.t, 20*time.Second, func() bool {
		code, body = d.do("POST", "/v1/orders/"+c.order()+"/resolve",
			map[string]any{"decision": "paid", "refunded_fee": fee, "by": "ops", "why": "the gateway's back office"})
		return code != 409 // still being asked about: the operator waits
	}, "the order resolvable")
	require.Equal(d.t, 200, code, "%s", body)
	harness.WaitFor(d.t, 10*time.Second, func() bool { return d.money(c.ID).State != "needs_attention" }, "the charge resolved")
}

// askRefund posts a refund as a till does, again while posd answers 409
// (a step of the order in flight). A charge that needs attention is first
// resolved by the operator.
func (d *till) askRefund(chargeID string, body map[string]any, hdr ...string) (int, http.Header, []byte) {
	d.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, h, answer := d.post("/v1/charges/"+chargeID+"/refunds", body, hdr...)
		if code != 409 || time.Now().After(deadline) {
			return code, h, answer
		}
		if c := d.money(chargeID); c.State == "needs_attention" {
			d.resolve(c)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitRefund waits until the refund is refunded or failed.
func (d *till) waitRefund(chargeID, refundID string) refundJSON {
	d.t.Helper()
	var r refundJSON
	harness.WaitFor(d.t, 20*time.Second, func() bool {
		code, body := d.do("GET", "/v1/charges/"+chargeID+"/refunds/"+refundID, nil)
		r = refundJSON{}
		return code == 200 && json.Unmarshal(body, &r) == nil && (r.State == "refunded" || r.State == "failed")
	}, "refund "+refundID+" final")
	return r
}

// refundOK asks for a refund under the till's refund_id and waits until
// posd reports it refunded.
func (d *till) refundOK(chargeID string, fee int64, refundID string) refundJSON {
	d.t.Helper()
	code, _, body := d.askRefund(chargeID, map[string]any{"refund_fee": fee, "refund_id": refundID})
	require.Equal(d.t, 202, code, "%s", body)
	r := d.waitRefund(chargeID, refundID)
	require.Equal(d.t, "refunded", r.State, "%+v", r)
	return r
}

// settledAfterRestore waits until posd has asked the gateway about the
// charge's payment after a restore; the operator resolves it if it needs
// attention.
func (d *till) settledAfterRestore(id string) chargeMoney {
	d.t.Helper()
	var c chargeMoney
	harness.WaitFor(d.t, 30*time.Second, func() bool { c = d.money(id); return c.settled() }, "the payment asked about after the restore")
	if c.State == "needs_attention" {
		d.resolve(c)
		c = d.money(id)
	}
	return c
}

func (g *gw) backOfficeRefund(t *testing.T, mchTradeID string, fee int64) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"mch_trade_id": mchTradeID, "refund_fee": fee})
	resp, err := http.Post(g.url+"_sandbox/backoffice/refund", "application/json", bytes.NewReader(b))
	require.NoError(t, err)
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	require.Equal(t, 200, resp.StatusCode, "%s", answer)
}

// checkRefunds holds posd's refunds against the gateway's ledger: no
// mch_refund_id sent again for another refund; every refund posd reports
// refunded made at the gateway, for its order and amount, under an id of
// its own; and, with agree, each charge's refunded_fee what the gateway
// gave back of it, unless the charge needs attention.
func checkRefunds(t *testing.T, d *till, agree bool, chargeIDs ...string) {
	t.Helper()
	l := d.g.ledger(t)
	checkLedger(t, l)
	assert.Empty(t, l.RefundIDReuses, "a mch_refund_id sent again for another refund: the gateway answered the first one and moved no money")
	made := map[string]sandbox.Refund{}
	for _, r := range l.Refunds {
		made[r.MchRefundID] = r
	}
	for _, id := range chargeIDs {
		c := d.money(id)
		sent := map[string]string{}
		for _, r := range d.refunds(id) {
			if other, dup := sent[r.MchRefundID]; dup {
				t.Errorf("refunds %s and %s of charge %s both went out as %s", other, r.RefundID, id, r.MchRefundID)
			}
			sent[r.MchRefundID] = r.RefundID
			if r.State != "refunded" {
				continue
			}
			m, ok := made[r.MchRefundID]
			if assert.True(t, ok, "posd reports refund %s (%s) refunded; the gateway has no such refund", r.RefundID, r.MchRefundID) {
				assert.Equal(t, c.order(), m.MchTradeID, "refund %s is of another order at the gateway", r.RefundID)
				assert.Equal(t, r.RefundFee, m.RefundFee, "posd reports refund %s (%s) of %d refunded; the gateway gave back %d under that id",
					r.RefundID, r.MchRefundID, r.RefundFee, m.RefundFee)
			}
		}
		if agree && c.State != "needs_attention" {
			assert.Equal(t, l.Refunded(c.order()), c.RefundedFee, "charge %s (%s): refunded_fee against what the gateway gave back", id, c.State)
		}
	}
}

// backedUp is a box with a payment of 1000 and a backup of its journal's
// folder taken then, running again.
func backedUp(t *testing.T, g *gw) (*till, chargeMoney, map[string][]byte) {
	d := newBox(t, g)
	d.start()
	c := d.payCharge(1000)
	before := d.backup()
	d.start()
	return d, c, before
}

// refundAfterRestore is what follows the restore of a journal from before
// a refund of 400 of 1000: posd knows that refund (or needs attention,
// and the operator resolves it), and a new refund of 300 moves 300.
func refundAfterRestore(t *testing.T, d *till, c chargeMoney) {
	t.Helper()
	got := d.settledAfterRestore(c.ID)
	assert.Equal(t, int64(400), got.RefundedFee,
		"the refund made after the backup is known, or the charge needs attention: the restore was recognised (the charge is %s: %s)", got.State, got.Reason)
	d.refundOK(c.ID, 300, "T-2")
	assert.Equal(t, int64(700), d.g.ledger(t).Refunded(c.order()), "the new refund moved 300 at the gateway")
	checkRefunds(t, d, true, c.ID)
}

// The whole state folder put back from a backup, the journal with the
// witness beside it: the witness outside the folder tells.
func TestRestoredFolderIsRecognised(t *testing.T) {
	t.Parallel()
	d, c, before := backedUp(t, startSandbox(t))
	d.refundOK(c.ID, 400, "T-1")
	d.restore(before)
	d.start()
	refundAfterRestore(t, d, c)
}

// The journal alone from a backup on a new disk, no witness anywhere.
func TestRestoredJournalOnNewDisk(t *testing.T) {
	t.Parallel()
	d, c, before := backedUp(t, startSandbox(t))
	d.refundOK(c.ID, 400, "T-1")
	d.kill()
	d.moveJournal(filepath.Join(t.TempDir(), "state"), filepath.Join(t.TempDir(), "journal.witness"))
	d.restore(before, "journal.db")
	d.start()
	refundAfterRestore(t, d, c)
}

// A gateway that keeps showing trade_state 0 after a refund: asked again,
// the restored order looks untouched. A new refund still must not go out
// under the old refund's id.
func TestRestoreWithGatewayKeepingTradeState0(t *testing.T) {
	t.Parallel()
	d, c, before := backedUp(t, startSandbox(t, "-refund-keeps-trade-state"))
	d.refundOK(c.ID, 400, "T-1")
	// The journal alone put back: its folder's witness recognises it.
	d.restore(before, "journal.db")
	d.start()
	d.settledAfterRestore(c.ID)

	d.refundOK(c.ID, 300, "T-2")
	assert.Equal(t, int64(700), d.g.ledger(t).Refunded(c.order()), "the new refund moved 300 at the gateway")

	// More than the 300 left: refused on the box or by the gateway.
	code, _, body := d.askRefund(c.ID, map[string]any{"refund_fee": 400, "refund_id": "T-3"})
	if code == 202 {
		r := d.waitRefund(c.ID, "T-3")
		assert.Equal(t, "failed", r.State, "%+v", r)
	} else {
		assert.Contains(t, []int{409, 422}, code, "%s", body)
	}
	assert.Equal(t, int64(700), d.g.ledger(t).Refunded(c.order()), "no more than was paid went back")
	checkRefunds(t, d, false, c.ID) // posd cannot know the refund this gateway hides
}

// The till's refund R-A was made, then posd crashed and its journal was
// put back from before it. The till, which never had its answer, asks for
// R-A again (the operator resolving the charge on the way, if posd asks
// for one): the customer is refunded once, and posd counts it once.
func TestTillRetriesRefundAfterRestore(t *testing.T) {
	t.Parallel()
	d, c, before := backedUp(t, startSandbox(t))
	d.refundOK(c.ID, 400, "R-A")
	d.restore(before, "journal.db")
	d.start()

	r := d.refundOK(c.ID, 400, "R-A")
	assert.Equal(t, "R-A", r.RefundID)
	l := d.g.ledger(t)
	var made []sandbox.Refund
	for _, m := range l.Refunds {
		if m.MchTradeID == c.order() {
			made = append(made, m)
		}
	}
	assert.Len(t, made, 1, "one refund at the gateway: %+v", made)
	assert.Equal(t, int64(400), l.Refunded(c.order()), "the customer refunded once")
	checkRefunds(t, d, true, c.ID)
}

// A refund of 300 made in the gateway's back office while the journal was
// away: posd sees trade_state 1 and none of its own refunds. That is not
// a refund of the whole 1000: an operator looks, and the 700 left can
// still be refunded.
func TestBackOfficeRefundNeedsAttention(t *testing.T) {
	t.Parallel()
	d, c, before := backedUp(t, startSandbox(t))
	d.g.backOfficeRefund(t, c.order(), 300)
	d.restore(before, "journal.db")
	d.start()

	var got chargeMoney
	harness.WaitFor(t, 30*time.Second, func() bool { got = d.money(c.ID); return got.settled() }, "the payment asked about after the restore")
	require.Equal(t, "needs_attention", got.State, "not refunded in full: %s", got.Reason)
	assert.Regexp(t, `at least \d+ of 1000`, got.Reason)

	d.resolve(got)
	got = d.money(c.ID)
	assert.Equal(t, "partially_refunded", got.State)
	assert.Equal(t, int64(300), got.RefundedFee)
	d.refundOK(c.ID, 700, "T-1")
	got = d.money(c.ID)
	assert.Equal(t, "refunded", got.State)
	assert.Equal(t, int64(1000), d.g.ledger(t).Refunded(c.order()))
	checkRefunds(t, d, true, c.ID)
}

// A refund made through posd while a reconciliation runs is no
// disagreement: the run began before it, the journal has it.
func TestReconcileSeesRefundMadeDuringRun(t *testing.T) {
	t.Parallel()
	g := startSandbox(t)
	const orders = 12
	d := newTill(t, g, opts{extra: "reconcile:\n  rate: 3\n"}) // four seconds for the run
	d.start()
	var last chargeMoney
	for range orders {
		if c := d.payCharge(100); last.ID == "" || c.order() > last.order() {
			last = c // the reconciliation asks about it last
		}
	}
	today := time.Now().Format(time.DateOnly)
	code, body := d.do("POST", "/v1/reconcile", map[string]string{"date": today})
	require.Equal(t, 202, code, "%s", body)
	queries := func(id string) (n int) {
		for _, o := range g.ledger(t).Orders {
			if id == "" || o.MchTradeID == id {
				n += o.Queries
			}
		}
		return n
	}
	harness.WaitFor(t, 10*time.Second, func() bool { return queries("") > 0 }, "the reconciliation under way")

	d.refundOK(last.ID, 30, "T-1")
	require.Zero(t, queries(last.order()), "the refund landed before the run asked about the order")

	var run struct {
		State         string
		Total         int
		Disagreements []struct {
			MchTradeID string `json:"mch_trade_id"`
			What       string
		}
	}
	harness.WaitFor(t, 20*time.Second, func() bool {
		_, body := d.do("GET", "/v1/reconcile?date="+today, nil)
		return json.Unmarshal(body, &run) == nil && run.State == "done"
	}, "reconciled")
	assert.Equal(t, orders, run.Total)
	assert.Empty(t, run.Disagreements, "a refund of posd's own is no disagreement")
	code, metrics := d.do("GET", "/metrics", nil)
	require.Equal(t, 200, code)
	for _, line := range strings.Split(string(metrics), "\n") {
		if strings.HasPrefix(line, "posd_reconcile_disagreements_total{") {
			assert.True(t, strings.HasSuffix(line, " 0"), "counted as a disagreement: %s", line)
		}
	}
	checkRefunds(t, d, true, last.ID)
}

// A sale whose charge was canceled or expired before any payment opens a
// new charge under the same reference; a reference whose charge is open,
// paying, paid or refunded still names that charge.
func TestCanceledReferenceOpensAgain(t *testing.T) {
	t.Parallel()
	g := startSandbox(t)
	d := newTill(t, g, opts{confirm: queryEvery("1s"), lanes: `
  - id: L1
    device_info: POS01
    scanners: [{type: stdin}]
  - {id: L2, device_info: POS02, charge_ttl: 300ms}
`})
	d.start()
	open := func(lane, ref string) (int, bool, chargeMoney) {
		t.Helper()
		code, h, body := d.post("/v1/charges", map[string]any{"lane": lane, "total_fee": 500, "subject": "s", "body": "b", "reference": ref})
		var c chargeMoney
		require.NoError(t, json.Unmarshal(body, &c), "%s", body)
		return code, h.Get("Idempotent-Replayed") == "true", c
	}
	same := func(c chargeMoney, state string) {
		t.Helper()
		code, replayed, again := open(c.Lane, "SALE-1")
		assert.Equal(t, 201, code)
		assert.True(t, replayed, "a replay while the charge is %s", state)
		assert.Equal(t, c.ID, again.ID, "the same charge while it is %s", state)
	}

	code, replayed, c := open("L1", "SALE-1")
	require.Equal(t, 201, code)
	require.False(t, replayed)
	same(c, "awaiting_scan")
	d.scan(harness.AlipayCode(80)) // paying, paid at the third query
	harness.WaitFor(t, 10*time.Second, func() bool { return d.money(c.ID).State == "paying" }, "paying")
	same(c, "paying")
	require.Equal(t, "paid", d.settle(c.ID, 20*time.Second).State)
	same(c, "paid")
	code, body := d.do("POST", "/v1/charges/"+c.ID+"/refund", nil)
	require.Equal(t, 202, code, "%s", body)
	harness.WaitFor(t, 10*time.Second, func() bool { return d.money(c.ID).State == "refunded" }, "refunded")
	same(c, "refunded")

	for _, tc := range []struct{ lane, how string }{{"L1", "canceled"}, {"L2", "expired"}} {
		ref := "SALE-" + tc.how
		_, _, first := open(tc.lane, ref)
		if tc.how == "canceled" {
			code, body := d.do("DELETE", "/v1/charges/"+first.ID, nil)
			require.Equal(t, 200, code, "%s", body)
		}
		harness.WaitFor(t, 5*time.Second, func() bool { return d.money(first.ID).State == "canceled" }, tc.how)
		code, replayed, again := open(tc.lane, ref)
		assert.Equal(t, 201, code, tc.how)
		assert.False(t, replayed, "a sale %s before any payment opens a new charge", tc.how)
		assert.NotEqual(t, first.ID, again.ID, tc.how)
		assert.Equal(t, "awaiting_scan", again.State, tc.how)
		if again.ID != first.ID {
			d.do("DELETE", "/v1/charges/"+again.ID, nil)
		}
	}
	checkRefunds(t, d, true, c.ID)
}

// Every refund carries the till's id (refund_id, or the Idempotency-Key
// header): a till that asks again, having lost the answer, gets the same
// refund, never a second one.
func TestRefundNeedsTillID(t *testing.T) {
	t.Parallel()
	g := startSandbox(t)
	d := newTill(t, g, opts{})
	d.start()
	c := d.payCharge(1000)

	code, _, body := d.askRefund(c.ID, map[string]any{"refund_fee": 100})
	assert.Equal(t, 422, code, "%s", body)
	assert.Contains(t, string(body), "refund_id")

	code, h, body := d.askRefund(c.ID, map[string]any{"refund_fee": 200}, "Idempotency-Key", "K-1")
	require.Equal(t, 202, code, "%s", body)
	assert.Empty(t, h.Get("Idempotent-Replayed"))
	var first, again refundJSON
	require.NoError(t, json.Unmarshal(body, &first))
	code, h, body = d.askRefund(c.ID, map[string]any{"refund_fee": 200}, "Idempotency-Key", "K-1")
	require.Equal(t, 202, code, "%s", body)
	assert.Equal(t, "true", h.Get("Idempotent-Replayed"))
	require.NoError(t, json.Unmarshal(body, &again))
	assert.Equal(t, first.MchRefundID, again.MchRefundID)
	harness.WaitFor(t, 10*time.Second, func() bool { return d.money(c.ID).RefundedFee > 0 }, "refunded")

	code, _, body = d.askRefund(c.ID, map[string]any{"refund_fee": 100, "refund_id": "R-1"}, "Idempotency-Key", "K-2")
	assert.Equal(t, 422, code, "refund_id and Idempotency-Key disagree: %s", body)

	// The full refund of what is left names no id: asked twice, one refund.
	full := d.payCharge(500)
	for range 2 {
		code, body := d.do("POST", "/v1/charges/"+full.ID+"/refund", nil)
		assert.Contains(t, []int{202, 409}, code, "%s", body)
	}
	harness.WaitFor(t, 10*time.Second, func() bool { return d.money(full.ID).State == "refunded" }, "refunded in full")

	l := g.ledger(t)
	count := map[string]int{}
	for _, r := range l.Refunds {
		count[r.MchTradeID]++
	}
	assert.Equal(t, 1, count[c.order()], "one refund of the first charge: %+v", l.Refunds)
	assert.Equal(t, int64(200), l.Refunded(c.order()))
	assert.Equal(t, 1, count[full.order()], "one refund of the second: %+v", l.Refunds)
	assert.Equal(t, int64(500), l.Refunded(full.order()))
	checkRefunds(t, d, true, c.ID, full.ID)
}
