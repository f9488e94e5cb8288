package sandbox

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"example.com/posd/payment"
)

// Scenarios, by the last two digits of the payment code (docs/protocol.md,
// "The sandbox gateway").
const (
	scPayingThenPaid   = 80
	scPayingForever    = 81
	scDeclined         = 82
	scSlow             = 83
	scUpstreamTimeout  = 84
	scBadSignature     = 85
	scServerError      = 86
	scReverseRecall    = 87
	scPaysBeforeRevers = 88
	scNoReverse        = 89
	scCoupon           = 79 // paid, with a wallet coupon
)

func scenarioOf(code string) int {
	if len(code) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(code[len(code)-2:])
	return n
}

// checkPay refuses a pay request the gateway would refuse before doing
// anything: a field missing, an id or amount malformed, a code not digits.
func checkPay(r request) (answer, bool) {
	for _, k := range []string{"pay_type", "mch_trade_id", "device_info", "subject", "body", "total_fee", "spbill_create_ip", "auth_code"} {
		if r.get(k) == "" {
			return fail(payment.CodeMissingField, "missing required field "+k), true
		}
	}
	if fee, ok := r.int("total_fee"); !payment.ValidTradeID(r.get("mch_trade_id")) || !ok || fee <= 0 {
		return fail(payment.CodeMissingField, "mch_trade_id or total_fee malformed"), true
	}
	for _, c := range r.get("auth_code") {
		if c < '0' || c > '9' {
			return fail(payment.CodeMissingField, "auth_code must be digits"), true
		}
	}
	return answer{}, false
}

func (s *Sandbox) pay(r request) answer {
	if bad, refused := checkPay(r); refused {
		return bad
	}
	id, code := r.get("mch_trade_id"), r.get("auth_code")
	fee, _ := r.int("total_fee")
	hash := payment.CodeHash(code)

	s.mu.Lock()
	defer s.mu.Unlock()
	rec := PayRequest{MchTradeID: id, AuthCode: payment.MaskCode(code), AuthCodeSHA256: hash, TotalFee: fee, At: s.opt.Now()}
	defer func() { s.requests = append(s.requests, rec) }()

	if _, dup := s.orders[id]; dup {
		rec.Answer = "107"
		return fail(payment.CodeDuplicate, "duplicate mch_trade_id")
	}
	sc := scenarioOf(code)
	if sc == scServerError {
		rec.Answer = "http 500"
		return answer{status: http.StatusInternalServerError}
	}
	s.seq++
	o := &Order{
		MchTradeID:     id,
		TradeID:        fmt.Sprintf("SBX%012d", s.seq),
		PayType:        r.get("pay_type"),
		DeviceInfo:     r.get("device_info"),
		TotalFee:       fee,
		AuthCode:       payment.MaskCode(code),
		AuthCodeSHA256: hash,
		Scene:          r.get("scene"),
		TradeState:     payment.StatePaying,
		CreatedAt:      s.opt.Now(),
		scenario:       sc,
	}
	s.orders[id] = o
	s.byTrade[o.TradeID] = o

	if prev, used := s.codes[hash]; used {
		// A payment code pays once; the wallet refuses it again.
		o.TradeState = payment.StateFailed
		rec.Answer = "declined: code already used by " + prev
		return s.payAnswer(o, "N", "付款码已使用 (code already used)")
	}
	s.codes[hash] = id

	switch sc {
	case scPayingThenPaid, scPayingForever, scReverseRecall, scPaysBeforeRevers, scNoReverse:
		rec.Answer = "paying"
		return s.payAnswer(o, "Y", "")
	case scDeclined:
		o.TradeState = payment.StateFailed
		rec.Answer = "declined"
		return s.payAnswer(o, "N", "余额不足")
	}
	s.markPaid(o)
	rec.Answer = "paid"
	a := s.payAnswer(o, "N", "")
	switch sc {
	case scSlow:
		rec.Answer = "paid, answered late"
		a.wait = s.opt.SlowDelay
	case scUpstreamTimeout:
		rec.Answer = "paid, answered 601"
		return fail(payment.CodeUpstreamTimout, "upstream channel timeout")
	case scBadSignature:
		rec.Answer = "paid, answer badly signed"
		a.badSign = true
	}
	return a
}

func (s *Sandbox) markPaid(o *Order) {
	o.TradeState = payment.StatePaid
	o.WasPaid = true
	o.Charged = o.TotalFee
	o.OutTradeID = "SBXOUT" + o.TradeID[3:]
}

