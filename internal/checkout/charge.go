package checkout

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"time"

	"example.com/posd/internal/money"
)

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
	CreatedAt  time.Time   `json:"created_at"`
	// Export fields.
	TotalFee   int64     `json:"total_fee,omitempty"`
	Lane       string    `json:"lane,omitempty"`
	ChargeID   string    `json:"charge_id,omitempty"`
	Resolution string    `json:"resolution,omitempty"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// ChargeView is the charge object of the local API.
type ChargeView struct {
	money.Charge
	Attempts []Attempt `json:"attempts"`
	Sandbox  bool      `json:"sandbox,omitempty"`
}

// AttemptOf renders an order for the API.
func AttemptOf(o *money.Order) Attempt {
	a := Attempt{
		MchTradeID: o.MchTradeID, PayType: o.PayType, Wallet: o.Wallet, State: o.State,
		TradeID: o.TradeID, OutTradeID: o.OutTradeID, ErrMsg: o.ErrMsg,
		AuthCode: o.CodeMasked, Scene: o.Scene, Phase: o.Phase, CreatedAt: o.CreatedAt, Resolution: o.Resolution,
	}
	if o.TradeState > -99 {
		ts := o.TradeState
		a.TradeState = &ts
	}
	return a
}

// Errors the API maps to status codes.
var (
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrInvalid      = errors.New("invalid")
	ErrOutOfService = errors.New("out of service")
)

// newChargeID names a charge with 100 random bits: a charge id is what the
// API's routes take, and must not be guessed from a receipt (whose order
// id holds the journal's epoch and counter).
func newChargeID() string {
	var b [13]byte
	_, _ = rand.Read(b[:])
	return "CH" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])[:20]
}
