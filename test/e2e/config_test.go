package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"example.com/posd/test/harness"
)

// runPosdWithin runs posd and kills it after d: a config that hangs posd
// fails the test instead of the suite.
func runPosdWithin(t *testing.T, d time.Duration, args ...string) (string, int, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, posdBin, args...).CombinedOutput()
	took := time.Since(start)
	require.NoError(t, ctx.Err(), "posd %v still running after %s:\n%s", args, d, out)
	code := 0
	if err != nil {
		code = exitCode(err)
	}
	return string(out), code, took
}

// A config path that is not a regular file is refused at once with
// EX_CONFIG: /dev/zero used to eat all memory, a FIFO to hang.
func TestCheckConfigRefusesWhatIsNotAFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "config.fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	big := filepath.Join(dir, "big.yaml")
	require.NoError(t, os.WriteFile(big, []byte(strings.Repeat("# padding\n", 200_000)), 0o600))
	for path, want := range map[string]string{
		"/dev/zero": "not a regular file (a character device)",
		fifo:        "not a regular file (a FIFO)",
		big:         "over the 1048576 bytes",
	} {
		for _, cmd := range []string{"check-config", "run"} {
			out, code, took := runPosdWithin(t, 20*time.Second, cmd, "-config", path)
			assert.Equal(t, 78, code, "%s %s: %s", cmd, path, out)
			assert.Contains(t, out, want, "%s %s", cmd, path)
			assert.Less(t, took, 10*time.Second, "%s %s refused quickly", cmd, path)
		}
	}
}

// A token file others could change is refused when posd starts: EX_CONFIG,
// naming the file and the fix, and systemd does not restart it.
func TestCheckConfigRefusesGroupWritableToken(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "api.token")
	require.NoError(t, os.WriteFile(token, []byte(strings.Repeat("t", 40)+"\n"), 0o600))
	require.NoError(t, os.Chmod(token, 0o620))
	cfg := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
journal: {path: `+filepath.Join(dir, "journal.db")+`}
api: {listen: "unix:`+filepath.Join(dir, "api.sock")+`", token_file: `+token+`}
lanes:
  - id: L1
    device_info: POS01
    scanners: [{type: stdin}]
    displays: [{type: terminal}]
`), 0o600))
	for _, cmd := range []string{"run", "check-config"} {
		out, code, _ := runPosdWithin(t, 20*time.Second, cmd, "-config", cfg)
		assert.Equal(t, 78, code, "%s: %s", cmd, out)
		assert.Contains(t, out, token+" is writable by group or others", cmd)
		assert.Contains(t, out, "chmod go-w "+token, cmd)
	}
	require.NoError(t, os.Chmod(token, 0o600))
	out, code, _ := runPosdWithin(t, 20*time.Second, "check-config", "-config", cfg)
	assert.Equal(t, 0, code, out)
}

// check-config never prints the credentials of a URL, whether the config
// is good or not.
func TestCheckConfigRedactsURLCredentials(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "merchant.key")
	require.NoError(t, os.WriteFile(key, []byte("k\n"), 0o600))
	lanes := `
lanes:
  - id: L1
    device_info: POS01
    scanners: [{type: stdin}]
    displays: [{type: terminal}]
`
	for name, c := range map[string]struct {
		url  string
		code int
		want string
	}{
		"good":      {"https://user:secret@gw.example/", 0, "gateway https://user:xxxxx@gw.example/"},
		"plainhttp": {"http://user:secret@gw.example/", 78, "https required"},
		"bad port":  {"https://user:secret@gw.example:port/", 78, `"sandbox" or an https:// base URL`},
	} {
		cfg := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yaml")
		require.NoError(t, os.WriteFile(cfg, []byte(`
merchant: {id: M1, key_file: `+key+`}
gateway: {url: "`+c.url+`"}
confirm: {query_interval: 1s}
`+lanes), 0o600))
		for _, cmd := range []string{"check-config", "run"} {
			if cmd == "run" && c.code == 0 {
				continue // it would start
			}
			out, code, _ := runPosdWithin(t, 20*time.Second, cmd, "-config", cfg)
			assert.Equal(t, c.code, code, "%s %s: %s", cmd, name, out)
			assert.Contains(t, out, c.want, "%s %s", cmd, name)
			if cmd == "check-config" {
				assert.Contains(t, out, "queries span 6s", "%s: the warnings are printed too", name)
			}
			assert.NotContains(t, out, "secret", "%s %s", cmd, name)
		}
	}
}

// check-config in a shell judges the config as the service sees it: the
// credential is the file the unit's LoadCredential= loads.
func TestCheckConfigResolvesCredentialsFromTheUnit(t *testing.T) {
	t.Parallel()
	g := startSandbox(t)
	d := newDaemon(t, g, opts{})
	key := filepath.Join(d.dir, keyFileName)
	cfg := strings.Replace(harness.ReadFile(t, d.cfg), "key_file: "+key, "key_file: ${CREDENTIALS_DIRECTORY}/merchant.key", 1)
	require.NoError(t, os.WriteFile(d.cfg, []byte(cfg), 0o600))
	unit := filepath.Join(d.dir, "posd.service")
	require.NoError(t, os.WriteFile(unit, []byte("[Service]\nLoadCredential=merchant.key:"+key+"\n"), 0o644))

	cmd := exec.Command(posdBin, "check-config", "-config", d.cfg, "-unit", unit)
	cmd.Env = append(os.Environ(), "CREDENTIALS_DIRECTORY=")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "${CREDENTIALS_DIRECTORY}/merchant.key is "+key)

	require.NoError(t, os.Chmod(key, 0o644))
	cmd = exec.Command(posdBin, "check-config", "-config", d.cfg, "-unit", unit)
	cmd.Env = append(os.Environ(), "CREDENTIALS_DIRECTORY=")
	out, err = cmd.CombinedOutput()
	assert.Equal(t, 78, exitCode(err), "the source the service would load is readable by others: %s", out)
}
