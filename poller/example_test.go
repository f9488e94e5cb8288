package poller_test

import (
	"fmt"
	"time"

	"example.com/posd/internal/money"
	"example.com/posd/payment"
	"example.com/posd/poller"
)

// One order through the state machine: the pay times out (unknown, so the
// code is not sent again and the order is queried, never declined), the
// first query finds it still paying, the second finds it paid. In posd the
// runner journals each order Step returns before it makes the next call.
func ExampleStep() {
	p := poller.DefaultPolicy()
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	o := money.NewOrder(money.Order{
		MchTradeID: "S001_L1_EXAMPLE1", PayType: "alipay.micro", DeviceInfo: "L1",
		TotalFee: 100, AuthCode: "282941234567890123",
	}, start)
	fmt.Printf("new: state %s, next %s, code %s\n", o.State, o.Call(), o.CodeMasked)

	answers := []payment.Result{
		{Outcome: payment.Unknown, TradeState: payment.NoTradeState, Reason: "transport: context deadline exceeded"},
		{Outcome: payment.Pending, TradeState: payment.StatePaying},
		{Outcome: payment.Paid, TradeState: payment.StatePaid, TradeID: "SBX000000000001"},
	}
	for _, r := range answers {
		now := o.NextAt // each call is made when it is due
		call := o.Call()
		o = poller.Step(o, r, now, p)
		fmt.Printf("%s answered %s: state %s", call, r.Outcome, o.State)
		if o.Active() {
			fmt.Printf(", next %s in %s", o.Call(), o.NextAt.Sub(now))
		}
		fmt.Println()
	}
	fmt.Printf("final: %t, trade_id %s, full code kept: %t\n", o.Final(), o.TradeID, o.AuthCode != "")
	// Output:
	// new: state paying, next pay, code **************0123
	// pay answered unknown: state paying, next query in 5s
	// query answered pending: state paying, next query in 5s
	// query answered paid: state paid
	// final: true, trade_id SBX000000000001, full code kept: false
}
