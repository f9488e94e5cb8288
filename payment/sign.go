package payment

import (
	"crypto/md5"
	"crypto/subtle"
	"slices"
	"strings"
)

// Param is one request or response parameter with its value exactly as it
// is signed: strings raw, numbers as their decimal text on the wire.
type Param struct {
	Key   string
	Value string
	// Num marks a value that travels as a JSON number rather than a string.
	Num bool
}

func byKey(a, b Param) int { return strings.Compare(a.Key, b.Key) }

const upperHex = "0123456789ABCDEF"

// Sign returns the upper-case hex MD5 signature of params under key, as
// docs/protocol.md, "Signing", defines it: empty values dropped, keys in
// byte order, k=v joined with '&', then "&key=KEY". params is sorted in
// place if it is not sorted already; the request builders emit sorted
// lists so that the hot path never sorts.
func Sign(params []Param, key string) string {
	var out [32]byte
	signInto(&out, params, key)
	return string(out[:])
}

func signInto(out *[32]byte, params []Param, key string) {
	if !slices.IsSortedFunc(params, byKey) {
		slices.SortFunc(params, byKey)
	}
	var stack [1024]byte
	buf := appendSignString(stack[:0], params, key)
	sum := md5.Sum(buf)
	for i, b := range sum {
		out[2*i] = upperHex[b>>4]
		out[2*i+1] = upperHex[b&0x0f]
	}
}

// SignString returns the string that is hashed, for tests and diagnostics.
// It contains the key: never log it.
func SignString(params []Param, key string) string {
	p := slices.Clone(params)
	slices.SortFunc(p, byKey)
	return string(appendSignString(nil, p, key))
}

func appendSignString(buf []byte, params []Param, key string) []byte {
	for _, p := range params {
		if p.Value == "" || p.Key == "sign" {
			continue
		}
		buf = append(buf, p.Key...)
		buf = append(buf, '=')
		buf = append(buf, p.Value...)
		buf = append(buf, '&')
	}
	buf = append(buf, "key="...)
	return append(buf, key...)
}

// Verify reports whether sig is the signature of params under key. The
// comparison is constant-time and accepts lower-case hex.
func Verify(params []Param, key, sig string) bool {
	if len(sig) != 32 {
		return false
	}
	var want [32]byte
	signInto(&want, params, key)
	var got [32]byte
	for i := range 32 {
		c := sig[i]
		if 'a' <= c && c <= 'f' {
			c -= 'a' - 'A'
		}
		got[i] = c
	}
	return subtle.ConstantTimeCompare(want[:], got[:]) == 1
}
