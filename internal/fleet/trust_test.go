package fleet

import (
	"context"
	"encoding/json"
	"example.com/posd/internal/fleet/wire"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"example.com/posd/internal/journal"
	"example.com/posd/internal/journal/journaltest"
	"example.com/posd/internal/natstest"
)

// What a box sends head office: no hash of the customer's code (with the
// last four digits beside it, a brute force finds the code); message ids
// keyed by the box's credentials (another box cannot spend them first);
// what is the box's rather than a lane's under the box's name.
func TestPublishedRecordsCarryNoCodeHash(t *testing.T) {
	ns := natstest.Start(t)
	st := natstest.Stream(t, ns.URL(), "POSD", "posd")
	j := journaltest.Open(t)
	j.SetOutbox(true)
	pay(t, j, 0)
	require.NoError(t, j.Update(func(tx *journal.Tx) error {
		return tx.AddDevice("", "gateway/gateway", map[string]string{"role": "gateway", "name": "gateway", "state": "connected"})
	}))
	key := wire.IDKey("SUAEXAMPLESEED")
	p := New(Options{URL: ns.URL(), Prefix: "posd", Merchant: "M1", Store: "S1", Box: "POS1", IDKey: key, Journal: j, Log: zap.NewNop(), Poll: 20 * time.Millisecond})
	stop := run(p)
	defer stop()
	waitEmpty(t, p)

	ctx := context.Background()
	info, err := st.Info(ctx)
	require.NoError(t, err)
	subjects := map[string]bool{}
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		require.NoError(t, err)
		subjects[m.Subject] = true
		var body map[string]any
		require.NoError(t, json.Unmarshal(m.Data, &body))
		assert.NotContains(t, body, "code_sha256", "%s", m.Subject)
		if body["type"] == "order" {
			assert.Equal(t, "**************3456", body["code_masked"])
			plain := wire.MsgID(nil, "M1", "S1", "order", "S1_POS1_A", 2)
			assert.Equal(t, wire.MsgID(key, "M1", "S1", "order", "S1_POS1_A", 2), m.Header.Get("Nats-Msg-Id"))
			assert.NotEqual(t, plain, m.Header.Get("Nats-Msg-Id"))
			assert.Contains(t, m.Header.Get("Nats-Msg-Id"), plain+":", "the id still says what it is")
		}
	}
	assert.True(t, subjects["posd.M1.S1.POS1.devices"], "the box's gateway link under its name: %v", subjects)
	assert.NotEqual(t, wire.MsgID(wire.IDKey("SUAOTHERSEED"), "M1", "S1", "order", "X", 1), wire.MsgID(key, "M1", "S1", "order", "X", 1))
	assert.Nil(t, wire.IDKey(""), "no credentials, no key")
}
