package checkout

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"example.com/posd/display"
	"example.com/posd/internal/defect"
	"example.com/posd/internal/failpoint"
	"example.com/posd/internal/journal"
	"example.com/posd/internal/money"
	"example.com/posd/internal/tradeid"
	"example.com/posd/payment"
	"example.com/posd/poller"
	"example.com/posd/scanner"
)

// ErrCodeUsed: the code was submitted before, under another attempt.
var ErrCodeUsed = errors.New("payment code already used")

// Scan takes a code read at a lane. Whatever happens is shown on the lane's
// displays; the returned error says why nothing was sent, if nothing was.
func (s *Service) Scan(laneID string, sc scanner.Scan) error {
	err := s.scan(laneID, sc)
	switch {
	case errors.Is(err, ErrOffline):
		s.log.Warn("scan refused: gateway unreachable, not charged", zap.String("lane", laneID), zap.String("source", sc.Source))
		s.publish(display.Event{Lane: laneID, Kind: display.Offline, Reason: money.OfflineText})
	case err != nil:
		s.log.Info("scan refused", zap.String("lane", laneID), zap.String("source", sc.Source), zap.Error(err))
		s.publish(display.Event{Lane: laneID, Kind: display.Rejected, Reason: err.Error()})
	}
	return err
}

func (s *Service) scan(laneID string, sc scanner.Scan) error {
	now := time.Now()
	code, wallet, err := s.opt.Router.Route(sc.Code)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.lanes[laneID]
	switch {
	case l == nil:
		return fmt.Errorf("%w: lane %q", ErrNotFound, laneID)
	case l.dedup.Seen(code, now):
		return fmt.Errorf("%w: same code scanned twice: ignored", ErrConflict)
	case s.oos != "":
		return fmt.Errorf("%w: %s", ErrOutOfService, s.oos)
	case s.offline != "":
		return ErrOffline
	}
	var c *money.Charge
	if l.open != "" {
		c = s.charges[l.open]
	}
	if c == nil && l.cfg.FixedFee <= 0 {
		return fmt.Errorf("%w: no charge open on lane %s: enter the amount on the till first", ErrConflict, laneID)
	}
	if c != nil && c.State == money.Paying {
		return fmt.Errorf("%w: a payment is in progress on lane %s", ErrConflict, laneID)
	}
	if sc.Scene == "" {
		sc.Scene = scanner.SceneBarCode
	}
	o := money.Order{
		Lane: laneID, DeviceInfo: l.cfg.DeviceInfo, PayType: wallet.PayType, Wallet: wallet.Name,
		Scene: sc.Scene, ClientIP: s.opt.ClientIP, AuthCode: code,
	}
	newCharge := c == nil
	if newCharge {
		c = &money.Charge{
			Lane: laneID, TotalFee: l.cfg.FixedFee, Subject: l.cfg.Subject, Body: l.cfg.Body, Fixed: true,
			CreatedAt: now, ExpiresAt: now.Add(l.cfg.ChargeTTL), AttemptIDs: []string{},
		}
	}
	next := *c
	next.AttemptIDs = append(next.AttemptIDs[:len(next.AttemptIDs):len(next.AttemptIDs)], "")
	next.State, next.Reason, next.UpdatedAt = money.Paying, "", now
	o.ChargeID, o.TotalFee = c.ID, c.TotalFee
	o.Subject, o.Body, o.Attach, o.OpUserID, o.GoodsTag = orDefault(c.Subject, l.cfg.Subject), orDefault(c.Body, l.cfg.Body), c.Attach, c.OpUserID, c.GoodsTag
	o = money.NewOrder(o, now)
	// Checked again before the code is taken: a pay refused on the box
	// must not burn the customer's code.
	if err := o.CheckPay(s.opt.StoreID); err != nil && !defect.On(7) {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}

	if err := s.record(&o, &next, newCharge, l.cfg.DeviceInfo); err != nil {
		s.outOfServiceLocked(err)
		return err
	}
	failpoint.Hit("recorded")
	l.dedup.Add(code, now)
	*c = next
	s.charges[c.ID] = c
	if newCharge {
		l.open = c.ID
	}
	l.current = c.ID
	oc := o
	s.orders[o.MchTradeID] = &oc
	// The pay leaves first; showing and logging it can wait a moment.
	s.opt.Poller.Launch(o)
	s.changedLocked(c.ID)
	s.log.Info("pay", zap.String("lane", laneID), zap.String("mch_trade_id", o.MchTradeID),
		zap.String("pay_type", o.PayType), zap.String("code", o.CodeMasked), zap.Int64("total_fee", o.TotalFee))
	s.publish(display.Event{Lane: laneID, Kind: display.Paying, ChargeID: c.ID, TotalFee: c.TotalFee, Wallet: o.Wallet, MchTradeID: o.MchTradeID})
	return nil
}

