package api

import (
	"time"

	"example.com/posd/internal/lane"
	"example.com/posd/internal/money"
	"example.com/posd/payment"
)

// The API's request and response types: the JSON a till sends and reads,
// made from the lane's and the journal's records at the edge.

// openRequest is POST /v1/charges.
type openRequest struct {
	Lane      string `json:"lane"`
	TotalFee  int64  `json:"total_fee"`
	Subject   string `json:"subject"`
	Body      string `json:"body"`
	Attach    string `json:"attach"`
	OpUserID  string `json:"op_user_id"`
	Shift     string `json:"shift"`
	GoodsTag  string `json:"goods_tag"`
	Reference string `json:"reference"`
}

// Attempt is an order as the local API shows it: the code masked.
type Attempt struct {
	MchTradeID string      `json:"mch_trade_id"`
	PayType    string      `json:"pay_type"`
	Wallet     string      `json:"wallet"`
	State      money.State `json:"state"`
	TradeState *int        `json:"trade_state"`
	TradeID    string      `json:"trade_id"`
	OutTradeID string      `json:"out_trade_id"`
	ErrMsg     string      `json:"err_msg"`
	AuthCode   string      `json:"auth_code"`
	Scene      string      `json:"scene"`
	Phase      money.Phase `json:"phase"`
	OpUserID   string      `json:"op_user_id,omitempty"`
	Shift      string      `json:"shift,omitempty"`
	CreatedAt  time.Time   `json:"created_at"`
	// Export fields.
	TotalFee   int64     `json:"total_fee,omitempty"`
	Lane       string    `json:"lane,omitempty"`
	ChargeID   string    `json:"charge_id,omitempty"`
	Resolution string    `json:"resolution,omitempty"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	payment.PayDetail
	Version uint64 `json:"version,omitempty"` // grows with each change (as the head office's copy has it)
}

// attemptOf renders an order for the API.
func attemptOf(o *money.Order) Attempt {
	a := Attempt{
		MchTradeID: o.MchTradeID, PayType: o.PayType, Wallet: o.Wallet, State: o.State,
		TradeID: o.TradeID, OutTradeID: o.OutTradeID, ErrMsg: o.ErrMsg,
		AuthCode: o.CodeMasked, Scene: o.Scene, Phase: o.Phase, CreatedAt: o.CreatedAt, Resolution: o.Resolution,
		OpUserID: o.OpUserID, Shift: o.Shift, PayDetail: o.PayDetail, Version: o.Version,
	}
	if o.TradeState > -99 {
		ts := o.TradeState
		a.TradeState = &ts
	}
	return a
}

// exportOf renders an order for the export, with its amount and where it
// belongs.
func exportOf(o *money.Order) Attempt {
	a := attemptOf(o)
	a.TotalFee, a.Lane, a.ChargeID, a.FinishedAt = o.TotalFee, o.Lane, o.ChargeID, o.FinishedAt
	return a
}

// Charge is the charge object of the local API.
type Charge struct {
	money.Charge
	Attempts []Attempt `json:"attempts"`
	Sandbox  bool      `json:"sandbox,omitempty"`
}

func chargeOf(v lane.View) Charge {
	c := Charge{Charge: v.Charge, Attempts: make([]Attempt, 0, len(v.Attempts)), Sandbox: v.Sandbox}
	for i := range v.Attempts {
		c.Attempts = append(c.Attempts, attemptOf(&v.Attempts[i]))
	}
	return c
}

// Lane is GET /v1/lanes/{lane}.
type Lane struct {
	ID           string  `json:"id"`
	DeviceInfo   string  `json:"device_info"`
	FixedFee     int64   `json:"fixed_fee,omitempty"`
	MaxFee       int64   `json:"max_fee,omitempty"`
	InService    bool    `json:"in_service"`
	OutOfService string  `json:"out_of_service,omitempty"`
	Charge       *Charge `json:"charge"`
	Sandbox      bool    `json:"sandbox,omitempty"`
}

func laneOf(i lane.Info) Lane {
	l := Lane{ID: i.ID, DeviceInfo: i.DeviceInfo, FixedFee: i.FixedFee, MaxFee: i.MaxFee,
		InService: i.InService, OutOfService: i.OutOfService, Sandbox: i.Sandbox}
	if i.Charge != nil {
		c := chargeOf(*i.Charge)
		l.Charge = &c
	}
	return l
}

// reportRow is a line of GET /v1/report.
type reportRow struct {
	Wallet string      `json:"wallet"`
	State  money.State `json:"state"`
	Count  int         `json:"count"`
	Total  int64       `json:"total_fee"`
}

// History is what the API reads of the journal's history.
type History interface {
	Orders(unresolved bool, limit int) ([]money.Order, error)
	Report(from, to time.Time) ([]money.Total, error)
	ExportEach(from, to time.Time, fn func(*money.Order) error) error
	Totals(from, to time.Time, f money.TotalsFilter) ([]money.WalletTotals, error)
}
