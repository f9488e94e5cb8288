// Package deps states the rules of posd's package graph
// (docs/architecture.md), each with its reason; its test checks the whole
// module against them, so a rule broken fails `go test` naming it.
package deps

import (
	"fmt"
	"sort"
	"strings"
)

// Module is the module's path.
const Module = "example.com/posd"

// A Rule forbids packages matching From to depend, directly or not, on
// any of Not.
type Rule struct {
	From []string // package paths under Module; a trailing /... takes the subtree
	Not  []string // package paths under Module, each exactly
	Why  string
}

// Rules are posd's.
var Rules = []Rule{
	{From: []string{"scanner/..."}, Not: []string{"payment", "poller", "internal/money", "internal/journal", "internal/lane", "display", "internal/api"},
		Why: "a reader knows nothing of money: it turns a device's bytes into a code and hands it on"},
	{From: []string{"payment"}, Not: []string{"scanner", "display", "internal/device", "internal/journal", "internal/lane", "poller", "internal/api"},
		Why: "the protocol knows no devices, lanes or journal: it signs, sends and classifies"},
	{From: []string{"display"}, Not: []string{"poller", "internal/lane", "internal/journal", "internal/api", "internal/daemon"},
		Why: "a display never calls back: not the poller that calls the gateway, not the lanes, not the journal"},
	{From: []string{"internal/hq", "cmd/posd-hq"}, Not: []string{"payment", "poller", "scanner", "display", "internal/money", "internal/journal",
		"internal/lane", "internal/api", "internal/config", "internal/fleet", "internal/daemon"},
		Why: "head office imports nothing of the box's money path: it trusts no box, and a change there must not move it"},
	{From: []string{"internal/money"}, Not: []string{"internal/journal", "poller", "internal/lane", "internal/api"},
		Why: "the house's vocabulary knows no storage and no flow"},
	{From: []string{"internal/journal"}, Not: []string{"poller", "internal/lane", "internal/api", "scanner", "display"},
		Why: "the journal stores the house's records; it knows none of its callers"},
	{From: []string{"poller"}, Not: []string{"internal/lane", "internal/api", "scanner", "display"},
		Why: "the poller drives orders at the gateway; it knows no lane, device or display"},
	{From: []string{"..."}, Not: []string{"internal/daemon"},
		Why: "only the commands wire posd together (cmd/posd imports the daemon; nothing else may)"},
	{From: []string{"cmd/...", "internal/...", "payment/...", "poller/...", "scanner/...", "display/..."}, Not: []string{"test/harness"},
		Why: "what ships never depends on the system tests' harness"},
}

// exempt are the packages the catch-all rules leave out: the daemon's
// own command.
var exempt = map[string]bool{"cmd/posd": true, "internal/daemon": true}

// Check returns every rule broken in graph (a package's path under Module
// to every package it depends on, directly or not), one line each.
func Check(graph map[string][]string) []string {
	var broken []string
	for pkg, deps := range graph {
		for _, r := range Rules {
			if !matches(r.From, pkg) {
				continue
			}
			for _, d := range deps {
				for _, not := range r.Not {
					if d == not {
						broken = append(broken, fmt.Sprintf("%s depends on %s: %s", pkg, d, r.Why))
					}
				}
			}
		}
	}
	sort.Strings(broken)
	return broken
}

func matches(from []string, pkg string) bool {
	for _, f := range from {
		switch {
		case f == "...":
			if !exempt[pkg] {
				return true
			}
		case strings.HasSuffix(f, "/..."):
			if base := strings.TrimSuffix(f, "/..."); pkg == base || strings.HasPrefix(pkg, base+"/") {
				return true
			}
		case pkg == f:
			return true
		}
	}
	return false
}
