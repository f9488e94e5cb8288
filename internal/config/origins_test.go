package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// api.allowed_origins takes exact origins: https, or plain http for a
// till developed on this machine; nothing else opens the API to pages.
func TestAllowedOrigins(t *testing.T) {
	for _, o := range []string{"https://till.example", "https://till.example:8443", "http://localhost:5173", "http://127.0.0.1:3000", "http://[::1]:8080"} {
		assert.NoError(t, checkOrigin(o), o)
	}
	for _, o := range []string{"http://till.example", "https://*.example", "https://till.example/", "https://till.example/pos",
		"till.example", "https://user@till.example", "https://till.example?x=1", "*", "null", "file://", "",
		"https://TILL.example", "https://till.example:443", "http://localhost:80", "http://localhost:0", "http://localhost:99999", "https://till.example:08443"} {
		assert.Error(t, checkOrigin(o), o)
	}

	token := filepath.Join(t.TempDir(), "api.token")
	require.NoError(t, os.WriteFile(token, []byte(strings.Repeat("t", 40)), 0o600))
	c, _, err := Load("../../config.yaml")
	require.NoError(t, err)
	c.API.Listen = "127.0.0.1:8321"
	c.API.AllowedOrigins = []string{"https://till.example"}
	_, err = c.Validate()
	require.Error(t, err, "a browser till without a token")
	assert.Contains(t, err.Error(), "api.token_file")
	c.API.TokenFile = token
	_, err = c.Validate()
	assert.NoError(t, err)
	c.API.Listen = "unix:/run/posd/api.sock"
	_, err = c.Validate()
	require.Error(t, err, "no browser reaches a unix socket")
	c.API.Listen = "127.0.0.1:8321"
	c.API.AllowedOrigins = []string{"https://till.example/pos"}
	_, err = c.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "api.allowed_origins")
}
