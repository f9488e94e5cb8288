package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ' is legal in a URL's userinfo (url.Parse accepts it) but stops the
// redaction regexp: the password is printed whole.
func TestRedactionCoversQuotesAndSpaces(t *testing.T) {
	for _, u := range []string{"https://user:se'cret@gw.example/", "https://tok'secret@gw.example/", "https://user:pa ss@gw.example/"} {
		assert.NotContains(t, RedactURLs(u), "cret", u)
		assert.NotContains(t, RedactURLs(u), "pa ss", u)
	}
	// and through check-config's error path
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(key, []byte("k"), 0o600))
	path := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
merchant: {id: M1, key_file: `+key+`}
gateway: {url: "http://user:se'cret@gw.example/"}
`+good), 0o600))
	_, _, err := Load(path)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "se'cret", err.Error())
}

// The API's TLS files and the gateway's CA are checked like the secrets:
// a FIFO or /dev/zero never reaches a reader, a world-readable key is
// refused, and check-config says so (exit 78) instead of a start that
// fails and is restarted forever.
func TestTLSAndCAFilesChecked(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "cert.pem")
	key := filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(cert, []byte("-----BEGIN CERTIFICATE-----\n"), 0o644))
	require.NoError(t, os.WriteFile(key, []byte("-----BEGIN PRIVATE KEY-----\n"), 0o644))
	src := "api:\n  tls_cert_file: " + cert + "\n  tls_key_file: " + key + "\ngateway:\n  ca_file: /dev/zero\n" + good
	c, err := Parse([]byte(src))
	require.NoError(t, err)
	_, err = c.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "api.tls_key_file")
	assert.Contains(t, err.Error(), "chmod 0600")
	assert.Contains(t, err.Error(), "gateway.ca_file: /dev/zero is not a regular file")
	assert.NotContains(t, err.Error(), "api.tls_cert_file", "a certificate may be world-readable")
}
