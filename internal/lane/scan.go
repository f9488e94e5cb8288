package lane

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
	"example.com/posd/scanner"
)

// Scan takes a code read at a lane. Whatever happens is shown on the lane's
// displays; the returned error says why nothing was sent, if nothing was.
func (s *Service) Scan(laneID string, sc scanner.Scan) error {
	if s.lanes[laneID] == nil {
		return fmt.Errorf("%w: lane %q", ErrNotFound, laneID) // no lane: nothing to show anywhere
	}
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
	now := s.now()
	code, wallet, err := s.opt.Router.Route(sc.Code)
	if err != nil {
		return err
	}
	l := s.lanes[laneID]
	if l == nil {
		return fmt.Errorf("%w: lane %q", ErrNotFound, laneID)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	oos, offline := s.status()
	switch {
	case l.dedup.Seen(code, now):
		return fmt.Errorf("%w: same code scanned twice: ignored", ErrConflict)
	case oos != "":
		return fmt.Errorf("%w: %s", ErrOutOfService, oos)
	case offline != "":
		return ErrOffline
	}
	var c *money.Charge
	if l.open != "" {
		c = l.charges[l.open]
	}
	if c == nil && l.cfg.FixedFee <= 0 {
		return fmt.Errorf("%w: no charge open on lane %s: enter the amount on the till first", ErrConflict, laneID)
	}
	if c != nil && c.State == money.Paying {
		return fmt.Errorf("%w: a payment is in progress on lane %s", ErrConflict, laneID)
	}
	o, next, err := s.attempt(l, c, code, wallet, sc, now)
	if err != nil {
		return err
	}
	newCharge := c == nil
	if err := s.record(&o, &next, newCharge, l.cfg.DeviceInfo); err != nil {
		s.outOfService(err)
		return err
	}
	failpoint.Hit("recorded")
	l.dedup.Add(code, now)
	if newCharge {
		c = &money.Charge{}
		l.open = next.ID
		stopLinesLocked(l)
	}
	*c = next
	l.charges[c.ID] = c
	l.current = c.ID
	oc := o
	l.orders[o.MchTradeID] = &oc
	// The pay leaves first; showing and logging it can wait a moment.
	s.opt.Poller.Launch(o)
	changedLocked(l, c.ID)
	s.log.Info("pay", zap.String("lane", laneID), zap.String("mch_trade_id", o.MchTradeID),
		zap.String("pay_type", o.PayType), zap.String("code", o.CodeMasked), zap.Int64("total_fee", o.TotalFee))
	s.publish(display.Event{Lane: laneID, Kind: display.Paying, ChargeID: c.ID, TotalFee: c.TotalFee, Wallet: o.Wallet, MchTradeID: o.MchTradeID})
	return nil
}

// attempt makes the order a scan sends and the charge as it will be with
// it (a fixed-fee lane's first scan makes the charge), checked before the
// code is taken: a pay refused on the box must not burn the customer's
// code.
func (s *Service) attempt(l *lane, c *money.Charge, code string, wallet scanner.Wallet, sc scanner.Scan, now time.Time) (money.Order, money.Charge, error) {
	if sc.Scene == "" {
		sc.Scene = scanner.SceneBarCode
	}
	o := money.Order{
		Lane: l.cfg.ID, DeviceInfo: l.cfg.DeviceInfo, PayType: wallet.PayType, Wallet: wallet.Name,
		Scene: sc.Scene, ClientIP: s.opt.ClientIP, AuthCode: code,
	}
	if c == nil {
		c = &money.Charge{
			Lane: l.cfg.ID, TotalFee: l.cfg.FixedFee, Subject: l.cfg.Subject, Body: l.cfg.Body, Fixed: true,
			CreatedAt: now, ExpiresAt: now.Add(l.cfg.ChargeTTL), AttemptIDs: []string{},
		}
	}
	next := *c
	next.AttemptIDs = append(next.AttemptIDs[:len(next.AttemptIDs):len(next.AttemptIDs)], "")
	next.State, next.Reason, next.UpdatedAt = money.Paying, "", now
	o.ChargeID, o.TotalFee = c.ID, c.TotalFee
	o.Subject, o.Body, o.Attach, o.OpUserID, o.GoodsTag = orDefault(c.Subject, l.cfg.Subject), orDefault(c.Body, l.cfg.Body), c.Attach, c.OpUserID, c.GoodsTag
	o.Shift = c.Shift
	o = money.NewOrder(o, now)
	if err := o.CheckPay(s.opt.StoreID); err != nil && !defect.On(defect.CodeBurnedAtPay) {
		return o, next, tillField(err)
	}
	return o, next, nil
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
		o.MchTradeID = tradeid.New(s.opt.StoreID, device, s.opt.Journal.Epoch(), n)
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

// payable checks, when a charge is opened, everything its pay will need,
// so that a pay is never refused on the box after the customer's code was
// taken. The error names the field.
func (s *Service) payable(l *lane, req OpenRequest) error {
	if defect.On(defect.CodeBurnedAtPay) {
		return nil
	}
	if now := s.now(); now.Year() < 2020 {
		// A box whose clock battery died boots in 1970 or 2000: every pay
		// would carry an impossible time_start.
		return fmt.Errorf("%w: the box's clock says %s: set the time (timedatectl) before taking payments", ErrOutOfService, now.Format(time.DateOnly))
	}
	// The order a scan would make, but for the code and wallet.
	o := money.Order{PayType: "check", AuthCode: "0", TimeStart: s.now().Unix(),
		DeviceInfo: l.cfg.DeviceInfo, ClientIP: s.opt.ClientIP, TotalFee: max(req.TotalFee, 1),
		Subject: orDefault(req.Subject, l.cfg.Subject), Body: orDefault(req.Body, l.cfg.Body),
		Attach: req.Attach, OpUserID: req.OpUserID, GoodsTag: req.GoodsTag}
	if err := o.CheckPay(s.opt.StoreID); err != nil {
		return tillField(err)
	}
	return nil
}

// tillFields are the pay request's fields a till sends (POST /v1/charges);
// the others come from posd's config.
var tillFields = map[string]bool{"total_fee": true, "subject": true, "body": true, "attach": true, "op_user_id": true, "goods_tag": true}

// tillField turns a pay request refused before it leaves into the till's
// error, naming the field when the till sent it.
func tillField(err error) error {
	var re *payment.RequestError
	if !errors.As(err, &re) {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if tillFields[re.Field] {
		return Invalid(re.Field, "%s", re.Msg)
	}
	return fmt.Errorf("%w: %s (the lane's configuration)", ErrInvalid, re.Msg)
}
