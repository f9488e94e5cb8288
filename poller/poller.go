package poller

import (
	"container/heap"
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"example.com/posd/internal/failpoint"
	"example.com/posd/internal/journal"
	"example.com/posd/internal/money"
	"example.com/posd/payment"
)

// Gateway is the part of payment.Client the poller drives.
type Gateway interface {
	Pay(ctx context.Context, r *payment.PayRequest) payment.Result
	Query(ctx context.Context, ref payment.OrderRef, totalFee int64) payment.Result
	Reverse(ctx context.Context, ref payment.OrderRef) payment.Result
	Close(ctx context.Context, ref payment.OrderRef) payment.Result
	Refund(ctx context.Context, r *payment.RefundRequest) payment.Result
	RefundQuery(ctx context.Context, r *payment.RefundQueryRequest) payment.Result
}

// Options configure a Poller.
type Options struct {
	Gateway Gateway
	Journal *journal.Journal
	Policy  Policy
	Log     *zap.Logger
	// OnUpdate is called after every journaled change of an order, with
	// what the change did to its charge (journaled with it), from the
	// poller's goroutines; it must not block for long.
	OnUpdate func(money.Order, money.Settled)
	// OnJournalError is called when a step cannot be journaled (the order
	// waits and is retried); nil error when writes work again.
	OnJournalError func(error)
	// OnCall, if set, is told of every gateway call and its outcome.
	OnCall func(call payment.Call, r payment.Result)
	// OnStep, if set, is told of every step of the state machine (Step's
	// order, answer and result), before the result is journaled: the
	// simulation counts the transitions it reached (TransitionOf).
	OnStep func(before money.Order, r payment.Result, after money.Order)
	// OnDispatch, if set, is told how late each scheduled call starts
	// (for the 10,000-order benchmark and the metrics).
	OnDispatch func(late time.Duration)
	// Workers bounds the gateway calls in flight at once.
	Workers int
	// StoreID and ClientIP fill the pay request.
	StoreID  string
	ClientIP string
}

// Poller drives every unfinished order to a final state. An order is owned
// by exactly one goroutine at a time: the scheduler or one step.
type Poller struct {
	opt Options
	log *zap.Logger

	mu     sync.Mutex
	queue  schedule
	active map[string]bool // ids in the queue or in a step
	aborts map[string]bool // aborts asked for while a step had the order
	wake   chan struct{}
	sem    chan struct{} // gateway calls in flight
	inStep chan struct{} // steps in flight, journal writes included: bounds goroutines and memory
	steps  sync.WaitGroup
	// calls carries every gateway call; it ends only when Wait's bound
	// runs out, so that a shutdown lets calls in flight finish.
	calls       context.Context
	cancelCalls context.CancelFunc
}

// New returns a poller; Run starts it.
func New(opt Options) *Poller {
	if opt.Workers <= 0 {
		opt.Workers = 64
	}
	if opt.Log == nil {
		opt.Log = zap.NewNop()
	}
	if opt.OnUpdate == nil {
		opt.OnUpdate = func(money.Order, money.Settled) {}
	}
	if opt.OnJournalError == nil {
		opt.OnJournalError = func(error) {}
	}
	calls, cancel := context.WithCancel(context.Background())
	return &Poller{
		calls:       calls,
		cancelCalls: cancel,
		opt:         opt,
		log:         opt.Log,
		active:      map[string]bool{},
		aborts:      map[string]bool{},
		wake:        make(chan struct{}, 1),
		sem:         make(chan struct{}, opt.Workers),
		inStep:      make(chan struct{}, opt.Workers*8),
	}
}