// record writes the code's index, the order and its charge in one
// transaction, fsync'd before the pay can leave, naming the order (and a
// new charge) inside it.
func (s *Service) record(o *money.Order, next *money.Charge, newCharge bool, device string) error {
	return s.opt.Journal.Update(func(tx *journal.Tx) error {
		if prev, used := tx.CodeUsedBy(o.CodeSHA256); used {
			return journal.Fail(fmt.Errorf("%w (attempt %s): ask the customer to refresh the code", ErrCodeUsed, prev))
		}
		if !newCharge {
			// The lane's copy is the journal's (every change of a charge
			// passes through the lane), unless a step moved it a moment ago.
			if c, ok, err := tx.Charge(next.ID); err != nil || !ok || c.State != money.AwaitingScan {
				return journal.Fail(fmt.Errorf("%w: charge %s is %s", ErrConflict, next.ID, c.State))
			}
		}
		n, err := tx.NextSeq()
		if err != nil {
			return err
		}
		if newCharge {
			next.ID = newChargeID()
			o.ChargeID = next.ID
		}
		o.MchTradeID = s.tradeID(device, n)
		next.AttemptIDs[len(next.AttemptIDs)-1] = o.MchTradeID
		return tx.RecordAttempt(o, next)
	})
}

func orDefault(v, d string) string {
	if v != "" {
		return v
	}
	return d
}

// tradeID builds a mch_trade_id unique for the merchant forever: the store,
// the lane's device, the journal's random epoch and its counter.
func (s *Service) tradeID(device string, n uint64) string {
	return tradeid.New(s.opt.StoreID, device, s.opt.Journal.Epoch(), n)
}

// OrderUpdated follows an attempt's journaled step, and what it did to its
// charge (journaled with it), into the lane and onto its displays. The
// poller calls it after every step.
func (s *Service) OrderUpdated(o money.Order, st money.Settled) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o.Active() {
		oc := o
		s.orders[o.MchTradeID] = &oc
	} else {
		delete(s.orders, o.MchTradeID)
	}
	if o.Final() && o.NotSent {
		s.forgetCodeLocked(&o)
	}
	if !st.Found {
		s.log.Error("order without its charge", zap.String("mch_trade_id", o.MchTradeID), zap.String("charge", o.ChargeID))
		return
	}
	c := s.adoptLocked(st.Charge)
	defer s.changedLocked(c.ID)
	if !st.Changed {
		return // still paying: the view shows the attempt's progress
	}
	ev := stepEvent(&o, &st)
	if l := s.lanes[c.Lane]; (l == nil || l.current != c.ID) && !defect.On(1) {
		s.lateLocked(c, &o, ev)
		return
	}
	s.publish(ev)
	s.settledLocked(c)
}

// stepEvent is what the lane's displays show of a step that moved its
// charge.
func stepEvent(o *money.Order, st *money.Settled) display.Event {
	c := &st.Charge
	ev := display.Event{Lane: o.Lane, ChargeID: c.ID, TotalFee: o.TotalFee, Wallet: o.Wallet,
		MchTradeID: o.MchTradeID, TradeID: o.TradeID, OutTradeID: o.OutTradeID, Kind: display.KindOf(c.State)}
	switch {
	case o.State == money.Paid || o.State == money.Refunded:
	case o.State == money.Unknown:
		ev.Reason = "outcome not known yet"
	case c.State == money.Canceled && c.Aborting && st.Prev == money.Paying:
		// The till stopped it and it did not complete: the customer is
		// told so.
		ev.Reason = "payment stopped"
	case o.NotSent:
		ev.Kind, ev.Reason = display.Offline, money.OfflineText
	default:
		ev.Kind, ev.Reason = display.Declined, money.DeclineReason(o)
	}
	return ev
}

