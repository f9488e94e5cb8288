package scanner

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoute(t *testing.T) {
	r, err := NewRouter(DefaultWallets())
	require.NoError(t, err)
	cases := []struct {
		code, payType string
	}{
		{"134567890123456789", "wechat.micro"},
		{"104567890123456789", "wechat.micro"},
		{"154567890123456789", "wechat.micro"},
		{"2829412345678901", "alipay.micro"},
		{"282941234567890123", "alipay.micro"},
		{"300000000000000000000000", "alipay.micro"},
		{" 282941234567890123\r", "alipay.micro"},
	}
	for _, c := range cases {
		code, w, err := r.Route(c.code)
		require.NoError(t, err, c.code)
		assert.Equal(t, c.payType, w.PayType, c.code)
		assert.Equal(t, strings.TrimSpace(c.code), code)
	}
	for _, bad := range []string{
		"", "   ", "13456789012345678", // 17 digits: WeChat wants 18
		"1345678901234567890",       // 19
		"164567890123456789",        // 16 is no wallet
		"282941234567890",           // 15: too short for Alipay
		"3000000000000000000000000", // 25: too long
		"2829412345678901x3",
		"６２８２９４１２３４５６７８９０１", // full-width digits
		"62123456789012345678",
	} {
		_, _, err := r.Route(bad)
		assert.ErrorIs(t, err, ErrInvalidCode, "%q", bad)
		if err != nil && len(bad) > 6 {
			assert.NotContains(t, err.Error(), bad[2:], "the message never carries the code")
		}
	}
}

func TestRouteConfiguredTable(t *testing.T) {
	ws := append(DefaultWallets(), Wallet{Name: "unionpay", PayType: "unionpay.micro", Prefixes: []string{"62"}, MinLength: 19, MaxLength: 19})
	r, err := NewRouter(ws)
	require.NoError(t, err)
	_, w, err := r.Route("6212345678901234567")
	require.NoError(t, err)
	assert.Equal(t, "unionpay.micro", w.PayType)

	for _, bad := range [][]Wallet{nil, {{Name: "x", PayType: "y"}}, {{Name: "x", PayType: "y", Prefixes: []string{"1"}, MinLength: 20, MaxLength: 10}}} {
		_, err := NewRouter(bad)
		assert.Error(t, err)
	}
}

func TestDedup(t *testing.T) {
	d := NewDedup(10 * time.Second)
	t0 := time.Now()
	assert.False(t, d.Seen("a", t0), "nothing taken yet")
	assert.False(t, d.Seen("a", t0), "seeing is not taking")
	d.Add("a", t0)
	assert.True(t, d.Seen("a", t0.Add(9*time.Second)))
	assert.False(t, d.Seen("b", t0.Add(9*time.Second)))
	assert.False(t, d.Seen("a", t0.Add(11*time.Second)), "outside the window it is a new scan")
	d.Add("b", t0.Add(30*time.Second))
	assert.Len(t, d.seen, 1, "old entries are dropped")
}

func TestLines(t *testing.T) {
	var got []Scan
	l := &Lines{R: strings.NewReader("111\r\n222\n\n333"), Name: "t", Scene: SceneWaveCode}
	err := l.Run(context.Background(), func(s Scan) { got = append(got, s) })
	require.NoError(t, err)
	require.Len(t, got, 4)
	assert.Equal(t, "111", got[0].Code, "CR LF framing")
	assert.Equal(t, SceneWaveCode, got[1].Scene)

	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- (&Lines{R: pr}).Run(ctx, func(Scan) {}) }()
	cancel()
	assert.True(t, errors.Is(<-done, context.Canceled), "Run ends with its context")
}

func FuzzRoute(f *testing.F) {
	for _, s := range []string{"282941234567890123", "134567890123456789", "", "28x", "9999999999999999999999999"} {
		f.Add(s)
	}
	r, _ := NewRouter(DefaultWallets())
	f.Fuzz(func(t *testing.T, s string) {
		code, w, err := r.Route(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidCode) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if len(code) < w.MinLength || len(code) > w.MaxLength || !digits(code) {
			t.Fatalf("accepted %q for %s", code, w.Name)
		}
	})
}
