package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"example.com/posd/internal/journal"
	"example.com/posd/internal/money"
	"example.com/posd/test/harness"
)

// The journal at the scale of years: a busy lane makes 1,000–2,000
// payments a day, so 180 days of retention is 200,000–400,000 orders. A
// journal of that many final orders and charges, written through the
// journal's own code, must not slow a start down nor fill the box's
// memory: posd reads only its index of unfinished work at start, checks
// the file only after a crash, and prunes in small transactions after it
// is ready. POSD_JOURNAL_ORDERS sets the size (make test: 30,000;
// docs/performance.md: 400,000, `make bench-journal`).
func TestJournalAtScale(t *testing.T) {
	t.Parallel()
	n := 30000
	if v, err := strconv.Atoi(os.Getenv("POSD_JOURNAL_ORDERS")); err == nil && v > 0 {
		n = v
	}
	g := startSandbox(t)
	d := newDaemon(t, g, opts{})
	// Timed as shipped: the suite's posd is a race build, several times
	// slower to start.
	d.bin = plainPosd(t)
	path := filepath.Join(d.dir, "journal.db")

	gen := time.Now()
	pruned := generateJournal(t, path, n)
	genTook := time.Since(gen)
	st, err := os.Stat(path)
	require.NoError(t, err)

	cache := "warm"
	if os.Getenv("POSD_JOURNAL_COLD") == "1" { // as after a reboot (needs root)
		_ = exec.Command("sync").Run()
		if os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0) == nil {
			cache = "cold"
		}
	}
	begin := time.Now()
	d.start()
	ready := time.Since(begin)
	rssStart := rssKB(t, d.cmd.Process.Pid)

	// Pruning runs after the start: posd keeps taking payments meanwhile.
	c := d.openCharge("L1", 100)
	d.scan(harness.AlipayCode(7))
	require.Equal(t, "paid", d.settle(c.ID, 10*time.Second).State)
	rssMax, anonMax := rssStart, int64(0)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(harness.Tail(d.out.String(), 4000))
		}
	})
	harness.WaitFor(t, 3*time.Minute, func() bool {
		rssMax = max(rssMax, rssKB(t, d.cmd.Process.Pid))
		anonMax = max(anonMax, procStatus(d.cmd.Process.Pid, "RssAnon:"))
		return strings.Contains(d.out.String(), "pruned final records past retention")
	}, "pruning done")
	require.Contains(t, d.out.String(), fmt.Sprintf(`"orders":%d`, pruned), "every order past retention pruned")
	code, _ := d.do("GET", "/healthz", nil)
	require.Equal(t, 200, code)
	rssMax = max(rssMax, rssKB(t, d.cmd.Process.Pid))

	// The start's check is bounded: the generator closed the journal
	// cleanly, so the witness vouches for its freelist (a start after a
	// power cut reads the whole file, as before).
	require.Contains(t, d.out.String(), `"how":"bounded`, "the start checked the journal without reading its history")
	checked, readyAt := logTime(t, d.out.String(), "journal checked"), logTime(t, d.out.String(), "posd ready")
	own := readyAt.Sub(checked)
	perOrder := float64(st.Size()) / float64(n)
	t.Logf("journal at scale: %d final orders (%d past retention), %.0f MB, %.0f B per order (generated in %s); READY in %s (%s cache), of which posd's own start after the integrity check %s; resident %d MB at start, %d MB at most while pruning and paying (of which anonymous %d MB)",
		n, pruned, float64(st.Size())/1e6, perOrder, genTook.Round(time.Millisecond), ready.Round(time.Millisecond), cache, own.Round(time.Millisecond), rssStart/1024, rssMax/1024, anonMax/1024)
	require.Less(t, ready, time.Second, "READY within a second, whatever the history")
	require.Less(t, rssMax, int64(64*1024), "resident memory under 64 MB")
}

// generateJournal writes n final (paid) orders with their charges and
// code index entries over the last 200 days, and returns how many are
// older than 180 days.
func generateJournal(t *testing.T, path string, n int) (old int) {
	j, err := journal.Open(path)
	require.NoError(t, err)
	defer j.Close()
	now := time.Now()
	const batch = 5000
	const retention = 180 * 24 * time.Hour
	for i := 0; i < n; i += batch {
		require.NoError(t, j.Update(func(tx *journal.Tx) error {
			for k := i; k < min(i+batch, n); k++ {
				age := 200 * 24 * time.Hour / time.Duration(n) * time.Duration(n-1-k) // oldest first, as a lane writes them
				if d := age - retention; d > -time.Hour && d < time.Hour {
					age = retention - time.Hour // none near the cutoff: the count is exact
				}
				if age > retention {
					old++
				}
				at := now.Add(-age)
				id := fmt.Sprintf("S001_POS01_G%08d", k)
				sum := sha256.Sum256([]byte(id))
				o := money.Order{
					MchTradeID: id, ChargeID: "CHG" + id, Lane: "L1", DeviceInfo: "POS01",
					PayType: "alipay.micro", Wallet: "alipay", Scene: "bar_code", TotalFee: int64(100 + k%5000),
					Subject: "goods", Body: "goods", ClientIP: "127.0.0.1", TimeStart: at.Unix(),
					CodeMasked: "**************1234", CodeSHA256: hex.EncodeToString(sum[:]),
					State: money.Paid, Phase: money.PhaseDone, TradeID: "T" + id, OutTradeID: "W" + id,
					CreatedAt: at, UpdatedAt: at.Add(time.Second), FinishedAt: at.Add(time.Second),
				}
				c := money.Charge{ID: o.ChargeID, Lane: "L1", TotalFee: o.TotalFee, Subject: "goods", Body: "goods",
					State: money.Paid, AttemptIDs: []string{id}, CreatedAt: at, ExpiresAt: at.Add(10 * time.Minute), UpdatedAt: o.FinishedAt}
				if err := tx.RecordAttempt(&o, &c); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	return old
}

// rssKB is a process's resident set (VmRSS) in KiB.
func rssKB(t *testing.T, pid int) int64 { return procStatus(pid, "VmRSS:") }

// procStatus reads a KiB figure of /proc/PID/status.
func procStatus(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == field {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return 0
}

// logTime is the time of posd's first JSON log line with message msg.
func logTime(t *testing.T, out, msg string) time.Time {
	m := regexp.MustCompile(`"ts":([0-9.]+),[^\n]*"msg":"` + regexp.QuoteMeta(msg) + `"`).FindStringSubmatch(out)
	require.NotNil(t, m, "no %q in the log", msg)
	f, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	return time.Unix(0, int64(f*1e9))
}
