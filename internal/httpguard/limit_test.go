package httpguard

import (
	"container/list"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Room is made at the cost of the client holding the most connections
// that are not kept: its refused one first, else its oldest. A till's
// one new connection is never the one closed while another client holds
// more.
func TestVictimIsOfTheClientHoldingTheMost(t *testing.T) {
	for name, tc := range map[string]struct {
		conns []*limitConn
		want  int // index; -1: none
	}{
		"the flooder's oldest":        {[]*limitConn{{client: "uid:0"}, {client: "uid:65534"}, {client: "uid:65534"}, {client: "uid:0"}}, 1},
		"the flooder's refused one":   {[]*limitConn{{client: "uid:65534"}, {client: "uid:0"}, {client: "uid:65534"}, {client: "uid:65534"}}, 3},
		"kept ones count for nothing": {[]*limitConn{{client: "uid:0"}, {client: "10.0.0.9"}, {client: "uid:0"}, {client: "uid:0"}}, 1},
		"every one kept":              {[]*limitConn{{client: "uid:0"}, {client: "uid:0"}}, -1},
	} {
		t.Run(name, func(t *testing.T) {
			l := &limitListener{max: len(tc.conns)}
			for i, c := range tc.conns {
				c.elem = l.conns.PushBack(c)
				switch {
				case name == "the flooder's refused one" && i == 3:
					c.Refuse()
				case name == "kept ones count for nothing" && i != 1:
					c.Keep()
				case name == "every one kept":
					c.Keep()
				}
			}
			got := l.victim()
			if tc.want < 0 {
				assert.Nil(t, got)
				return
			}
			var e *list.Element = l.conns.Front()
			for range tc.want {
				e = e.Next()
			}
			assert.Same(t, e, got)
		})
	}
}
