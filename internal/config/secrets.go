package config

import (
	"fmt"
	"os"
	"path/filepath"

	"example.com/posd/internal/secret"
)

// MaxSecretSize bounds a key or token file (secret.MaxSize).
const MaxSecretSize = secret.MaxSize

// MinTokenLen is the shortest API token posd accepts.
const MinTokenLen = secret.MinTokenLen

// ServiceUser is the system user the package runs posd as.
const ServiceUser = secret.ServiceUser

// ReadKey reads the merchant key (see ReadSecret): the key signs payments.
func ReadKey(path string) (string, error) { return ReadSecret(path) }

// ReadSecret reads a key or token file, as secret.Read does; every error
// is in ErrConfig's chain.
func ReadSecret(path string) (string, error) {
	key, err := secret.Read(path)
	if err != nil {
		return "", &configError{msg: err.Error(), err: err}
	}
	return key, nil
}

// UseUnitCredentials: see secret.UseUnitCredentials.
func UseUnitCredentials(unit string) ([]string, error) { return secret.UseUnitCredentials(unit) }

// CredentialWarning: see secret.CredentialWarning.
func CredentialWarning(setting, path string) string { return secret.CredentialWarning(setting, path) }

// checkPEMFile checks a certificate or key file before anything reads it: a
// regular file (a FIFO would hang the start, /dev/zero exhaust memory), at
// most 64 KiB, and, for a private key, neither readable by others nor
// writable by anyone but its owner.
func checkPEMFile(path string, private bool) error {
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
	case private && fi.Mode().Perm()&0o026 != 0:
		return fmt.Errorf("%s is a private key with mode %v: chmod 0600 (or 0640 for root:posd)", path, fi.Mode().Perm())
	}
	return nil
}
