package payment_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"example.com/posd/payment"
	"example.com/posd/payment/sandbox"
)

// A pay whose answer is lost upstream (the sandbox answers 601 for a code
// ending in 84, after taking the money) is unknown, never declined: only
// the query tells that the customer paid.
func ExampleClient_Pay() {
	gw := httptest.NewServer(sandbox.New(sandbox.Options{}))
	defer gw.Close()
	c, err := payment.NewClient(payment.ClientOptions{
		BaseURL:    gw.URL,
		MerchantID: sandbox.MerchantID,
		Key:        sandbox.Key,
		// The test server's transport: its Close ends the idle
		// connections too, so no goroutine outlives the example.
		Transport: gw.Client().Transport,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	pay := &payment.PayRequest{
		MchTradeID: "S001_L1_EXAMPLE1", PayType: "alipay.micro", DeviceInfo: "L1",
		Subject: "Store", Body: "Store-food", TotalFee: 1, SpbillCreateIP: "127.0.0.1",
		AuthCode: "282941234567890184",
	}
	r := c.Pay(ctx, pay)
	fmt.Printf("pay: %s (%s)\n", r.Outcome, r.Reason)

	q := c.Query(ctx, payment.OrderRef{MchTradeID: pay.MchTradeID}, pay.TotalFee)
	fmt.Printf("query: %s, trade_state %d, trade_id %s\n", q.Outcome, q.TradeState, q.TradeID)
	// Output:
	// pay: unknown (code 601: upstream channel timeout)
	// query: paid, trade_state 0, trade_id SBX000000000001
}

// Every answer is checked against the merchant key before it is believed:
// a signature over other values, or under another key, does not verify.
func ExampleVerify() {
	const key = "m4X2zlLKpQ7vTf3W9sYb2Ec8Rn6Hd1Ja" // the protocol's test vector key
	query := []payment.Param{
		{Key: "merchant_id", Value: "59382e3c7e3f4b1c8d0cfc3e"},
		{Key: "mch_trade_id", Value: "S001_L1_1764102600_0001"},
		{Key: "nonce_str", Value: "Q1"},
		{Key: "sign_type", Value: "MD5"},
	}
	sig := payment.Sign(query, key)
	fmt.Println(sig)
	fmt.Println(payment.Verify(query, key, sig))
	fmt.Println(payment.Verify(query, "another key", sig))

	query[1].Value = "S001_L1_1764102600_0002" // the answer is about another order
	fmt.Println(payment.Verify(query, key, sig))
	// Output:
	// 2AE8FC07F6D90125970FD0D759C1AB50
	// true
	// false
	// false
}

// A transport error says nothing about the order: whether the gateway took
// the money is unknown, and the order is queried, never shown as declined.
func ExampleClassify() {
	exp := payment.Expect{MerchantID: "M1", MchTradeID: "S001_L1_EXAMPLE1", TotalFee: 1}
	r := payment.Classify(payment.CallPay, exp, "key", 0, nil, context.DeadlineExceeded)
	fmt.Println(r.Outcome, "-", r.Reason)

	r = payment.Classify(payment.CallPay, exp, "key", 502, []byte("Bad Gateway"), nil)
	fmt.Println(r.Outcome, "-", r.Reason)

	upstream := []byte(`{"code":601,"msg":"upstream channel timeout","version":"1.0"}`)
	r = payment.Classify(payment.CallPay, exp, "key", 200, upstream, nil)
	fmt.Println(r.Outcome, "-", r.Reason)
	// Output:
	// unknown - transport: context deadline exceeded
	// unknown - HTTP 502
	// unknown - code 601: upstream channel timeout
}
