// Package httpguard is what stands between an HTTP listener of posd or
// posd-hq and whoever reaches it: the Guard (a Host that names the
// listener, no cross-origin request, state changes only as JSON, so a
// browser's page cannot drive it), the Lockout (wrong tokens limited per
// client, a local uid or a remote address, answered at once), and
// LimitListener (a connection cap that makes room at the cost of the
// client holding the most connections that did not show the token). It
// knows nothing of money: the API and head office's view both use it.
package httpguard
