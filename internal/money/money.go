package money

import (
	"time"

	"example.com/posd/payment"
)

// State is the state of an order (one payment attempt) or of a charge (an
// amount a lane asks for), in the words of the local API, the journal, the
// displays and the till's events alike. Which words each record takes is
// written beside each.
type State string

const (
	// Both an order and a charge.
	Paying   State = "paying"
	Paid     State = "paid"
	Refunded State = "refunded"

	// An order only.
	Declined State = "declined"
	Reversed State = "reversed"
	Closed   State = "closed"
	Failed   State = "failed" // nothing was created at the gateway
	Unknown  State = "unknown"

	// A charge only.
	AwaitingScan      State = "awaiting_scan"
	Canceled          State = "canceled"
	NeedsAttention    State = "needs_attention"
	PartiallyRefunded State = "partially_refunded" // paid, part of it given back

	// A refund only (and refunded, failed, unknown).
	Pending State = "pending" // sent, or about to be; its answer awaited
)

// ChargeStates are the states a charge takes, as the API lists them.
var ChargeStates = []State{AwaitingScan, Paying, Paid, PartiallyRefunded, Refunded, Canceled, NeedsAttention}

// Phase is where an order is in the confirmation flow: the call it makes next.
type Phase string

const (
	PhasePay      Phase = "pay"
	PhaseQuery    Phase = "query"
	PhaseCheck    Phase = "check" // one query after a refused pay
	PhaseReverse  Phase = "reverse"
	PhaseFallback Phase = "fallback_query"
	PhaseClose    Phase = "close"
	PhaseRefund   Phase = "refund"
	// PhaseRefundQuery asks refund_query, the judge of a refund, whether a
	// refund whose answer was lost (or is in progress) was carried out.
	PhaseRefundQuery Phase = "refund_query"
	// PhaseVerify asks again after an order a restored journal says was
	// paid: it may have been refunded since the copy was made.
	PhaseVerify    Phase = "verify"
	PhaseConfirm   Phase = "confirm"
	PhaseReconcile Phase = "reconcile"
	PhaseAttention Phase = "attention" // waits for an operator
	PhaseDone      Phase = "done"
)

