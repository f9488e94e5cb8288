package checkout

import (
	"fmt"
	"strings"
	"time"

	"example.com/posd/internal/defect"
	"example.com/posd/internal/money"
	"example.com/posd/payment"
)

// MaxTotalFee bounds one charge (100 million yuan): far above any lane,
// far below where sums of a day's charges could overflow.
const MaxTotalFee = 10_000_000_000

// payable checks, when a charge is opened, everything its pay will need,
// so that a pay is never refused on the box after the customer's code was
// taken. The error names the field.
func (s *Service) payable(l *lane, req OpenRequest) error {
	if defect.On(7) {
		return nil
	}
	if now := time.Now(); now.Year() < 2020 {
		// A box whose clock battery died boots in 1970 or 2000: every pay
		// would carry an impossible time_start.
		return fmt.Errorf("%w: the box's clock says %s: set the time (timedatectl) before taking payments", ErrOutOfService, now.Format(time.DateOnly))
	}
	// The order a scan would make, but for the code and wallet.
	o := money.Order{PayType: "check", AuthCode: "0", TimeStart: time.Now().Unix(),
		DeviceInfo: l.cfg.DeviceInfo, ClientIP: s.opt.ClientIP, TotalFee: max(req.TotalFee, 1),
		Subject: orDefault(req.Subject, l.cfg.Subject), Body: orDefault(req.Body, l.cfg.Body),
		Attach: req.Attach, OpUserID: req.OpUserID, GoodsTag: req.GoodsTag}
	if err := o.CheckPay(s.opt.StoreID); err != nil {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.TrimPrefix(err.Error(), payment.ErrInvalidRequest.Error()+": "))
	}
	return nil
}

// ErrOffline: the gateway cannot be reached; a scan is refused before the
// code is taken, so the customer was not charged and may pay otherwise.
var ErrOffline = fmt.Errorf("%w: offline — not charged (gateway unreachable): take another payment method", ErrOutOfService)
