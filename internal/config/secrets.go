package config

import (
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// MaxSecretSize bounds a key or token file: a longer one is refused, never
// cut (a key cut short signs nothing the gateway accepts, and a long file
// is the wrong file).
const MaxSecretSize = 4096

// CredentialSourceDir is where the unit's LoadCredential= takes the
// credentials from (systemd/posd.service); a variable for tests.
var CredentialSourceDir = "/etc/posd"

// ReadKey reads the merchant key (see ReadSecret): the key signs payments.
func ReadKey(path string) (string, error) { return ReadSecret(path) }

// ReadSecret reads a key or token file. Symlinks are resolved first; the
// file must be a regular file of at most MaxSecretSize bytes, owned by root
// or by the user posd runs as, neither group- nor other-writable, and not
// readable by others (group-readable is fine: root:posd 0640). A FIFO or a
// device swapped in never blocks: the file is opened with O_NONBLOCK and
// checked through the open descriptor. ${CREDENTIALS_DIRECTORY} in the path
// is systemd's credentials directory (LoadCredential=). Every error is in
// ErrConfig's chain.
func ReadSecret(path string) (string, error) {
	key, err := readSecret(expandCredentials(path))
	if err != nil {
		return "", &configError{msg: err.Error(), err: err}
	}
	return key, nil
}

func expandCredentials(path string) string {
	if os.Getenv("CREDENTIALS_DIRECTORY") == "" {
		// Outside the service (posd check-config in a shell): judge the
		// file the service's credential is loaded from.
		for _, prefix := range []string{"${CREDENTIALS_DIRECTORY}/", "$CREDENTIALS_DIRECTORY/"} {
			if name, ok := strings.CutPrefix(path, prefix); ok {
				if src, ok := credentialSources[name]; ok {
					return src
				}
			}
		}
	}
	return os.Expand(path, func(v string) string {
		if v == "CREDENTIALS_DIRECTORY" {
			return os.Getenv(v)
		}
		return "${" + v + "}"
	})
}

// credentialSources maps a credential's name to the file the unit loads it
// from (LoadCredential=NAME:PATH), for a check made outside the service.
var credentialSources = map[string]string{}

// UseUnitCredentials reads the LoadCredential= lines of a systemd unit so
// that, outside the service, ${CREDENTIALS_DIRECTORY}/NAME is judged as
// the file the service will get. It returns what it mapped, for the
// operator to read.
func UseUnitCredentials(unit string) ([]string, error) {
	b, err := os.ReadFile(unit)
	if err != nil {
		return nil, err
	}
	var mapped []string
	for _, line := range strings.Split(string(b), "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "LoadCredential=")
		if !ok {
			continue
		}
		name, src, ok := strings.Cut(v, ":")
		if !ok || name == "" || src == "" {
			continue
		}
		credentialSources[name] = src
		mapped = append(mapped, fmt.Sprintf("${CREDENTIALS_DIRECTORY}/%s is %s (LoadCredential= in %s)", name, src, unit))
	}
	return mapped, nil
}

func readSecret(path string) (string, error) {
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", err
	}
	name := path
	if resolved != path {
		name = fmt.Sprintf("%s (-> %s)", path, resolved)
	}
	lfi, err := os.Lstat(resolved)
	if err != nil {
		return "", err
	}
	if !lfi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file (%s): point the key or token setting at the file itself", name, fileKind(lfi.Mode()))
	}
	// O_NOFOLLOW and the check of the descriptor: what is read is what was
	// checked, even if the file is swapped in between.
	f, err := os.OpenFile(resolved, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() || !os.SameFile(lfi, fi) {
		return "", fmt.Errorf("%s changed while posd opened it (now %s): try again", name, fileKind(fi.Mode()))
	}
	perm := fi.Mode().Perm()
	if perm&0o022 != 0 {
		return "", fmt.Errorf("%s is writable by group or others (mode %v): chmod go-w %s", name, perm, resolved)
	}
	if perm&0o004 != 0 {
		return "", fmt.Errorf("%s is readable by others (mode %v): chmod o-r %s", name, perm, resolved)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && !trustedOwner(int(st.Uid)) {
		return "", fmt.Errorf("%s is owned by uid %d, neither root nor the user posd runs as (uid %d): chown root %s", name, st.Uid, os.Geteuid(), resolved)
	}
	if fi.Size() > MaxSecretSize {
		return "", fmt.Errorf("%s is %d bytes, over the %d bytes a key or token may have: is it the right file?", name, fi.Size(), MaxSecretSize)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxSecretSize+1))
	if err != nil {
		return "", err
	}
	if len(b) > MaxSecretSize {
		return "", fmt.Errorf("%s is over the %d bytes a key or token may have: is it the right file?", name, MaxSecretSize)
	}
	key := strings.TrimSpace(string(b))
	if key == "" {
		return "", fmt.Errorf("%s is empty", name)
	}
	return key, nil
}

// ServiceUser is the system user the package runs posd as: a file it owns
// is trusted too (root checking the config with check-config for it).
const ServiceUser = "posd"

// trustedOwner: root, the user posd runs as, or ServiceUser.
func trustedOwner(uid int) bool {
	if uid == 0 || uid == os.Geteuid() {
		return true
	}
	u, err := user.Lookup(ServiceUser)
	return err == nil && u.Uid == strconv.Itoa(uid)
}

// CredentialWarning says what is wrong with the source of a systemd
// credential, or "". Under LoadCredential= posd sees a private copy in
// ${CREDENTIALS_DIRECTORY}, whose mode says nothing of the original; posd
// can still stat the original, CredentialSourceDir/<same name>, and warns
// when others can read it (or anyone but its owner can write it).
func CredentialWarning(setting, path string) string {
	dir := os.Getenv("CREDENTIALS_DIRECTORY")
	under := strings.HasPrefix(path, "${CREDENTIALS_DIRECTORY}/") || strings.HasPrefix(path, "$CREDENTIALS_DIRECTORY/")
	if !under && dir != "" {
		rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(expandCredentials(path)))
		under = err == nil && rel != "." && !strings.HasPrefix(rel, "..")
	}
	if !under {
		return ""
	}
	src := filepath.Join(CredentialSourceDir, filepath.Base(path))
	fi, err := os.Stat(src)
	if err != nil {
		return ""
	}
	switch perm := fi.Mode().Perm(); {
	case perm&0o004 != 0:
		return fmt.Sprintf("%s: the credential's source %s is readable by others (mode %v): chmod o-r %s", setting, src, perm, src)
	case perm&0o022 != 0:
		return fmt.Sprintf("%s: the credential's source %s is writable by group or others (mode %v): chmod go-w %s", setting, src, perm, src)
	}
	return ""
}

// checkPEMFile checks a certificate or key file before anything reads it: a
// regular file (a FIFO would hang the start, /dev/zero exhaust memory), at
// most 64 KiB, and, for a private key, neither readable by others nor
// writable by anyone but its owner.
func checkPEMFile(path string, secret bool) error {
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	fi, err := os.Stat(resolved)
	switch {
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", path)
	case fi.Size() > 64<<10:
		return fmt.Errorf("%s is %d bytes: not a certificate or key", path, fi.Size())
	case secret && fi.Mode().Perm()&0o026 != 0:
		return fmt.Errorf("%s is a private key with mode %v: chmod 0600 (or 0640 for root:posd)", path, fi.Mode().Perm())
	}
	return nil
}

// MinTokenLen is the shortest API token posd accepts.
const MinTokenLen = 32