// Order is one payment attempt: one code, one mch_trade_id, forever.
// It is the journal's record; every change is written before the request
// that depends on it is sent.
type Order struct {
	MchTradeID string `json:"mch_trade_id"`
	ChargeID   string `json:"charge_id"`
	Lane       string `json:"lane"`
	DeviceInfo string `json:"device_info"`
	PayType    string `json:"pay_type"`
	Wallet     string `json:"wallet"`
	Scene      string `json:"scene"`
	TotalFee   int64  `json:"total_fee"`
	Subject    string `json:"subject"`
	Body       string `json:"body"`
	Attach     string `json:"attach,omitempty"`
	OpUserID   string `json:"op_user_id,omitempty"`
	Shift      string `json:"shift,omitempty"`
	GoodsTag   string `json:"goods_tag,omitempty"`
	ClientIP   string `json:"client_ip"`
	TimeStart  int64  `json:"time_start"`

	// AuthCode is the full code, in memory only, for the one pay request.
	// It is never journaled: a freed page of the file would keep it. A pay
	// cut short by a crash is not sent again; it is queried, and at worst
	// the customer shows a new code.
	AuthCode   string `json:"-"`
	CodeMasked string `json:"code_masked"`
	CodeSHA256 string `json:"code_sha256"`

	State    State `json:"state"`
	Phase    Phase `json:"phase"`
	Queries  int   `json:"queries"`
	Reverses int   `json:"reverses"`
	Tries    int   `json:"tries"`
	// The groups embedded here are runs of neighbouring keys: a field's
	// place orders its key in the journal's JSON, whose bytes stay as
	// older posds wrote them. RefundUnknown and RefundBy, of the refund in
	// flight, stay out of RefundProgress, where their keys would move.
	PayFlags
	// RefundUnknown: a refund try got no trusted answer and may have been
	// carried out; only refund_query may say it was not.
	RefundUnknown bool `json:"refund_unknown,omitempty"`
	// Abort: the till stopped the payment; posd reverses it at once
	// instead of waiting out the queries.
	Abort bool `json:"abort,omitempty"`
	RefundProgress
	// Restored: the order came from a journal restored from an older copy;
	// what the gateway did since is asked before it is final again.
	Restored bool `json:"restored,omitempty"`
	// RefundBy is "fallback" (the reverse fallback refunds an order paid
	// too late) or "operator" (a refund asked for through the API).
	RefundBy string `json:"refund_by,omitempty"`

	TradeState int    `json:"trade_state"`
	TradeID    string `json:"trade_id,omitempty"`
	OutTradeID string `json:"out_trade_id,omitempty"`
	ErrMsg     string `json:"err_msg,omitempty"`
	Reason     string `json:"reason,omitempty"`

	NextAt     time.Time `json:"next_at"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// Resolution records an operator's decision on an order that needed attention.
	Resolution string `json:"resolution,omitempty"`
	// Reopened says why a final order was taken back into the flow (a
	// reconciliation found it still open at the gateway).
	Reopened string `json:"reopened,omitempty"`
	// The paid answer's detail: what the customer paid, the discount,
	// the bank, the buyer's account (masked).
	payment.PayDetail
	// Version grows by one with each change the journal records.
	Version uint64 `json:"version,omitempty"`
}

// PayFlags are what posd knows of what its pay left at the gateway: each
// changes how a later answer about the order is read. They are embedded
// in Order without a tag, so the journal's record stays one flat object.
type PayFlags struct {
	// Adopt marks an order of an older posd that took a 107 for its own;
	// such an order is only queried, then left to an operator.
	Adopt bool `json:"adopt,omitempty"`
	// Seen: a trusted (signed) answer showed the order at the gateway, so
	// a later "not found" is a lagging replica, never "nothing was created".
	Seen bool `json:"seen,omitempty"`
	// ReverseSent: posd may have reversed the order; a trade_state 1
	// after that is its own reverse refunding a late payment.
	ReverseSent bool `json:"reverse_sent,omitempty"`
	// NotSent: the pay never left the box (no connection): nothing was
	// created and the code was not used.
	NotSent bool `json:"not_sent,omitempty"`
}

// RefundProgress is where an order's refunds stand: the one in flight,
// what was given back, and what a discovery found at the gateway. It is
// embedded in Order without a tag, so the journal's record stays one flat
// object.
type RefundProgress struct {
	// RefundSends counts refund requests sent with RefundID;
	// RefundMissing the refund_query answers that did not know it.
	RefundSends   int    `json:"refund_sends,omitempty"`
	RefundMissing int    `json:"refund_missing,omitempty"`
	RefundID      string `json:"refund_id,omitempty"` // the mch_refund_id of the refund in flight, or of the last one
	// RefundFee is the refund in flight's amount (0: the whole order, as
	// a journal of an older posd has it); RefundedFee what the gateway
	// confirmed given back so far; RefundResult how the last one ended
	// (refunded or failed).
	RefundFee    int64 `json:"refund_fee,omitempty"`
	RefundedFee  int64 `json:"refunded_fee,omitempty"`
	RefundResult State `json:"refund_result,omitempty"`
	// RefundedElsewhere is what an operator's resolution counted as
	// refunded beyond the refunds posd knew of.
	RefundedElsewhere int64 `json:"refunded_elsewhere,omitempty"`
	// Refunds are the mch_refund_id of every refund posd asked for the
	// order or found at the gateway; RefundSeq how many an older posd
	// numbered (<mch_trade_id>R<n>) before refund ids followed the till's.
	Refunds   []string `json:"refunds,omitempty"`
	RefundSeq int      `json:"refund_seq,omitempty"`
	// RefundCheck: the refund in flight was not sent yet; its own id is
	// asked first (a restored journal may not know it was made).
	RefundCheck bool `json:"refund_check,omitempty"`
	// RefundFound: that first question found the refund made already.
	RefundFound bool `json:"refund_found,omitempty"`
	// A discovery asks refund_query for each of the order's known refund
	// ids (poller: the gateway shows a refund, or the journal is a
	// restored copy): RefundAsk is the next to ask, RefundsFound how many
	// were found, FoundFee what they add up to.
	RefundAsk    int   `json:"refund_ask,omitempty"`
	RefundsFound int   `json:"refunds_found,omitempty"`
	FoundFee     int64 `json:"found_fee,omitempty"`
}

// Final reports whether the order needs no more calls.
func (o *Order) Final() bool { return o.Phase == PhaseDone }

// Unresolved reports whether the order's outcome is not known yet.
func (o *Order) Unresolved() bool { return o.Phase != PhaseDone }

// NeedsAttention reports whether the confirmation flow ended without a
// final answer: the reconciler keeps asking and an operator may resolve it.
func (o *Order) NeedsAttention() bool {
	return o.State == Unknown && (o.Phase == PhaseReconcile || o.Phase == PhaseAttention)
}

// Active reports whether the poller still drives the order.
func (o *Order) Active() bool { return o.Phase != PhaseDone && o.Phase != PhaseAttention }

// PayRequest is the pay this order sends: one place, so that what the box
// checks before it takes a code is what the gateway gets.
func (o *Order) PayRequest(storeID string) *payment.PayRequest {
	return &payment.PayRequest{
		MchTradeID: o.MchTradeID, PayType: o.PayType, DeviceInfo: o.DeviceInfo,
		Subject: o.Subject, Body: o.Body, Attach: o.Attach, TotalFee: o.TotalFee,
		SpbillCreateIP: o.ClientIP, AuthCode: o.AuthCode, TimeStart: o.TimeStart,
		OpUserID: o.OpUserID, OpDeviceID: o.DeviceInfo, StoreID: storeID, GoodsTag: o.GoodsTag, Scene: o.Scene,
	}
}

// CheckPay checks the pay an order not yet numbered will send: whatever the
// gateway would refuse on the box is refused before the code is taken.
func (o *Order) CheckPay(storeID string) error {
	pr := o.PayRequest(storeID)
	pr.MchTradeID = "CHECK_ONLY" // numbered in the transaction that records it
	return pr.Validate()
}

// NewOrder starts an attempt in the pay phase.
func NewOrder(o Order, now time.Time) Order {
	o.State, o.Phase = Paying, PhasePay
	o.TradeState = payment.NoTradeState
	o.CodeMasked = payment.MaskCode(o.AuthCode)
	o.CodeSHA256 = payment.CodeHash(o.AuthCode)
	o.CreatedAt, o.UpdatedAt, o.NextAt = now, now, now
	if o.TimeStart == 0 {
		o.TimeStart = now.Unix()
	}
	return o
}

// Call is the gateway call an order's phase makes next.
func (o *Order) Call() payment.Call {
	switch o.Phase {
	case PhasePay:
		return payment.CallPay
	case PhaseReverse:
		return payment.CallReverse
	case PhaseClose:
		return payment.CallClose
	case PhaseRefund:
		return payment.CallRefund
	case PhaseRefundQuery:
		return payment.CallRefundQuery
	case PhaseDone, PhaseAttention:
		return ""
	}
	return payment.CallQuery
}

// Charge is an amount a lane asks for, paid by at most one attempt.
type Charge struct {
	ID       string `json:"id"`
	Lane     string `json:"lane"`
	TotalFee int64  `json:"total_fee"`
	Subject  string `json:"subject,omitempty"`
	Body     string `json:"body,omitempty"`
	Attach   string `json:"attach,omitempty"`
	OpUserID string `json:"op_user_id,omitempty"`
	Shift    string `json:"shift,omitempty"`
	// Reference is the till's own sale id: one open charge per reference
	// and lane within charges.reference_window.
	Reference      string   `json:"reference,omitempty"`
	GoodsTag       string   `json:"goods_tag,omitempty"`
	State          State    `json:"state"`
	Reason         string   `json:"reason,omitempty"`
	AttemptIDs     []string `json:"attempt_ids"`
	IdempotencyKey string   `json:"idempotency_key,omitempty"`
	Fixed          bool     `json:"fixed,omitempty"`
	// Aborting: the till stopped the payment while it was paying; the
	// charge ends canceled, or paid if the payment completed first.
	Aborting bool `json:"aborting,omitempty"`
	// RefundedFee is what was given back of the paid amount (confirmed
	// by the gateway); Refunds the mch_refund_id of each refund asked.
	RefundedFee int64     `json:"refunded_fee"`
	Refunds     []string  `json:"refunds,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Version grows by one with each change the journal records: a till
	// that saw version n knows whether the charge moved on since.
	Version uint64 `json:"version"`
}

