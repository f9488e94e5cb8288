package tradeid

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestIDsStayWithinTheProtocol(t *testing.T) {
	require.Equal(t, "Ab12", Part("A-b_1 2"), "only what a mch_trade_id may hold")
	require.Equal(t, "S001_POS01_EPOCH11Z", New("S001", "POS-01", "EPOCH1", 71))
	// The longest store and device the config accepts, the largest
	// counter of six base-36 digits, and the refund id's two more.
	store, device := strings.Repeat("S", MaxPrefix/2), strings.Repeat("D", MaxPrefix-MaxPrefix/2)
	id := New(store, device, "ABCDEF", 36*36*36*36*36*36-1)
	require.LessOrEqual(t, len(id)+2, 32, "%s", id)
}