// Resume loads every order the journal holds as unfinished and schedules
// it. Call it once, before Run.
func (p *Poller) Resume(now time.Time) (int, error) {
	var live, verify []money.Order
	restored := p.opt.Journal.Restored()
	err := p.opt.Journal.View(func(tx *journal.Tx) error {
		each := tx.EachLiveOrder // the unfinished orders only, from the journal's index
		if restored {
			each = tx.EachOrder // every paid order is asked again
		}
		return each(func(o money.Order) error {
			o.Restored = o.Restored || restored
			switch {
			case o.Active():
				live = append(live, o)
			case restored && o.State == money.Paid:
				// An older copy of the journal: what it says was paid may
				// have been refunded since. Ask before anyone relies on it.
				o.Phase, o.Tries, o.NextAt = money.PhaseVerify, 0, now
				verify = append(verify, o)
			}
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	if restored {
		p.log.Warn("JOURNAL RESTORED from an older copy: every order it says was paid is asked at the gateway again", zap.Int("orders", len(verify)))
	}
	for _, o := range verify {
		if _, err := p.save(&o); err != nil {
			return 0, err
		}
		p.enqueue(o)
	}

	for _, o := range live {
		if o.Phase == money.PhaseRefund {
			// The refund may have left before the restart: only
			// refund_query may say it did not.
			o.RefundUnknown, o.Phase, o.Tries = true, money.PhaseRefundQuery, 0
			if _, err := p.save(&o); err != nil {
				return 0, err
			}
		}
		if o.Phase == money.PhasePay {
			// Whether the pay left before the restart is unknown, and the
			// code was not kept: find out by querying.
			o = p.stepMachine(o, payment.Result{Outcome: payment.Unknown, TradeState: payment.NoTradeState,
				Reason: "restart: pay outcome not recorded"}, now)
			if _, err := p.save(&o); err != nil {
				return 0, err
			}
		}
		if restored && o.Phase == money.PhaseRefundQuery && o.RefundBy == "discover" {
			// A discovery the copy was making judges by a trade_state of
			// then: the order is asked again first.
			o.Phase, o.Tries, o.NextAt = money.PhaseVerify, 0, now
		}
		if restored {
			if _, err := p.save(&o); err != nil { // marked Restored, should posd stop again before its next step
				return 0, err
			}
		}
		if o.NextAt.After(now.Add(p.opt.Policy.longestWait())) {
			// Further off than the machine ever waits: scheduled under a
			// wall clock that ran ahead (a year, and the order would wait a
			// year). Asked after the first reconciling wait instead, which a
			// lagging replica's 301 must outlast anyway.
			o.NextAt = now.Add(p.opt.Policy.ReconcileInterval)
		}
		p.log.Info("resume order", zap.String("mch_trade_id", o.MchTradeID), zap.String("phase", string(o.Phase)))
		p.enqueue(o)
	}
	if restored {
		// Every order is marked Restored in the journal: the next start
		// need not find the copy again.
		if err := p.opt.Journal.Verified(); err != nil {
			return 0, err
		}
	}
	return len(live), nil
}

// Launch sends the pay of an order already journaled in its pay phase, at
// once and outside the schedule: the scan's latency is the pay's.
func (p *Poller) Launch(o money.Order) {
	p.mu.Lock()
	p.active[o.MchTradeID] = true
	p.steps.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.steps.Done()
		p.step(o, func() {})
	}()
}

// Run dispatches due orders until ctx ends. It returns once no new step
// will start; Wait lets those in flight finish.
func (p *Poller) Run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		p.mu.Lock()
		var due []money.Order
		now := time.Now()
		for p.queue.Len() > 0 && !p.queue[0].NextAt.After(now) {
			due = append(due, heap.Pop(&p.queue).(money.Order))
		}
		wait := time.Hour
		if p.queue.Len() > 0 {
			wait = p.queue[0].NextAt.Sub(now)
		}
		p.mu.Unlock()

		for _, o := range due {
			select {
			case p.inStep <- struct{}{}:
			case <-ctx.Done():
				return // undispatched orders resume from the journal
			}
			select {
			case p.sem <- struct{}{}:
			case <-ctx.Done():
				<-p.inStep
				return
			}
			if p.opt.OnDispatch != nil {
				p.opt.OnDispatch(time.Since(o.NextAt))
			}
			p.steps.Add(1)
			go func(o money.Order) {
				defer func() { <-p.inStep; p.steps.Done() }()
				p.step(o, func() { <-p.sem })
			}(o)
		}
		if len(due) > 0 {
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-timer.C:
		}
	}
}

// Wait lets the steps in flight finish, up to timeout; then it cuts their
// calls short. What is left resumes from the journal at the next start.
func (p *Poller) Wait(timeout time.Duration) bool {
	done := make(chan struct{})
	go func() { p.steps.Wait(); close(done) }()
	defer p.cancelCalls()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		p.cancelCalls()
		<-done
		return false
	}
}

// Pending is the number of orders the poller drives.
func (p *Poller) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.active)
}

