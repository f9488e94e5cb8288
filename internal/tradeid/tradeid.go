// Package tradeid is how posd names an order at the gateway (mch_trade_id):
// the store, the lane's device, the journal's epoch and a counter, within
// the protocol's 32 characters. The config checks its parts with it, the
// lanes build ids with it.
package tradeid

import (
	"strconv"
	"strings"
)

// Part reduces a configured name to the characters a mch_trade_id may
// hold.
func Part(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// MaxPrefix bounds store+device parts so that an id stays within 30
// characters (its refund id adds two) with a 6-character epoch and a
// 6-character counter.
const MaxPrefix = 30 - 2 - 6 - 6

// New is the id of the journal's order number n on a lane's device.
func New(store, device, epoch string, n uint64) string {
	return Part(store) + "_" + Part(device) + "_" + epoch + strings.ToUpper(strconv.FormatUint(n, 36))
}
