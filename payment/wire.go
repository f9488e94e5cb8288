package payment

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"unicode/utf8"
)

// Envelope is a decoded gateway answer. Data keeps every field of `data`
// as the text it is signed as, sorted by key, so that the signature can be
// checked without a second decode.
type Envelope struct {
	Code     int
	Msg      string
	Data     []Param
	HasData  bool
	SignType string
	Sign     string
}

// Get returns the signed text of a data field.
func (e *Envelope) Get(key string) (string, bool) {
	i := sort.Search(len(e.Data), func(i int) bool { return e.Data[i].Key >= key })
	if i < len(e.Data) && e.Data[i].Key == key {
		return e.Data[i].Value, true
	}
	return "", false
}

// Int returns a data field as an integer, accepting a number or a numeric
// string (the seed sends both forms).
func (e *Envelope) Int(key string) (int64, bool) {
	v, ok := e.Get(key)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

var errNotObject = errors.New("not a JSON object")

// DecodeEnvelope parses a response body. Numbers are kept as their wire
// text (never through float64) so the signature is computed over exactly
// what the gateway signed.
func DecodeEnvelope(body []byte) (Envelope, error) {
	var raw struct {
		Code     json.RawMessage `json:"code"`
		Msg      json.RawMessage `json:"msg"`
		Data     json.RawMessage `json:"data"`
		SignType string          `json:"sign_type"`
		Sign     string          `json:"sign"`
	}
	var env Envelope
	if err := json.Unmarshal(body, &raw); err != nil {
		return env, fmt.Errorf("decode response: %w", err)
	}
	code, err := scalarText(raw.Code)
	if err != nil || code == "" {
		return env, fmt.Errorf("decode response: code missing or not a scalar")
	}
	n, err := strconv.Atoi(code)
	if err != nil {
		return env, fmt.Errorf("decode response: code %q is not a number", code)
	}
	env.Code = n
	env.Msg, _ = anyText(raw.Msg)
	env.SignType, env.Sign = raw.SignType, raw.Sign
	if len(raw.Data) > 0 && !bytes.Equal(bytes.TrimSpace(raw.Data), []byte("null")) {
		env.Data, err = decodeData(raw.Data)
		if err != nil {
			return env, fmt.Errorf("decode response data: %w", err)
		}
		env.HasData = true
	}
	return env, nil
}

func decodeData(b []byte) ([]Param, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errNotObject
	}
	out := make([]Param, 0, len(m))
	for k, v := range m {
		text, err := anyText(v)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", k, err)
		}
		if text == "" {
			continue // null and "" are not signed, and carry nothing
		}
		out = append(out, Param{Key: k, Value: text})
	}
	slices.SortFunc(out, byKey)
	return out, nil
}

// scalarText renders a JSON string, number or bool as signed text.
func scalarText(v json.RawMessage) (string, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return "", nil
	}
	switch v[0] {
	case '"':
		var s string
		err := json.Unmarshal(v, &s)
		return s, err
	case '{', '[':
		return "", errors.New("not a scalar")
	default:
		return string(v), nil
	}
}

// anyText is scalarText that also accepts objects and arrays, rendered
// compactly (an upstream 600 error passes {err_code: err_msg} in msg).
func anyText(v json.RawMessage) (string, error) {
	v = bytes.TrimSpace(v)
	if len(v) > 0 && (v[0] == '{' || v[0] == '[') {
		var b bytes.Buffer
		if err := json.Compact(&b, v); err != nil {
			return "", err
		}
		return b.String(), nil
	}
	return scalarText(v)
}

// EncodeObject writes params as a JSON object in the order given, numbers
// as numbers and strings escaped as JSON requires; empty values are left out.
func EncodeObject(params []Param) []byte {
	buf := make([]byte, 0, 512)
	buf = append(buf, '{')
	for _, p := range params {
		if p.Value == "" {
			continue
		}
		if len(buf) > 1 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, p.Key)
		buf = append(buf, ':')
		if p.Num {
			buf = append(buf, p.Value...)
		} else {
			buf = appendJSONString(buf, p.Value)
		}
	}
	return append(buf, '}')
}

// EncodeBody is a request body: the params followed by their signature.
func EncodeBody(params []Param, sign string) []byte {
	return EncodeObject(append(params[:len(params):len(params)], Param{Key: "sign", Value: sign}))
}

func appendJSONString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			buf = append(buf, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', upperHex[c>>4], upperHex[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, `\ufffd`...)
		} else {
			buf = append(buf, s[i:i+size]...)
		}
		i += size
	}
	return append(buf, '"')
}

// ParamsFromJSON reads a flat JSON object (a request body) into params, as
// the sandbox and tests need to check a signature.
func ParamsFromJSON(body []byte) ([]Param, string, error) {
	ps, err := decodeData(body)
	if err != nil {
		return nil, "", err
	}
	var sig string
	out := ps[:0]
	for _, p := range ps {
		if p.Key == "sign" {
			sig = p.Value
			continue
		}
		out = append(out, p)
	}
	return out, sig, nil
}