// open reports whether the charge holds its lane.
func (c *Charge) Open() bool { return c.State == AwaitingScan || c.State == Paying }

// OfflineText is what every display says when a pay could not leave.
const OfflineText = "网络中断，未扣款，请换其他方式付款 / gateway unreachable — not charged, take another payment method"

// Settle moves a charge to follow a journaled step of one of its
// attempts, as of now. It is the one rule by which an order moves its
// charge; the journal applies it in the transaction that saves the step,
// so an order and its charge never disagree, even across a crash. It
// reports whether the charge's state changed; applied again to its own
// result it changes nothing.
func Settle(c *Charge, o *Order, now time.Time) bool {
	state, reason, refunded := c.State, c.Reason, c.RefundedFee
	switch {
	case o.State == Paid:
		state, reason, refunded = Paid, "", o.RefundedFee
		if o.RefundedFee > 0 {
			state = PartiallyRefunded
		}
	case o.State == Refunded:
		state, reason, refunded = Refunded, "", o.TotalFee
	case o.State == Unknown:
		state, reason = NeedsAttention, "payment outcome unknown: "+o.Reason
	case o.Final() && (c.State == Paid || c.State == PartiallyRefunded):
		// Asked again (a restored journal's paid order), the gateway says
		// it was not paid after all (closed, reversed): neither is the
		// charge.
		state, reason = Canceled, "not paid after all: "+DeclineReason(o)
	case o.Final() && c.Aborting && c.State == Paying:
		// The till stopped it and it did not complete.
		state, reason = Canceled, "payment stopped by the till: "+string(o.State)
	case o.Final():
		why := DeclineReason(o)
		if o.NotSent {
			why = OfflineText
		}
		switch {
		case c.State == Paying && now.Before(c.ExpiresAt):
			state, reason = AwaitingScan, "last attempt "+string(o.State)+": "+why
			if o.NotSent {
				reason = "last attempt failed: " + why
			}
		case c.State == Paying || c.State == NeedsAttention && !o.NotSent:
			state, reason = Canceled, "not paid: "+why
		}
	}
	if state == c.State && refunded == c.RefundedFee {
		return false // nothing new for the charge (a replay, a reconciling step)
	}
	c.State, c.Reason, c.RefundedFee, c.UpdatedAt = state, reason, refunded, now
	return true
}

