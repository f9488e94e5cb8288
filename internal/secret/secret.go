// Package secret reads the files that hold secrets (the merchant key, a
// token, NATS credentials) the one strict way: a regular file, not
// readable by others, owned by root or by posd, bounded in size; and
// systemd's credentials (LoadCredential=) as the service will see them.
// posd's config and posd-hq both read theirs through it.
package secret

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

// MaxSize bounds a key or token file: a longer one is refused, never
// cut (a key cut short signs nothing the gateway accepts, and a long file
// is the wrong file).
const MaxSize = 4096

// CredentialSourceDir is where the unit's LoadCredential= takes the
// credentials from (systemd/posd.service); a variable for tests.
var CredentialSourceDir = "/etc/posd"

// Read reads a key or token file. Symlinks are resolved first; the
// file must be a regular file of at most MaxSize bytes, owned by root
// or by the user posd runs as, neither group- nor other-writable, and not
// readable by others (group-readable is fine: root:posd 0640). A FIFO or a
// device swapped in never blocks: the file is opened with O_NONBLOCK and
// checked through the open descriptor. ${CREDENTIALS_DIRECTORY} in the path
// is systemd's credentials directory (LoadCredential=).
func Read(path string) (string, error) { return readSecret(Expand(path)) }

// Expand resolves ${CREDENTIALS_DIRECTORY} in path: under the service,
// systemd's directory; outside it, the file the unit loads the credential
// from (UseUnitCredentials).
func Expand(path string) string {
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
		return "", fmt.Errorf("%s is not a regular file (%s): point the key or token setting at the file itself", name, FileKind(lfi.Mode()))
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
		return "", fmt.Errorf("%s changed while posd opened it (now %s): try again", name, FileKind(fi.Mode()))
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
	if fi.Size() > MaxSize {
		return "", fmt.Errorf("%s is %d bytes, over the %d bytes a key or token may have: is it the right file?", name, fi.Size(), MaxSize)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return "", err
	}
	if len(b) > MaxSize {
		return "", fmt.Errorf("%s is over the %d bytes a key or token may have: is it the right file?", name, MaxSize)
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
		rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(Expand(path)))
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

// MinTokenLen is the shortest token posd and posd-hq accept.
const MinTokenLen = 32

// FileKind names what a non-regular file is, for messages.
func FileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a block device"
	case m&os.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "mode " + m.String()
}
