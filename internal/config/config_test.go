package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const good = `
lanes:
  - id: L1
    device_info: POS01
    scanners: [{type: stdin}]
    displays: [{type: terminal}]
`

func TestDefaultsAndRepoConfig(t *testing.T) {
	c, err := Parse([]byte(good))
	require.NoError(t, err)
	_, err = c.Validate()
	require.NoError(t, err)
	assert.True(t, c.IsSandbox())
	assert.Equal(t, 5*time.Second, c.Confirm.QueryInterval)
	assert.Equal(t, 6, c.Confirm.QueryAttempts)
	assert.Equal(t, 10*time.Minute, c.Lanes[0].ChargeTTL)
	assert.Equal(t, "bar_code", c.Lanes[0].Scanners[0].Scene)
	assert.Len(t, c.Wallets, 2)

	c, warnings, err := Load("../../config.yaml")
	require.NoError(t, err, "the repository's config.yaml is what make run uses")
	assert.Empty(t, warnings)
	assert.EqualValues(t, 1, c.Lanes[0].FixedFee)
}

func TestParseErrors(t *testing.T) {
	for name, src := range map[string]string{
		"unknown key":        "lanes: []\nsurprise: 1\n",
		"unknown nested key": "gateway:\n  urll: x\n",
		"bad duration":       "gateway:\n  timeout: soon\n",
		"float money":        "lanes:\n  - id: L1\n    fixed_fee: 1.5\n",
		"not yaml":           "{[",
	} {
		_, err := Parse([]byte(src))
		assert.Error(t, err, name)
	}
}

// Every problem is named, all at once.
func TestValidateListsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	worldKey := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(worldKey, []byte("k"), 0o644))
	src := `
merchant:
  key_file: ` + worldKey + `
  store_id: "--"
  client_ip: nowhere
gateway:
  url: http://gateway.example.com/paygate/
  timeout: 0s
confirm:
  query_interval: 1s
  query_attempts: 0
  reverse_attempts: 0
journal:
  path: ""
api:
  listen: 0.0.0.0:8321
log:
  format: xml
  level: loud
wallets:
  - name: w
    pay_type: x
    prefixes: ["1a"]
    min_length: 18
    max_length: 18
lanes:
  - id: L1
    device_info: POS-01
    fixed_fee: 100
    max_fee: 50
    scanners: [{type: stdin}, {type: stdin, scene: face}]
    displays: [{type: hologram}]
  - id: L1
    device_info: POS01
    scanners: [{type: usb-magic}]
  - id: L3
    device_info: AVERYLONGDEVICENAMEINDEED
    body: ` + strings.Repeat("x", 200) + `
`
	c, err := Parse([]byte(src))
	require.NoError(t, err)
	_, err = c.Validate()
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{
		"https required", "merchant.id", "readable by others", "merchant.store_id", "merchant.client_ip",
		"gateway.timeout", "confirm.query_attempts", "confirm.reverse_attempts", "journal.path", "api.listen",
		"log.format", "log.level", "wallets", "two lanes with one id", "same device_info", "exceed",
		"over max_fee", "needs subject and body", "scene \"face\"", "hologram", "usb-magic", "stdin scanners", "body 128",
	} {
		assert.Contains(t, msg, want)
	}
	assert.Greater(t, strings.Count(msg, "\n  - "), 18, "one line per problem")
}

func TestWindowWarning(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(key, []byte("k\n"), 0o600))
	c, err := Parse([]byte(`
merchant: {id: M1, key_file: ` + key + `}
gateway: {url: "https://gw.example.com/paygate/"}
confirm: {query_interval: 10s, query_attempts: 6}
` + good))
	require.NoError(t, err)
	warnings, err := c.Validate()
	require.NoError(t, err)
	require.Len(t, warnings, 1)
	assert.Contains(t, warnings[0], "1m0s")
	k, err := ReadKey(key)
	require.NoError(t, err)
	assert.Equal(t, "k", k, "trailing newline trimmed")
}

func TestListen(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:8321": true, "localhost:1": true, "[::1]:80": true, "unix:/run/posd/api.sock": true,
		"0.0.0.0:8321": false, "192.0.2.1:80": false, ":8321": false, "unix:": false, "8321": false,
	} {
		assert.Equal(t, ok, checkListen(addr) == nil, addr)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	b, _ := os.ReadFile("../../config.yaml")
	f.Add(b)
	f.Add([]byte("lanes: [{id: x, fixed_fee: -1}]"))
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := Parse(src)
		if err != nil {
			return
		}
		_, _ = c.Validate() // never panics, whatever the file says
	})
}
