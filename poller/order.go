package poller

import (
	"time"

	"posd/payment"
)

// State is an attempt's state as the local API shows it.
type State string

const (
	Paying   State = "paying"
	Paid     State = "paid"
	Declined State = "declined"
	Reversed State = "reversed"
	Closed   State = "closed"
	Failed   State = "failed" // nothing was created at the gateway
	Unknown  State = "unknown"
	Refunded State = "refunded"
)

// Phase is where an order is in the confirmation flow: the call it makes next.
type Phase string

const (
	PhasePay       Phase = "pay"
	PhaseQuery     Phase = "query"
	PhaseCheck     Phase = "check" // one query after a refused pay
	PhaseReverse   Phase = "reverse"
	PhaseFallback  Phase = "fallback_query"
	PhaseClose     Phase = "close"
	PhaseRefund    Phase = "refund"
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

	State    State  `json:"state"`
	Phase    Phase  `json:"phase"`
	Queries  int    `json:"queries"`
	Reverses int    `json:"reverses"`
	Tries    int    `json:"tries"`
	Adopt    bool   `json:"adopt,omitempty"`
	RefundID string `json:"refund_id,omitempty"`
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
}

// Final reports whether the order needs no more calls.
func (o *Order) Final() bool { return o.Phase == PhaseDone }

// Unresolved reports whether the order's outcome is not known yet.
func (o *Order) Unresolved() bool { return o.Phase != PhaseDone }

// Active reports whether the poller still drives the order.
func (o *Order) Active() bool { return o.Phase != PhaseDone && o.Phase != PhaseAttention }

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
