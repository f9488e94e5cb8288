// Package reconcile holds a day's orders against the gateway: every order
// of the day is queried (at a bounded rate, resumable after a restart), and
// every disagreement between the journal and the gateway is listed and
// counted. Nothing is changed: an order the journal still drives is left
// to the poller (it reaches its final state by the normal machinery), and
// a disagreement is for an operator to look into.
package reconcile