// DeclineReason says why an attempt that ended did not pay.
func DeclineReason(o *Order) string {
	switch {
	case o.ErrMsg != "":
		return o.ErrMsg
	case o.State == Failed:
		return "the gateway did not take the payment"
	}
	return string(o.State)
}

// Settled is what one journaled step of an order did to its charge (and
// to the refund in flight, if any).
type Settled struct {
	Charge  Charge // the charge as committed with the step
	Prev    State  // its state before the step
	Found   bool   // false: the order names no charge the journal holds
	Changed bool
	Refund  *Refund // the refund the step is about, as committed
	// RefundDone: the step ended the refund (refunded or failed).
	RefundDone bool
}

// Refund is an amount given back of a paid order: one mch_refund_id,
// forever. The order drives it (its refund phases); the journal moves the
// refund with each step of its order (SettleRefund).
type Refund struct {
	MchRefundID string `json:"mch_refund_id"` // posd's, unique for the merchant forever
	RefundID    string `json:"refund_id"`     // the till's, which makes the request idempotent
	ChargeID    string `json:"charge_id"`
	MchTradeID  string `json:"mch_trade_id"`
	Lane        string `json:"lane"`
	RefundFee   int64  `json:"refund_fee"`
	Reason      string `json:"reason,omitempty"`
	OpUserID    string `json:"op_user_id,omitempty"`
	Shift       string `json:"shift,omitempty"`
	// State: pending, refunded, failed, or unknown (no trusted answer
	// yet: posd keeps asking refund_query).
	State      State     `json:"state"`
	ErrMsg     string    `json:"err_msg,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	Version    uint64    `json:"version"`
}

// SettleRefund moves a refund to follow a journaled step of its order. It
// reports whether the refund changed, and whether the step ended it.
func SettleRefund(r *Refund, o *Order, now time.Time) (changed, done bool) {
	if o.RefundID != r.MchRefundID || o.RefundBy == "discover" {
		return false, false // another refund, or a discovery asking what was made
	}
	state, msg := r.State, r.ErrMsg
	switch {
	case o.Phase == PhaseRefund || o.Phase == PhaseRefundQuery:
		state = Pending
		if o.RefundUnknown {
			state = Unknown
		}
	case o.RefundResult == Refunded || o.State == Refunded:
		state = Refunded
		if o.RefundFee > 0 && o.RefundFee != r.RefundFee {
			// The gateway's word on what this refund gave back.
			r.RefundFee, msg = o.RefundFee, o.ErrMsg
		}
	case o.RefundResult == Failed:
		state, msg = Failed, o.ErrMsg
	}
	if state == r.State && msg == r.ErrMsg {
		return false, false
	}
	r.State, r.ErrMsg, r.UpdatedAt = state, msg, now
	if state == Refunded || state == Failed {
		r.FinishedAt = now
		done = true
	}
	return true, done
}

// Total adds up orders of one wallet in one state.
type Total struct {
	Wallet string
	State  State
	Count  int
	Fee    int64 // fen
}

// WalletTotals are a wallet's figures for a period: payments made (what
// was paid, whatever went back since), what of them was refunded, and the
// net the merchant keeps.
type WalletTotals struct {
	Wallet        string `json:"wallet"`
	PaidCount     int    `json:"paid_count"`
	PaidFee       int64  `json:"paid_fee"`
	RefundedCount int    `json:"refunded_count"` // refunds (money given back that no refund of posd's holds counts as one)
	RefundedFee   int64  `json:"refunded_fee"`
	NetFee        int64  `json:"net_fee"`
	CouponFee     int64  `json:"coupon_fee"` // the wallets' discounts in what was paid
}

// TotalsFilter narrows totals to a lane, a cashier or a shift ("": all).
type TotalsFilter struct {
	Lane, OpUserID, Shift string
}

// Selects reports whether f takes what was done at a lane by a cashier in
// a shift (as named in by).
func (f TotalsFilter) Selects(by TotalsFilter) bool {
	return (f.Lane == "" || by.Lane == f.Lane) && (f.OpUserID == "" || by.OpUserID == f.OpUserID) && (f.Shift == "" || by.Shift == f.Shift)
}

// WasPaid reports whether the order's payment happened (some of it may
// have been given back since).
func (o *Order) WasPaid() bool { return o.State == Paid || o.State == Refunded }

// Refunded is what was given back of a paid order.
func (o *Order) Refunded() int64 {
	if o.State == Refunded {
		return o.TotalFee
	}
	return o.RefundedFee
}

// AddPayment counts a paid order into the totals.
func (t *WalletTotals) AddPayment(o *Order) {
	t.PaidCount++
	t.PaidFee += o.TotalFee
	t.CouponFee += o.CouponFee
	t.NetFee = t.PaidFee - t.RefundedFee
}

// AddRefund counts money given back into the totals.
func (t *WalletTotals) AddRefund(fee int64) {
	t.RefundedCount++
	t.RefundedFee += fee
	t.NetFee = t.PaidFee - t.RefundedFee
}

// ReconcileRun is a reconciliation of a day's orders against the gateway:
// each order queried, every disagreement listed, nothing changed.
type ReconcileRun struct {
	Date          string         `json:"date"`
	State         string         `json:"state"`            // running, done, stopped (posd stopped: it resumes at start), interrupted
	Reason        string         `json:"reason,omitempty"` // why it is interrupted
	Total         int            `json:"total"`
	Checked       int            `json:"checked"`
	Agreed        int            `json:"agreed"`
	InProgress    int            `json:"in_progress"` // not final in the journal: the poller drives them
	Unanswered    int            `json:"unanswered"`  // no trusted answer: asked again at the next run
	Next          string         `json:"next,omitempty"`
	Disagreements []Disagreement `json:"disagreements"`
	StartedAt     time.Time      `json:"started_at"`
	UpdatedAt     time.Time      `json:"updated_at"`
	FinishedAt    time.Time      `json:"finished_at,omitzero"`
}

// Disagreement is an order the journal and the gateway see differently.
type Disagreement struct {
	MchTradeID   string `json:"mch_trade_id"`
	ChargeID     string `json:"charge_id"`
	Lane         string `json:"lane"`
	TotalFee     int64  `json:"total_fee"`
	JournalState State  `json:"journal_state"`
	GatewayState string `json:"gateway_state"`
	What         string `json:"what"`
	// Action is what posd does about it ("": nothing; it is listed).
	Action string `json:"action,omitempty"`
}