func (p *Poller) enqueue(o money.Order) {
	p.mu.Lock()
	p.active[o.MchTradeID] = true
	heap.Push(&p.queue, o)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// step makes the order's next call, journals the outcome, and schedules
// what follows. release frees the call's slot once the gateway answered:
// journal writes are group-committed and must not hold calls back.
func (p *Poller) step(o money.Order, release func()) {
	ctx := p.calls
	call := o.Call()
	r := p.call(ctx, &o)
	release()
	if ctx.Err() != nil && (r.Outcome == payment.Unknown || r.Outcome == payment.NotSent) {
		// Shutting down: the call was cut short. The journal still holds
		// the order before this call; it is made again at the next start.
		p.done(o.MchTradeID)
		return
	}
	if p.opt.OnCall != nil {
		p.opt.OnCall(call, r)
	}
	failpoint.Hit(string(call) + "-answered")
	next := p.stepMachine(o, r, time.Now())
	p.mu.Lock()
	if p.aborts[o.MchTradeID] && next.Active() {
		next = abort(next, time.Now())
	}
	delete(p.aborts, o.MchTradeID)
	p.mu.Unlock()
	logStep(p.log, &o, &next, call, &r)
	var settled money.Settled
	for {
		var err error
		settled, err = p.save(&next)
		if err == nil {
			break
		}
		p.log.Error("journal write failed; order waits", zap.String("mch_trade_id", o.MchTradeID), zap.Error(err))
		p.opt.OnJournalError(err)
		select {
		case <-ctx.Done():
			p.done(o.MchTradeID)
			return
		case <-time.After(time.Second):
		}
	}
	failpoint.Hit(string(next.Phase) + "-journaled")
	if next.Active() {
		// Heard of before it is rescheduled, so that updates of one order
		// arrive in order.
		p.opt.OnUpdate(next, settled)
		p.requeue(next)
		// An abort that came after this step looked: apply it now.
		p.mu.Lock()
		late := p.aborts[o.MchTradeID]
		delete(p.aborts, o.MchTradeID)
		p.mu.Unlock()
		if late {
			_ = p.Abort(o.MchTradeID, time.Now())
		}
		return
	}
	// A final order is released before anyone hears of it: a till that
	// refunds the moment it sees "paid" must not meet "busy".
	p.done(o.MchTradeID)
	p.opt.OnUpdate(next, settled)
}

// stepMachine is Step with the poller's policy, told to OnStep.
func (p *Poller) stepMachine(o money.Order, r payment.Result, now time.Time) money.Order {
	next := Step(o, r, now, p.opt.Policy)
	if p.opt.OnStep != nil {
		p.opt.OnStep(o, r, next)
	}
	return next
}

func (p *Poller) requeue(o money.Order) {
	p.mu.Lock()
	heap.Push(&p.queue, o)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *Poller) done(id string) {
	p.mu.Lock()
	delete(p.active, id)
	p.mu.Unlock()
}

// save journals an order's step with its charge, one transaction (a group
// commit), and gives the order its new version.
func (p *Poller) save(o *money.Order) (money.Settled, error) {
	var st money.Settled
	saved := *o
	err := p.opt.Journal.Batch(func(tx *journal.Tx) error {
		saved = *o // a batch may run its function again
		var err error
		st, err = tx.SaveStep(&saved, time.Now())
		return err
	})
	if err == nil {
		*o = saved
	}
	return st, err
}

func (p *Poller) call(ctx context.Context, o *money.Order) payment.Result {
	gw := p.opt.Gateway
	ref := payment.OrderRef{MchTradeID: o.MchTradeID}
	switch o.Phase {
	case money.PhasePay:
		return gw.Pay(ctx, o.PayRequest(p.opt.StoreID))
	case money.PhaseReverse:
		return gw.Reverse(ctx, ref)
	case money.PhaseClose:
		return gw.Close(ctx, ref)
	case money.PhaseRefund:
		return gw.Refund(ctx, &payment.RefundRequest{OrderRef: ref, MchRefundID: o.RefundID, RefundFee: RefundFeeOf(o)})
	case money.PhaseRefundQuery:
		return gw.RefundQuery(ctx, &payment.RefundQueryRequest{MchRefundID: o.RefundID})
	}
	fee := o.TotalFee
	if o.Adopt {
		fee = 0 // compared by the state machine, which can tell ours from another's
	}
	return gw.Query(ctx, ref, fee)
}

func logStep(log *zap.Logger, before, after *money.Order, call payment.Call, r *payment.Result) {
	fields := []zap.Field{
		zap.String("mch_trade_id", after.MchTradeID),
		zap.String("call", string(call)),
		zap.String("outcome", r.Outcome.String()),
		zap.String("phase", string(after.Phase)),
		zap.String("state", string(after.State)),
	}
	if r.Reason != "" {
		fields = append(fields, zap.String("reason", r.Reason))
	}
	if r.TradeState != payment.NoTradeState {
		fields = append(fields, zap.Int("trade_state", r.TradeState))
	}
	if after.Final() || before.State != after.State {
		log.Info("order step", fields...)
		return
	}
	log.Debug("order step", fields...)
}

// schedule is a min-heap of orders by NextAt.
type schedule []money.Order

func (s schedule) Len() int           { return len(s) }
func (s schedule) Less(i, j int) bool { return s[i].NextAt.Before(s[j].NextAt) }
func (s schedule) Swap(i, j int)      { s[i], s[j] = s[j], s[i] }
func (s *schedule) Push(x any)        { *s = append(*s, x.(money.Order)) }
func (s *schedule) Pop() any {
	old := *s
	o := old[len(old)-1]
	old[len(old)-1] = money.Order{}
	*s = old[:len(old)-1]
	return o
}
