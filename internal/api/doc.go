// Package api is the local HTTP API the till talks to: JSON both ways, on
// loopback or a unix socket (or, when the config says so, the store's
// network). A till opens a charge (POST /v1/charges, with an
// Idempotency-Key so that a retried request opens one charge), follows it
// with a long-poll (GET /v1/charges/{id}?wait=30s) or the event stream
// (GET /v1/events), cancels or refunds it, and resolves an order that needs
// attention. A till that reads the scanner itself posts the code to
// /v1/lanes/{lane}/scans, and it takes the same path as one from a posd
// scanner.
//
// Handlers only translate: they decode strictly (an unknown field is an
// error), call lane.Service, and map its errors to status codes (404,
// 409, 422, 503). The package keeps no state about charges or orders and
// never calls the gateway, the poller or the journal itself.
//
// What it does decide is who may ask. The box runs a browser for the web
// customer display, so Guard keeps browsers out: the Host must name the
// listener, a foreign Origin is refused, a state change must be
// application/json, and no CORS header is ever sent. A token, when set, is
// required for every route that changes state or shows order details; it is
// compared in constant time, and each client (a local uid, a LAN address)
// may try a few wrong ones a second (Lockout): past that it is refused
// without the token being compared, while a valid token never waits. On a TCP listener, routes that move money are refused
// without a token unless the config allows it. Serve gives every connection
// read, write and idle timeouts and shuts down when its context ends.
package api