// orderData is what every answer about an order carries in data.
func (s *Sandbox) orderData(o *Order) []payment.Param {
	ps := []payment.Param{
		{Key: "merchant_id", Value: s.opt.MerchantID},
		{Key: "mch_trade_id", Value: o.MchTradeID},
		{Key: "trade_id", Value: o.TradeID},
		{Key: "pay_type", Value: o.PayType},
		{Key: "device_info", Value: o.DeviceInfo},
		{Key: "total_fee", Value: strconv.FormatInt(o.TotalFee, 10), Num: true},
		{Key: "trade_state", Value: strconv.Itoa(o.TradeState), Num: true},
		{Key: "nonce_str", Value: "SANDBOX"},
		{Key: "fee_type", Value: "CNY"},
	}
	if o.OutTradeID != "" {
		// The seed's detail, in both of its forms: buyer_pay_amount as
		// yuan text (its example), the others as integer fen (its table).
		// A code's scenario 79 gets a wallet coupon of 1 yuan.
		coupon := int64(0)
		if o.scenario == scCoupon && o.TotalFee > 100 {
			coupon = 100
		}
		paid := o.TotalFee - coupon
		ps = append(ps,
			payment.Param{Key: "out_trade_id", Value: o.OutTradeID},
			payment.Param{Key: "time_end", Value: strconv.FormatInt(o.CreatedAt.Unix(), 10), Num: true},
			payment.Param{Key: "coupon_fee", Value: strconv.FormatInt(coupon, 10), Num: true},
			payment.Param{Key: "buyer_pay_amount", Value: fmt.Sprintf("%d.%02d", paid/100, paid%100)},
			payment.Param{Key: "receipt_amount", Value: strconv.FormatInt(o.TotalFee, 10), Num: true},
			payment.Param{Key: "bank_type", Value: "OTHERS"},
			payment.Param{Key: "buyer_logon_id", Value: "13800001234"})
	}
	return ps
}

func (s *Sandbox) payAnswer(o *Order, needQuery, errMsg string) answer {
	d := append(s.orderData(o), payment.Param{Key: "need_query", Value: needQuery})
	if errMsg != "" {
		d = append(d, payment.Param{Key: "err_code", Value: "TRADE_FAILED"}, payment.Param{Key: "err_msg", Value: errMsg})
	}
	return answer{data: d}
}

// find looks an order up by trade_id (which wins) or mch_trade_id.
func (s *Sandbox) find(r request) *Order {
	if t := r.get("trade_id"); t != "" {
		return s.byTrade[t]
	}
	return s.orders[r.get("mch_trade_id")]
}

func (s *Sandbox) query(r request) answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.find(r)
	if o == nil {
		return fail(payment.CodeOrderNotFound, "order not found")
	}
	o.Queries++
	if o.scenario == scPayingThenPaid && o.TradeState == payment.StatePaying && o.Queries >= 3 {
		s.markPaid(o)
	}
	return answer{data: s.orderData(o)}
}

func (s *Sandbox) reverse(r request) answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.find(r)
	if o == nil {
		return fail(payment.CodeOrderNotFound, "order not found")
	}
	if o.scenario == scNoReverse {
		return answer{status: http.StatusNotFound}
	}
	o.Reverses++
	recall := "N"
	switch {
	case o.scenario == scReverseRecall && o.Reverses <= 2:
		recall = "Y"
	case o.TradeState == payment.StatePaying && o.scenario == scPaysBeforeRevers:
		// The customer confirmed just before the reverse reached the
		// wallet: it is paid, and the reverse refunds it.
		s.markPaid(o)
		fallthrough
	case o.TradeState == payment.StatePaid || o.TradeState == payment.StatePaying || o.TradeState == payment.StateUnpaid:
		o.TradeState = payment.StateReversed
		if o.Charged > 0 && s.opt.RefundingAfterReverse {
			o.TradeState = payment.StateRefunding
		}
		o.RefundedFee += o.Charged
		o.Charged = 0
	}
	d := append(s.orderData(o), payment.Param{Key: "recall", Value: recall})
	if recall == "Y" {
		for i := range d {
			if d[i].Key == "trade_state" {
				d[i].Value = strconv.Itoa(payment.StateRevoking)
			}
		}
	}
	return answer{data: d}
}

func (s *Sandbox) close(r request) answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.find(r)
	if o == nil {
		return fail(payment.CodeOrderNotFound, "order not found")
	}
	o.Closes++
	status := "0"
	switch o.TradeState {
	case payment.StateClosed:
		status = "1"
	case payment.StatePaying, payment.StateUnpaid, payment.StateInitial:
		o.TradeState = payment.StateClosed
	default:
		status = "-1" // paid, reversed or failed orders cannot be closed
	}
	d := append(s.orderData(o), payment.Param{Key: "close_status", Value: status, Num: true})
	return answer{data: d}
}

