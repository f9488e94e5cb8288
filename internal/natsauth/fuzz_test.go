package natsauth

import (
	"testing"

	"github.com/nats-io/nats.go"
)

// No credentials content makes Option, or the callbacks it
// installs, panic.
func FuzzOption(f *testing.F) {
	f.Add("SUAIBDPBAUTWCWBKIO6XHQNINK5FWJW4OHLXC3HQ2KFE4PEJUA44CNHT")
	f.Add("-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.x\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\nSUAIBDPBAUTWCWBKIO6XHQNINK5FWJW4OHLXC3HQ2KFE4PEJUA44CNHA\n------END USER NKEY SEED------\n")
	f.Add("SO")
	f.Fuzz(func(t *testing.T, s string) {
		opt, err := Option(s)
		if err != nil {
			return
		}
		o := nats.GetDefaultOptions()
		_ = opt(&o)
		if o.UserJWT != nil {
			_, _ = o.UserJWT()
		}
		if o.SignatureCB != nil {
			_, _ = o.SignatureCB([]byte("nonce"))
		}
	})
}
