package config

import (
	"example.com/posd/internal/secret"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nkeys"
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

// within runs f and fails the test if it has not returned after d: a FIFO
// must be refused, not read.
func within(t *testing.T, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("still blocked after %s", d)
	}
}

func TestReadSecretRefuses(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		require.NoError(t, os.Chmod(p, mode)) // not masked by the umask
		return p
	}
	good := file("good", "k\n", 0o600)
	k, err := ReadSecret(good)
	require.NoError(t, err)
	assert.Equal(t, "k", k)
	k, err = ReadSecret(file("group-readable", "g", 0o640))
	require.NoError(t, err, "root:posd 0640 is how the package installs it")
	assert.Equal(t, "g", k)
	_, err = ReadSecret(file("max", strings.Repeat("k", MaxSecretSize), 0o400))
	require.NoError(t, err, "exactly the bound")

	goodLink := filepath.Join(dir, "good-link")
	require.NoError(t, os.Symlink(good, goodLink))
	k, err = ReadSecret(goodLink)
	require.NoError(t, err, "a symlink to a good file")
	assert.Equal(t, "k", k)

	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	fifoLink := filepath.Join(dir, "fifo-link")
	require.NoError(t, os.Symlink(fifo, fifoLink))
	worldLink := filepath.Join(dir, "world-link")
	require.NoError(t, os.Symlink(file("world-target", "k", 0o644), worldLink))

	for name, c := range map[string]struct {
		path string
		want []string
	}{
		"group-writable":      {file("gw", "k", 0o620), []string{"writable by group or others", "-rw--w----", "chmod go-w"}},
		"other-writable":      {file("ow", "k", 0o602), []string{"writable by group or others", "chmod go-w"}},
		"other-readable":      {file("or", "k", 0o644), []string{"readable by others", "chmod o-r"}},
		"too long, not cut":   {file("long", strings.Repeat("k", 1400*1024), 0o600), []string{"1433600 bytes", "4096"}},
		"one byte too long":   {file("long1", strings.Repeat("k", MaxSecretSize+1), 0o600), []string{"4097 bytes"}},
		"empty":               {file("empty", "\n", 0o600), []string{"is empty"}},
		"FIFO":                {fifo, []string{"not a regular file", "a FIFO"}},
		"symlink to a FIFO":   {fifoLink, []string{"not a regular file", "-> " + fifo}},
		"symlink to o+r file": {worldLink, []string{"readable by others", "world-link (-> ", "chmod o-r " + filepath.Join(dir, "world-target")}},
		"directory":           {dir, []string{"not a regular file", "a directory"}},
		"device":              {"/dev/null", []string{"not a regular file", "a character device"}},
		"missing":             {filepath.Join(dir, "nope"), []string{"no such file"}},
	} {
		within(t, 5*time.Second, func() {
			_, err := ReadSecret(c.path)
			require.Error(t, err, name)
			assert.ErrorIs(t, err, ErrConfig, name)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w, name)
			}
			assert.Contains(t, err.Error(), c.path, "%s: the message names the file", name)
		})
	}
}

func TestReadSecretRefusesAnotherOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIP: only root can give a file to another user (uid 65534); run the tests as root to cover this")
	}
	p := filepath.Join(t.TempDir(), "theirs")
	require.NoError(t, os.WriteFile(p, []byte("k"), 0o600))
	require.NoError(t, os.Chown(p, 65534, 65534))
	_, err := ReadSecret(p)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "owned by uid 65534")
	assert.Contains(t, err.Error(), "chown root "+p)
	require.NoError(t, os.Chown(p, 0, 65534))
	_, err = ReadSecret(p)
	assert.NoError(t, err, "owned by root, group anyone")
}

// Under systemd the key is a credential: its copy's mode says nothing, so
// posd looks at the source file and warns.
func TestCredentialSourceWarning(t *testing.T) {
	creds, etc := t.TempDir(), t.TempDir()
	t.Setenv("CREDENTIALS_DIRECTORY", creds)
	old := secret.CredentialSourceDir
	secret.CredentialSourceDir = etc
	t.Cleanup(func() { secret.CredentialSourceDir = old })
	require.NoError(t, os.WriteFile(filepath.Join(creds, "merchant.key"), []byte("k"), 0o400))
	src := filepath.Join(etc, "merchant.key")
	require.NoError(t, os.WriteFile(src, []byte("k"), 0o600))
	require.NoError(t, os.Chmod(src, 0o644))
	cfg := func(keyFile string) Config {
		c, err := Parse([]byte("merchant: {key_file: \"" + keyFile + "\"}\n" + good))
		require.NoError(t, err)
		return c
	}
	for _, keyFile := range []string{"${CREDENTIALS_DIRECTORY}/merchant.key", filepath.Join(creds, "merchant.key")} {
		c := cfg(keyFile)
		warnings, err := c.Validate()
		require.NoError(t, err)
		require.Len(t, warnings, 1, keyFile)
		assert.Contains(t, warnings[0], "merchant.key_file")
		assert.Contains(t, warnings[0], src+" is readable by others")
		assert.Contains(t, warnings[0], "chmod o-r "+src)
	}

	require.NoError(t, os.Chmod(src, 0o640))
	c := cfg("${CREDENTIALS_DIRECTORY}/merchant.key")
	warnings, err := c.Validate()
	require.NoError(t, err)
	assert.Empty(t, warnings, "root:posd 0640 at the source is fine")

	require.NoError(t, os.Chmod(src, 0o644))
	other := filepath.Join(t.TempDir(), "merchant.key")
	require.NoError(t, os.WriteFile(other, []byte("k"), 0o600))
	c = cfg(other)
	warnings, err = c.Validate()
	require.NoError(t, err)
	assert.Empty(t, warnings, "not a credential: the file itself was checked")
}

func TestLoadRefusesWhatIsNotAFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	big := filepath.Join(dir, "big.yaml")
	require.NoError(t, os.WriteFile(big, append([]byte(good), make([]byte, MaxConfigSize)...), 0o600))
	for path, want := range map[string]string{
		"/dev/zero": "a character device",
		fifo:        "a FIFO",
		dir:         "a directory",
		big:         "over the 1048576 bytes",
	} {
		within(t, 5*time.Second, func() {
			_, _, err := Load(path)
			require.Error(t, err, path)
			assert.ErrorIs(t, err, ErrConfig, path)
			assert.Contains(t, err.Error(), path)
			assert.Contains(t, err.Error(), want)
		})
	}
	_, _, err := Load(filepath.Join(dir, "missing.yaml"))
	assert.ErrorIs(t, err, ErrConfig)
	assert.ErrorIs(t, err, os.ErrNotExist, "the cause is still there")
}

func TestURLCredentialsRedacted(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:secret@gw.example/":              "https://user:xxxxx@gw.example/",
		`gateway.url "http://u:secret@gw.example/x": `: `gateway.url "http://u:xxxxx@gw.example/x": `,
		"https://tokensecret@gw.example/pay":           "https://xxxxx@gw.example/pay",
		"https://user:pa/secret@gw.example/":           "https://user:xxxxx@gw.example/",
		"https://gw.example/pay?token=abc":             "https://gw.example/pay?token=abc",
		"sandbox":                                      "sandbox",
		"a https://a:secret@x/ and https://b:secret@y": "a https://a:xxxxx@x/ and https://b:xxxxx@y",
	} {
		assert.Equal(t, want, RedactURLs(in))
	}

	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(key, []byte("k"), 0o600))
	for _, u := range []string{"https://user:secret@gw.example/", "http://user:secret@gw.example/", "https://user:secret@gw.example:bad/", "https://FILL-IN:secret@gw.example/"} {
		path := filepath.Join(dir, "config.yaml")
		require.NoError(t, os.WriteFile(path, []byte(`
merchant: {id: M1, key_file: `+key+`}
gateway: {url: "`+u+`"}
confirm: {query_interval: 1s}
`+good), 0o600))
		_, warnings, err := Load(path)
		require.NotEmpty(t, warnings, u)
		all := strings.Join(warnings, "\n")
		if err != nil {
			all += err.Error()
		}
		assert.NotContains(t, all, "secret", u)
	}
}

// fleet.credentials_file is read as NATS will use it: a file that holds no
// user's seed (or a JWT of another user) is a configuration error that
// check-config names, not a broker refusing posd forever.
func TestFleetCredentials(t *testing.T) {
	dir := t.TempDir()
	check := func(content string) error {
		path := filepath.Join(dir, "fleet.nk")
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		c, err := Parse([]byte(good + "fleet: {url: \"nats://127.0.0.1:4222\", credentials_file: " + path + "}\n"))
		require.NoError(t, err)
		_, err = c.Validate()
		return err
	}
	err := check("not a seed\n")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "fleet.credentials_file")
	// A user's seed, as `nk -gen user` writes it, with a pasted blank.
	assert.NoError(t, check("SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY \n"))
	op, err := nkeys.CreateOperator()
	require.NoError(t, err)
	seed, err := op.Seed()
	require.NoError(t, err)
	assert.Error(t, check(string(seed)+"\n"), "an operator's seed")
}

// The journal's second witness must be away from the journal's folder (a
// copy of the folder brings back what is in it); under systemd it goes to
// the unit's cache directory by default.
func TestWitnessAwayFromTheJournal(t *testing.T) {
	c, err := Parse([]byte("journal:\n  path: /var/lib/posd/journal.db\n  witness_path: /var/lib/posd/journal.witness\n"))
	require.NoError(t, err)
	_, err = c.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "journal.witness_path")

	t.Setenv("CACHE_DIRECTORY", "/var/cache/posd")
	assert.Equal(t, "/var/cache/posd/journal.witness", Default().Journal.WitnessPath)
	t.Setenv("CACHE_DIRECTORY", "")
	assert.Empty(t, Default().Journal.WitnessPath)
}
