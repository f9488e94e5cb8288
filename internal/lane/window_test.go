package lane

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/display"
	"example.com/posd/internal/clock"
	"example.com/posd/internal/journal/journaltest"
	"example.com/posd/internal/money"
	"example.com/posd/poller"
	"example.com/posd/scanner"
)

// referenceReuse: a box whose wall clock is off by off from the true
// time (and whose journal observed the true time a minute ago) pays sale
// S-1, then, eight days later (past the seven-day reference window, by
// the wall clock and by the true time alike), the till opens another sale
// that reuses the reference S-1 for the same amount. It returns whether
// that second open made a new charge, and the charge it answered with.
func referenceReuse(t *testing.T, off time.Duration) (created bool, first, second View) {
	return referenceReuseStep(t, off, off)
}

// referenceReuseStep: as referenceReuse, with the wall clock
// off by atStart when posd starts and by off from the first sale on.
func referenceReuseStep(t *testing.T, atStart, off0 time.Duration) (created bool, first, second View) {
	off := atStart
	// synctest's bubble starts in 2000: the true time is 26 years on.
	const era = 26 * 365 * 24 * time.Hour
	wall := func() time.Time { return time.Now().Add(era + off) }
	j := journaltest.Open(t)
	router, err := scanner.NewRouter(scanner.DefaultWallets())
	require.NoError(t, err)
	var s *Service
	p := poller.New(poller.Options{Journal: j, Gateway: payAll{}, OnUpdate: func(o money.Order, st money.Settled) { s.OrderUpdated(o, st) }})
	ctx, stop := context.WithCancel(context.Background())
	go p.Run(ctx)
	defer func() { stop(); p.Wait(time.Second) }()
	s = New(Options{Journal: j, Poller: p, Hub: display.NewHub(), Router: router,
		Lanes: []Config{{ID: "L1", DeviceInfo: "POS01"}}, StoreID: "S001", ClientIP: "127.0.0.1",
		Clock: clock.New(time.Now().Add(era-time.Minute), wall)})
	require.NoError(t, s.Start())
	off = off0

	first, created, err = s.Open(OpenRequest{Lane: "L1", TotalFee: 1000, Subject: "s", Body: "b", Reference: "S-1", IdempotencyKey: "K-1"})
	require.NoError(t, err)
	require.True(t, created)
	require.NoError(t, s.Scan("L1", scanner.Scan{Code: "282941234567890123"}))
	time.Sleep(time.Second)
	synctest.Wait()
	first, err = s.Get(first.Charge.ID)
	require.NoError(t, err)
	require.Equal(t, money.Paid, first.Charge.State)

	time.Sleep(8 * 24 * time.Hour) // past the reference window
	second, created, err = s.Open(OpenRequest{Lane: "L1", TotalFee: 1000, Subject: "s", Body: "b", Reference: "S-1", IdempotencyKey: "K-2"})
	require.NoError(t, err)
	if created {
		_, err = s.Cancel(second.Charge.ID)
		require.NoError(t, err)
	}
	synctest.Wait()
	return created, first, second
}

// Control: with a right wall clock, a reference reused past the window is
// a new sale (a new charge awaiting its scan).
func TestReferenceReusedPastTheWindowIsANewSale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		created, first, second := referenceReuse(t, 0)
		assert.True(t, created)
		assert.NotEqual(t, first.Charge.ID, second.Charge.ID)
	})
}

// The wall clock a year ahead (a technician's typo): the start is a
// clock fault and the observed time goes on from the journal's. A window
// is judged by the clock that dated its records: eight days later a new
// sale reusing S-1 is a new charge, never the old sale's paid one.
func TestAWallClockAheadKeepsNoReferenceBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		created, first, second := referenceReuse(t, 365*24*time.Hour)
		assert.True(t, created, "a new sale 8 days later, past the 7-day window by every clock, was answered with sale S-1's charge %s (%s)",
			second.Charge.ID, second.Charge.State)
		assert.NotEqual(t, first.Charge.ID, second.Charge.ID)
	})
}

// The same with a wall clock right at start that steps a year ahead while
// posd runs.
func TestAStepAheadWhileRunningKeepsNoReferenceBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		created, first, second := referenceReuseStep(t, 0, 365*24*time.Hour)
		assert.True(t, created, "a new sale 8 days later was answered with sale S-1's charge %s (%s)", second.Charge.ID, second.Charge.State)
		assert.NotEqual(t, first.Charge.ID, second.Charge.ID)
	})
}
