package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// listen addresses that must not start without a token, and the
// loopback forms that may.
func TestViewTokenForms(t *testing.T) {
	for _, listen := range []string{"[::ffff:127.0.0.1]:8322", "127.0.0.2:8322", "[0:0:0:0:0:0:0:1]:8322"} {
		_, err := viewToken(listen, "")
		assert.NoError(t, err, listen)
	}
	for _, listen := range []string{"localhost.:8322", "LOCALHOST:8322", "[::]:8322", "[::1%lo]:8322", "[fe80::1%eth0]:8322",
		"0:8322", "0.0.0.0:0", "127.1:8322", "localhost.localdomain:8322", "127.0.0.1", "[::ffff:0.0.0.0]:8322", "::1:8322"} {
		_, err := viewToken(listen, "")
		assert.Error(t, err, listen)
	}
}