// adoptLocked takes a charge as the journal committed it into the lane's
// copy, unless the copy is newer, and returns the copy.
func (s *Service) adoptLocked(c money.Charge) *money.Charge {
	mem := s.charges[c.ID]
	if mem == nil {
		return &c
	}
	if c.Version >= mem.Version {
		*mem = c
	}
	return mem
}

// lateLocked: the lane has moved on to another charge (this one needed
// attention and freed it): its customer is gone, and the lane's displays
// belong to the next one. The till hears of it.
func (s *Service) lateLocked(c *money.Charge, o *money.Order, ev display.Event) {
	s.log.Warn("late result of charge "+c.ID, zap.String("lane", c.Lane), zap.String("mch_trade_id", o.MchTradeID),
		zap.String("charge_state", string(c.State)), zap.String("attempt_state", string(o.State)))
	ev.Result, ev.Kind = ev.Kind, display.LateResult
	ev.Reason = "late result of charge " + c.ID + ": " + string(c.State)
	s.publish(ev)
	if s.opt.OnLate != nil {
		s.opt.OnLate(string(c.State))
	}
	if c.State != money.NeedsAttention {
		delete(s.charges, c.ID)
	}
}

// settledLocked moves the lane on after its charge's new state: waiting
// for another code, or free for the next customer.
func (s *Service) settledLocked(c *money.Charge) {
	switch c.State {
	case money.AwaitingScan:
		s.charges[c.ID] = c
		s.publish(display.Event{Lane: c.Lane, Kind: display.AwaitingScan, ChargeID: c.ID, TotalFee: c.TotalFee})
	default:
		s.releaseLocked(c)
		if c.State == money.NeedsAttention {
			s.charges[c.ID] = c
			// The lane is freed for the next customer: this charge's
			// result, when it comes, is late (on a fixed-fee lane the
			// next customer owes the same amount).
			if l := s.lanes[c.Lane]; l != nil && l.current == c.ID {
				l.current = ""
			}
		}
		s.idleLocked(c.Lane)
	}
}

// forgetCodeLocked lets the lane take again the code of a pay that never
// left the box (the journal gave its code back with the step): nothing was
// created with it, so the customer may show it again.
func (s *Service) forgetCodeLocked(o *money.Order) {
	if l := s.lanes[o.Lane]; l != nil {
		l.dedup.Forget(func(code string) bool { return payment.CodeHash(code) == o.CodeSHA256 })
	}
}

// GatewayState is told when the gateway becomes unreachable (up false) or
// reachable again. While it is down a scan is refused at once: nothing is
// sent, nothing is charged.
func (s *Service) GatewayState(up bool, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.offline
	if up {
		s.offline = ""
	} else {
		s.offline = reason
		if s.offline == "" {
			s.offline = "gateway unreachable"
		}
	}
	if (was == "") == (s.offline == "") {
		return
	}
	what := "gateway reachable again: taking payments"
	if !up {
		what = "OFFLINE — " + s.offline + ": scans are refused, not charged; take another payment method"
		s.log.Warn("gateway unreachable: scans refused until it is back", zap.String("reason", s.offline))
	} else {
		s.log.Info("gateway reachable again")
	}
	for _, id := range s.laneIDs() {
		s.publish(display.Event{Lane: id, Kind: display.Device, Reason: what})
	}
}

// Offline reports why the gateway cannot be reached ("" when it can).
func (s *Service) Offline() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.offline
}

// Refund refunds a paid charge in full.
func (s *Service) Refund(id string) (ChargeView, error) {
	s.mu.Lock()
	c, err := s.chargeLocked(id)
	if err != nil {
		s.mu.Unlock()
		return ChargeView{}, err
	}
	if c.State != money.Paid || len(c.AttemptIDs) == 0 {
		s.mu.Unlock()
		return ChargeView{}, fmt.Errorf("%w: charge %s is %s; only a paid charge is refunded", ErrConflict, id, c.State)
	}
	last := c.AttemptIDs[len(c.AttemptIDs)-1]
	s.mu.Unlock()
	o, err := s.opt.Poller.StartRefund(last, time.Now())
	if err != nil {
		if errors.Is(err, poller.ErrBusy) {
			return ChargeView{}, fmt.Errorf("%w: %v", ErrConflict, err)
		}
		return ChargeView{}, fmt.Errorf("%w: %v", ErrConflict, err)
	}
	s.mu.Lock()
	oc := o
	s.orders[o.MchTradeID] = &oc
	s.mu.Unlock()
	return s.Get(id)
}