func (s *Sandbox) refund(r request) answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.find(r)
	if o == nil {
		return fail(payment.CodeOrderNotFound, "order not found")
	}
	rid := r.get("mch_refund_id")
	fee, ok := r.int("refund_fee")
	if !payment.ValidTradeID(rid) || !ok || fee <= 0 {
		return fail(payment.CodeMissingField, "mch_refund_id or refund_fee malformed")
	}
	if prev, dup := s.refunds[rid]; dup {
		// The same id is the same refund, whatever else the request says.
		if prev.RefundFee != fee || prev.MchTradeID != o.MchTradeID {
			s.reuses = append(s.reuses, RefundIDReuse{MchRefundID: rid, MchTradeID: o.MchTradeID, FirstFee: prev.RefundFee, Fee: fee})
		}
		return answer{data: s.refundData(prev, "0")}
	}
	rf, err := s.refundOf(o, rid, fee)
	if err != nil {
		return answer{data: s.refundData(&Refund{MchRefundID: rid, MchTradeID: o.MchTradeID, RefundFee: fee}, "-1")}
	}
	return answer{data: s.refundData(rf, "0")}
}

// refundOf gives fee of o back under rid, within the gateway's limits
// (docs/protocol.md, "Refund limits"): no more than was paid, at
// most MaxRefunds refunds of a payment, and within RefundWindow of it.
// The caller holds s.mu.
func (s *Sandbox) refundOf(o *Order, rid string, fee int64) (*Refund, error) {
	switch {
	case o.TradeState != payment.StatePaid && o.TradeState != payment.StateRefunding:
		return nil, fmt.Errorf("order %s is not paid (trade_state %d)", o.MchTradeID, o.TradeState)
	case fee > o.Charged:
		return nil, fmt.Errorf("refund_fee %d is more than the %d fen left of order %s", fee, o.Charged, o.MchTradeID)
	case len(o.refunds) >= MaxRefunds:
		return nil, fmt.Errorf("order %s has had %d refunds", o.MchTradeID, len(o.refunds))
	case s.opt.Now().Sub(o.CreatedAt) > RefundWindow:
		return nil, fmt.Errorf("order %s is older than the refund window", o.MchTradeID)
	}
	s.seq++
	rf := &Refund{MchRefundID: rid, RefundID: fmt.Sprintf("SBXR%011d", s.seq), MchTradeID: o.MchTradeID, RefundFee: fee}
	s.refunds[rid] = rf
	o.refunds = append(o.refunds, rf)
	o.Charged -= fee
	o.RefundedFee += fee
	if !s.opt.RefundKeepsTradeState {
		o.TradeState = payment.StateRefunding
	}
	return rf, nil
}

func (s *Sandbox) refundData(rf *Refund, status string) []payment.Param {
	return []payment.Param{
		{Key: "merchant_id", Value: s.opt.MerchantID},
		{Key: "mch_trade_id", Value: rf.MchTradeID},
		{Key: "mch_refund_id", Value: rf.MchRefundID},
		{Key: "refund_id", Value: rf.RefundID},
		{Key: "refund_fee", Value: strconv.FormatInt(rf.RefundFee, 10), Num: true},
		{Key: "refund_status", Value: status, Num: true},
	}
}

func (s *Sandbox) refundQuery(r request) answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	rf := s.refunds[r.get("mch_refund_id")]
	if rf == nil {
		for _, x := range s.refunds {
			if x.RefundID != "" && x.RefundID == r.get("refund_id") {
				rf = x
			}
		}
	}
	if rf == nil {
		return fail(payment.CodeOrderNotFound, "refund not found")
	}
	return answer{data: s.refundData(rf, "0")}
}

// backOfficeRefund is POST /_sandbox/backoffice/refund {"mch_trade_id",
// "refund_fee"}: a refund the merchant makes in the aggregator's back
// office, under a refund id of the back office's (BO…) that posd never
// made. It follows a refund's rules; posd sees it only in the order's
// trade_state and by the money gone. 200 and the refund, or 4xx and why.
func (s *Sandbox) backOfficeRefund(w http.ResponseWriter, hr *http.Request) {
	var body struct {
		MchTradeID string `json:"mch_trade_id"`
		RefundFee  int64  `json:"refund_fee"`
	}
	if ct, _, _ := strings.Cut(hr.Header.Get("Content-Type"), ";"); ct != "application/json" {
		// A page in the box's browser can post a form here, not JSON.
		sendJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": "Content-Type must be application/json"})
		return
	}
	dec := json.NewDecoder(io.LimitReader(hr.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.RefundFee <= 0 {
		sendJSON(w, http.StatusBadRequest, map[string]string{"error": "a body {\"mch_trade_id\": …, \"refund_fee\": fen > 0}"})
		return
	}
	s.mu.Lock()
	o := s.orders[body.MchTradeID]
	if o == nil {
		s.mu.Unlock()
		sendJSON(w, http.StatusNotFound, map[string]string{"error": "order " + body.MchTradeID + " not found"})
		return
	}
	rf, err := s.refundOf(o, fmt.Sprintf("BO%08d", s.office+1), body.RefundFee)
	if err == nil {
		s.office++
		rf.BackOffice = true
	}
	var out Refund
	if rf != nil {
		out = *rf
	}
	s.mu.Unlock()
	if err != nil {
		sendJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": err.Error()})
		return
	}
	sendJSON(w, http.StatusOK, out)
}

func sendJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
