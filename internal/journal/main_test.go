package journal

import (
	"encoding/json"
	"testing"

	"example.com/posd/internal/money"
	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: Batch
// hands writes to bbolt's group commit, which runs them on goroutines of
// its own.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// putJSON stores any JSON shape of an order or a charge (tests write
// records of older posds and bare ones) through putRecord, with the entries
// and compression the house's types give it.
func (t *Tx) putJSON(bucket, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	old := storedEntries(bucket, key, t.tx.Bucket([]byte(bucket)).Get([]byte(key)))
	var done bool
	switch bucket {
	case orderBucket:
		var o money.Order
		done = json.Unmarshal(b, &o) == nil && !o.Active()
	case chargeBucket:
		var c money.Charge
		done = json.Unmarshal(b, &c) == nil && !c.Open()
	default:
		return t.put(bucket, key, v)
	}
	return t.putRecord(bucket, key, json.RawMessage(b), old, storedEntries(bucket, key, b), done, "", 0)
}
