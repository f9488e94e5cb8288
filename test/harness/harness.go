// Package harness is what posd's system tests share: the tools a test
// needs and how it skips without them, the posd binaries built once, an
// API client over posd's unix socket, waiting, and the check that no log
// of any process a suite started holds a secret.
//
// The tests themselves live in rooms beside it, one per kind of machine
// they need: test/e2e runs posd and its sandbox gateway as processes on
// this machine, test/qemu boots a kernel with real USB drivers, and
// test/box installs the Debian package in a Debian with systemd.
//
// # Skips
//
// A test that needs what a fresh machine lacks (QEMU, Chromium,
// PostgreSQL, root) skips loudly, naming the Debian package, and make test
// lists it at the end. Under POSD_REQUIRE_ALL=1 (CI, which installs them)
// such a skip is a failure.
//
// # Secrets
//
// Every process output a test captures is made with [NewOutput], and every
// payment code with [NewCode]; a suite's TestMain ends with
// [CheckSecrets], which fails the suite if any output holds a full code,
// the merchant key or anything shaped like a signature.
package harness
