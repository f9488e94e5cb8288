package payment

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// The seed's table says Int (fen); its example sends "0.01" (yuan): both.
func TestParseFen(t *testing.T) {
	for in, want := range map[string]int64{"1": 1, "0.01": 1, "12.5": 1250, "12.50": 1250, "100": 100, "3.": 300} {
		got, ok := ParseFen(in)
		assert.True(t, ok, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "-1", "0.001", ".5", "abc", "1e3", "-0.01"} {
		_, ok := ParseFen(in)
		assert.False(t, ok, in)
	}
}

func TestMaskLogon(t *testing.T) {
	assert.Equal(t, "138****1234", MaskLogon("13800001234"))
	assert.Equal(t, "ab***@example.com", MaskLogon("abcdef@example.com"))
	assert.Equal(t, "x***", MaskLogon("xyz"))
	assert.Equal(t, "", MaskLogon(""))
}

func TestCompletedReadsTheGatewaysTime(t *testing.T) {
	for in, want := range map[string]int64{"1765000000": 1765000000_000, "1765000000123": 1765000000123, "": -1, "abc": -1, "-5": -1, "20261207180000": -1} {
		got, ok := PayDetail{TimeEnd: in}.Completed()
		if want < 0 {
			if ok {
				t.Errorf("%q: %s, want none", in, got)
			}
			continue
		}
		if !ok || got.UnixMilli() != want {
			t.Errorf("%q: %s %v, want %d ms", in, got, ok, want)
		}
	}
}
