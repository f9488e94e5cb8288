package scanner

import (
	"errors"
	"fmt"
	"strings"
)

// Wallet is one row of the payment-code table: which codes belong to a
// wallet, and the pay_type they are paid with.
type Wallet struct {
	Name      string   `yaml:"name"`
	PayType   string   `yaml:"pay_type"`
	Prefixes  []string `yaml:"prefixes"`
	MinLength int      `yaml:"min_length"`
	MaxLength int      `yaml:"max_length"`
}

// DefaultWallets is the table of docs/protocol.md, "Payment codes".
// UnionPay is left out: a merchant who has it adds its row in the config.
func DefaultWallets() []Wallet {
	return []Wallet{
		{Name: "wechat", PayType: "wechat.micro", Prefixes: []string{"10", "11", "12", "13", "14", "15"}, MinLength: 18, MaxLength: 18},
		{Name: "alipay", PayType: "alipay.micro", Prefixes: []string{"25", "26", "27", "28", "29", "30"}, MinLength: 16, MaxLength: 24},
	}
}

// ErrInvalidCode is the kind of every refusal: nothing is sent.
var ErrInvalidCode = errors.New("invalid payment code")

// Router picks the wallet of a code.
type Router struct{ wallets []Wallet }

// NewRouter checks the table and returns a router over it.
func NewRouter(ws []Wallet) (*Router, error) {
	if len(ws) == 0 {
		return nil, errors.New("scanner: the wallet table is empty")
	}
	for _, w := range ws {
		if err := w.validate(); err != nil {
			return nil, err
		}
	}
	return &Router{wallets: ws}, nil
}

func (w Wallet) validate() error {
	switch {
	case w.Name == "" || w.PayType == "":
		return fmt.Errorf("scanner: wallet %q: name and pay_type are required", w.Name)
	case len(w.Prefixes) == 0:
		return fmt.Errorf("scanner: wallet %s: prefixes required", w.Name)
	case w.MinLength < 8 || w.MaxLength < w.MinLength || w.MaxLength > 64:
		return fmt.Errorf("scanner: wallet %s: lengths %d-%d out of range", w.Name, w.MinLength, w.MaxLength)
	}
	for _, p := range w.Prefixes {
		if p == "" || !digits(p) {
			return fmt.Errorf("scanner: wallet %s: prefix %q is not digits", w.Name, p)
		}
	}
	return nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}

// Route checks a scanned code and returns it cleaned with its wallet. The
// error wraps ErrInvalidCode and says, without the code, what is wrong.
func (r *Router) Route(raw string) (string, Wallet, error) {
	code := strings.TrimSpace(raw)
	switch {
	case code == "":
		return "", Wallet{}, fmt.Errorf("%w: empty", ErrInvalidCode)
	case !digits(code):
		return "", Wallet{}, fmt.Errorf("%w: not all digits (%d characters)", ErrInvalidCode, len(code))
	}
	for _, w := range r.wallets {
		if len(code) < w.MinLength || len(code) > w.MaxLength {
			continue
		}
		for _, p := range w.Prefixes {
			if strings.HasPrefix(code, p) {
				return code, w, nil
			}
		}
	}
	return "", Wallet{}, fmt.Errorf("%w: %d digits starting %s match no wallet", ErrInvalidCode, len(code), code[:min(2, len(code))])
}
