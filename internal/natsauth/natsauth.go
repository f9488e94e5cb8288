// Package natsauth reads the credentials posd and posd-hq connect to NATS
// with: a NATS creds file (a user JWT and its user nkey seed, operator
// mode) or a bare user nkey seed (a server whose config lists the user's
// public key, as docs/fleet's do). It is strict: what a server would
// refuse, or what is not a user's key, is an error when posd's config is
// checked, not a broker refusing it forever.
package natsauth

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Option authenticates a connection with the content of a credentials
// file. The seed is parsed again for each signature rather than kept as
// a key pair (nkeys wipes its copy after), though the file's content
// itself stays in memory, as a Go string does.
func Option(creds string) (nats.Option, error) {
	clean := normalize(creds)
	kp, err := nkeys.ParseDecoratedUserNKey(clean)
	if err != nil {
		return nil, fmt.Errorf("no user nkey seed (SU…) in the credentials: %w", err)
	}
	pub, err := kp.PublicKey()
	kp.Wipe()
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	sign := func(nonce []byte) ([]byte, error) {
		kp, err := nkeys.ParseDecoratedUserNKey(clean)
		if err != nil {
			return nil, err
		}
		defer kp.Wipe()
		return kp.Sign(nonce)
	}
	if !bytes.Contains(clean, []byte("BEGIN NATS USER JWT")) {
		return nats.Nkey(pub, sign), nil
	}
	token, err := nkeys.ParseDecoratedJWT(clean)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	claims, err := jwt.DecodeUserClaims(token)
	if err != nil {
		return nil, errors.New("credentials: the JWT block holds no user JWT")
	}
	if claims.Subject != pub {
		return nil, errors.New("credentials: the JWT is another user's than the seed")
	}
	return nats.UserJWT(func() (string, error) { return token, nil }, sign), nil
}

// normalize trims each line: a blank pasted at a line's end would make
// the block unreadable, or leave the seed where the JWT is looked for.
func normalize(creds string) []byte {
	lines := bytes.Split([]byte(creds), []byte("\n"))
	for i, l := range lines {
		lines[i] = bytes.TrimSpace(l)
	}
	return bytes.Join(lines, []byte("\n"))
}
