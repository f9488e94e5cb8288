package natsauth

import (
	"strings"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The credentials posd and posd-hq take: a bare nkey seed (a server that
// lists the user's public key, as docs/fleet's do) or a NATS creds file (a
// user JWT and its seed, operator mode); anything else is refused.
func TestOption(t *testing.T) {
	user, err := nkeys.CreateUser()
	require.NoError(t, err)
	seed, err := user.Seed()
	require.NoError(t, err)
	pub, err := user.PublicKey()
	require.NoError(t, err)
	account, err := nkeys.CreateAccount()
	require.NoError(t, err)
	token, err := jwt.NewUserClaims(pub).Encode(account)
	require.NoError(t, err)
	creds, err := jwt.FormatUserConfig(token, seed)
	require.NoError(t, err)

	apply := func(creds string) (nats.Options, error) {
		o := nats.GetDefaultOptions()
		opt, err := Option(creds)
		if err == nil {
			err = opt(&o)
		}
		return o, err
	}
	o, err := apply(string(seed) + "\n")
	require.NoError(t, err)
	assert.Equal(t, pub, o.Nkey, "a bare seed: the server's listed public key")
	assert.Nil(t, o.UserJWT)
	sig, err := o.SignatureCB([]byte("nonce"))
	require.NoError(t, err)
	assert.NoError(t, user.Verify([]byte("nonce"), sig))

	o, err = apply(string(creds))
	require.NoError(t, err)
	require.NotNil(t, o.UserJWT, "a creds file: its JWT")
	got, err := o.UserJWT()
	require.NoError(t, err)
	assert.Equal(t, token, got)

	for _, bad := range []string{"", "not a seed", "SUAIBDPBAUTWCWBKIO6XHQNINK5FWJW4OHLXC3HQ2KFE4PEJUA44CNHT"} {
		_, err := Option(bad)
		assert.Error(t, err, "%q", bad)
	}
}

func newUser(t *testing.T) (seed []byte, token string, creds string) {
	user, err := nkeys.CreateUser()
	require.NoError(t, err)
	seed, err = user.Seed()
	require.NoError(t, err)
	pub, err := user.PublicKey()
	require.NoError(t, err)
	account, err := nkeys.CreateAccount()
	require.NoError(t, err)
	token, err = jwt.NewUserClaims(pub).Encode(account)
	require.NoError(t, err)
	c, err := jwt.FormatUserConfig(token, seed)
	require.NoError(t, err)
	return seed, token, string(c)
}

// A creds file whose JWT line carries a blank at its end (a paste): the
// JWT sent is the JWT, never the seed (which a broker's trace would log).
func TestJWTLineWithABlank(t *testing.T) {
	seed, token, creds := newUser(t)
	creds = strings.Replace(creds, token+"\n", token+" \n", 1)
	creds = strings.TrimSpace(creds) // as config.ReadSecret gives it
	opt, err := Option(creds)
	require.NoError(t, err, "accepted at start")
	o := nats.GetDefaultOptions()
	require.NoError(t, opt(&o))
	sent, err := o.UserJWT()
	require.NoError(t, err)
	assert.NotEqual(t, string(seed), sent, "the user's nkey seed is what goes to the server as the JWT")
	assert.Equal(t, token, sent)
}

// An operator's or an account's seed is not a user's credentials.
func TestNotAUsersSeed(t *testing.T) {
	for _, mk := range []func() (nkeys.KeyPair, error){nkeys.CreateOperator, nkeys.CreateAccount} {
		kp, err := mk()
		require.NoError(t, err)
		seed, err := kp.Seed()
		require.NoError(t, err)
		_, err = Option(string(seed))
		assert.Error(t, err, "%s... seed accepted as a lane's credentials", seed[:2])
	}
}

// A creds file whose JWT is another user's than its seed, or no JWT at
// all, is refused when posd's config is checked, not by the broker later.
func TestJWTOfAnotherUser(t *testing.T) {
	seedA, tokenA, credsA := newUser(t)
	seedB, _, _ := newUser(t)
	c := strings.Replace(credsA, string(seedA), string(seedB), 1)
	_, err := Option(strings.TrimSpace(c))
	assert.Error(t, err, "JWT of user A with the seed of user B")
	bad := strings.Replace(strings.TrimSpace(c), tokenA, "eyJnotajwt", 1)
	_, err = Option(bad)
	assert.Error(t, err, "a JWT block that is no JWT")
}

// A seed line with a blank at its end is read as the seed.
func TestSeedLineWithABlank(t *testing.T) {
	seed, _, creds := newUser(t)
	creds = strings.Replace(creds, string(seed)+"\n", string(seed)+" \n", 1)
	_, err := Option(strings.TrimSpace(creds))
	assert.NoError(t, err)
	_, err = Option(string(seed) + " \n")
	assert.NoError(t, err, "a bare seed with a blank")
}
