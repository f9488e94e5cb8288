// Package wire names what travels between a box and head office: the
// subject of a record, its message id, a box's inbox prefix. The box's
// publisher (internal/fleet) and head office (internal/hq) both use it;
// it knows nothing of either.
package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Subject is where a record of kind is published:
// PREFIX.<merchant>.<store>.<lane>.orders|refunds|devices (a charge goes
// with the orders).
func Subject(prefix, merchant, store, lane, kind string) string {
	group := "orders"
	switch kind {
	case "refund":
		group = "refunds"
	case "device":
		group = "devices"
	}
	return strings.Join([]string{prefix, token(merchant), token(store), token(lane), group}, ".")
}

// MsgID names one version of one record, for the stream's deduplication.
// The store is in it: a device's id (lane/role/name) and its version (the
// box's outbox sequence) are alike in boxes set up alike, and the stream
// would drop one store's device state as a copy of another's. With a key,
// it ends in a MAC of the rest: the stream deduplicates on the id alone,
// whatever the subject, so an id another box could compute is one it
// could publish first, and the stream would ack the real record as a copy.
func MsgID(key []byte, merchant, store, kind, id string, version uint64) string {
	s := fmt.Sprintf("%s:%s:%s:%s:%d", merchant, store, kind, id, version)
	if key == nil {
		return s
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(s))
	return s + ":" + hex.EncodeToString(mac.Sum(nil)[:12])
}

// IDKey is the key of a box's message ids, from its NATS credentials
// (which only the box and no other holds): the same across restarts, so a
// record sent again after a crash is dropped as the copy it is.
func IDKey(credentials string) []byte {
	if credentials == "" {
		return nil
	}
	sum := sha256.Sum256([]byte("posd fleet message ids\x00" + credentials))
	return sum[:]
}

// Inbox is the inbox prefix of a box: what its store's NATS config lets
// it hear (docs/fleet/store.conf).
func Inbox(box string) string { return "_INBOX_" + token(box) }

// token makes s one subject token: what a subject gives a meaning to
// becomes _.
func token(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '*' || r == '>' || r <= ' ' || r == 0x7f {
			return '_'
		}
		return r
	}, s)
}
