package httpguard

import (
	"encoding/json"
	"net/http"
)

// The kinds of an error answer: one per meaning, a closed list (the README
// and docs/openapi.yaml give it), so that a till can act on the kind
// alone. Each goes with one status.
const (
	KindMalformed            = "malformed"              // 400: the body is not one JSON object
	KindUnauthorized         = "unauthorized"           // 401: no valid bearer token
	KindForbidden            = "forbidden"              // 403: a cross-origin page, or money on a listener without a token
	KindNotFound             = "not_found"              // 404: no such route, charge, refund, order or lane
	KindMethodNotAllowed     = "method_not_allowed"     // 405: the route exists, not with this method (Allow names those it has)
	KindConflict             = "conflict"               // 409: the state forbids it now (a lane busy, a code used)
	KindTooLarge             = "too_large"              // 413: a body over its limit
	KindUnsupportedMediaType = "unsupported_media_type" // 415: a body that is not application/json
	KindMisdirected          = "misdirected"            // 421: a Host header that is not this listener
	KindInvalid              = "invalid"                // 422: a value refused; field names it
	KindTooManyRequests      = "too_many_requests"      // 429: too many wrong tokens, connections or streams (Retry-After)
	KindOutOfService         = "out_of_service"         // 503: the lane, or posd, takes no payment now
	KindInternal             = "internal"               // 500: posd's own failure, logged
)

// Kinds lists every kind, for the documents and the tests that hold them
// to it.
var Kinds = []string{KindMalformed, KindUnauthorized, KindForbidden, KindNotFound, KindMethodNotAllowed, KindConflict,
	KindTooLarge, KindUnsupportedMediaType, KindMisdirected, KindInvalid, KindTooManyRequests, KindOutOfService, KindInternal}

// Error is the body of every error answer.
type Error struct {
	Error string `json:"error"`
	Kind  string `json:"kind"`
	// Field is the request field at fault (a body field, a query
	// parameter or a header), for an invalid value.
	Field string `json:"field,omitempty"`
}

// WriteError answers with e as JSON.
func WriteError(w http.ResponseWriter, code int, e Error) {
	b, _ := json.Marshal(e)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Del("Content-Length")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
