package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap/zapcore"
	"go.yaml.in/yaml/v3"

	"example.com/posd/internal/tradeid"
	"example.com/posd/payment"
	"example.com/posd/scanner"
)

// SandboxURL is the gateway.url that runs the sandbox inside posd.
const SandboxURL = "sandbox"

// Config is the whole file.
type Config struct {
	Merchant        Merchant         `yaml:"merchant"`
	Gateway         Gateway          `yaml:"gateway"`
	Confirm         Confirm          `yaml:"confirm"`
	Journal         Journal          `yaml:"journal"`
	API             API              `yaml:"api"`
	Log             Log              `yaml:"log"`
	Scan            Scan             `yaml:"scan"`
	Wallets         []scanner.Wallet `yaml:"wallets"`
	Lanes           []Lane           `yaml:"lanes"`
	ShutdownTimeout time.Duration    `yaml:"shutdown_timeout"`
}

type Merchant struct {
	ID       string `yaml:"id"`
	KeyFile  string `yaml:"key_file"`
	StoreID  string `yaml:"store_id"`
	ClientIP string `yaml:"client_ip"`
}

type Gateway struct {
	URL            string        `yaml:"url"`
	Timeout        time.Duration `yaml:"timeout"`
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	CAFile         string        `yaml:"ca_file"`
	// ProbeInterval is how often posd checks that the gateway can be
	// reached (a TCP/TLS handshake, never a payment call).
	ProbeInterval time.Duration `yaml:"probe_interval"`
	// SandboxSlow is how long the in-process sandbox holds a pay whose code
	// ends in 83 (longer than timeout, so the pay times out).
	SandboxSlow time.Duration `yaml:"sandbox_slow"`
}

type Confirm struct {
	QueryInterval     time.Duration `yaml:"query_interval"`
	QueryAttempts     int           `yaml:"query_attempts"`
	ReverseInterval   time.Duration `yaml:"reverse_interval"`
	ReverseAttempts   int           `yaml:"reverse_attempts"`
	ReverseFallback   *bool         `yaml:"reverse_fallback"`
	ReconcileInterval time.Duration `yaml:"reconcile_interval"`
	ReconcileMax      time.Duration `yaml:"reconcile_max"`
}

type Journal struct {
	Path string `yaml:"path"`
	// Retention: final orders older than this are pruned (export them
	// first: posctl export). Go duration; default 4320h (180 days).
	Retention time.Duration `yaml:"retention"`
}

type API struct {
	Listen string `yaml:"listen"`
	// AllowRemote lets the API listen on a non-loopback address; it then
	// requires TokenFile.
	AllowRemote bool `yaml:"allow_remote"`
	// TokenFile holds a bearer token every route that changes state or
	// shows order details requires.
	TokenFile string `yaml:"token_file"`
	// TLSCertFile and TLSKeyFile: a non-loopback listener serves TLS.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// AllowMoneyWithoutToken lets refund and resolve go without the token
	// on a loopback TCP listener: an explicit choice, never the default.
	AllowMoneyWithoutToken bool `yaml:"allow_money_without_token"`
	// MaxConnections bounds the connections open at once; MaxStreams the
	// event streams (SSE) per route. Over either: 503.
	MaxConnections int `yaml:"max_connections"`
	MaxStreams     int `yaml:"max_streams"`
}

type Log struct {
	Format string `yaml:"format"` // console or json
	Level  string `yaml:"level"`
}

type Scan struct {
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
}

type Lane struct {
	ID         string        `yaml:"id"`
	DeviceInfo string        `yaml:"device_info"`
	FixedFee   Fen           `yaml:"fixed_fee"`
	MaxFee     Fen           `yaml:"max_fee"`
	Subject    string        `yaml:"subject"`
	Body       string        `yaml:"body"`
	ChargeTTL  time.Duration `yaml:"charge_ttl"`
	Scanners   []Scanner     `yaml:"scanners"`
	Displays   []Display     `yaml:"displays"`
}

// Scanner is one entry of lanes[].scanners; type picks which keys apply.
type Scanner struct {
	Type     string `yaml:"type"`      // a kind: stdin, serial, evdev, hid (internal/daemon/scanners.go)
	Scene    string `yaml:"scene"`     // bar_code, or wave_code for a sound-wave receiver
	Port     string `yaml:"port"`      // serial: a path
	USB      string `yaml:"usb"`       // serial, evdev, hid: VVVV:PPPP[:SERIAL] (device.ParseUSBID)
	Baud     int    `yaml:"baud"`      // serial; this and the next three left out: device.Serial's defaults
	DataBits int    `yaml:"data_bits"` // serial: 5 to 8
	Parity   string `yaml:"parity"`    // serial: none, odd, even
	StopBits int    `yaml:"stop_bits"` // serial: 1 or 2
	Device   string `yaml:"device"`    // evdev: /dev/input/eventN or a /dev/input/by-id path
	Name     string `yaml:"name"`      // evdev: the input device's name
	Layout   string `yaml:"layout"`    // evdev, hid: us or fr
	Mode     string `yaml:"mode"`      // hid: keyboard or pos
	Backend  string `yaml:"backend"`   // hid: libusb (default: takes the device from the kernel) or hidraw
	// KeyGap: evdev, hid keyboard: a longer pause between keys discards a
	// partial code (a person typing, a misread). Left out (0): the default
	// of scanner.KeyDecoder.
	KeyGap time.Duration `yaml:"key_gap"`
}

// Display is one entry of lanes[].displays; type picks which keys apply.
type Display struct {
	Type     string `yaml:"type"`     // a kind: terminal, vfd, escpos, web (internal/daemon/displaykinds.go)
	Port     string `yaml:"port"`     // vfd, escpos: a serial port or /dev/usb/lp*
	USB      string `yaml:"usb"`      // vfd, escpos: VVVV:PPPP[:SERIAL] of a USB serial adapter or (escpos) a printer-class printer
	Baud     int    `yaml:"baud"`     // vfd, escpos on serial; left out: device.Serial's default
	Language string `yaml:"language"` // vfd: zh or en
	Encoding string `yaml:"encoding"` // vfd, escpos: ascii or gb18030
	Address  string `yaml:"address"`  // escpos: host:9100
	Width    int    `yaml:"width"`    // escpos: characters per line; left out: display.ReceiptBytes's default
	Drawer   bool   `yaml:"drawer"`   // escpos: kick the cash drawer on a paid receipt
	Listen   string `yaml:"listen"`   // web: its own address when the API is on a unix socket
}

// Default is every value a file may leave out.
func Default() Config {
	return Config{
		Merchant: Merchant{StoreID: "S001", ClientIP: "127.0.0.1"},
		Gateway:  Gateway{URL: SandboxURL, Timeout: 10 * time.Second, ConnectTimeout: 3 * time.Second, ProbeInterval: 5 * time.Second, SandboxSlow: 15 * time.Second},
		Confirm: Confirm{
			QueryInterval: 5 * time.Second, QueryAttempts: 6,
			ReverseInterval: 2 * time.Second, ReverseAttempts: 5,
			ReconcileInterval: time.Minute, ReconcileMax: 30 * time.Minute,
		},
		Journal:         Journal{Path: "/var/lib/posd/journal.db", Retention: 180 * 24 * time.Hour},
		API:             API{Listen: "127.0.0.1:8321", MaxConnections: 128, MaxStreams: 16},
		Log:             Log{Format: "console", Level: "info"},
		Scan:            Scan{DuplicateWindow: 10 * time.Second},
		ShutdownTimeout: 10 * time.Second,
	}
}

// MaxConfigSize bounds the config file: a real one is a few kilobytes.
const MaxConfigSize = 1 << 20

// ErrConfig is in the chain of every configuration error Load returns and
// of every refusal of a key or token file (errors.Is): posd exits 78
// (EX_CONFIG) on them, and systemd does not restart it.
var ErrConfig = errors.New("configuration error")

// configError is a configuration error whose text has any credentials in
// a URL redacted; it unwraps to the cause and to ErrConfig.
type configError struct {
	msg string
	err error
}

func (e *configError) Error() string   { return e.msg }
func (e *configError) Unwrap() []error { return []error{e.err, ErrConfig} }

func asConfigError(err error) error {
	return &configError{msg: RedactURLs(err.Error()), err: err}
}

// Load reads and validates a file. The error lists every problem. Errors
// and warnings never show credentials embedded in a URL.
func Load(path string) (Config, []string, error) {
	b, err := readConfigFile(path)
	if err != nil {
		return Config{}, nil, asConfigError(fmt.Errorf("config: %w", err))
	}
	c, err := Parse(b)
	if err != nil {
		return c, nil, asConfigError(fmt.Errorf("config %s: %w", path, err))
	}
	warnings, err := c.Validate()
	if err != nil {
		return c, warnings, asConfigError(fmt.Errorf("config %s:\n%w", path, err))
	}
	return c, warnings, nil
}

// readConfigFile reads a regular file of at most MaxConfigSize bytes. It
// opens with O_NONBLOCK, so a FIFO does not hang, and checks the open file
// itself: a device (/dev/zero) is refused before a byte is read.
func readConfigFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s): -config names the YAML file itself", path, fileKind(fi.Mode()))
	}
	if fi.Size() > MaxConfigSize {
		return nil, fmt.Errorf("%s is %d bytes, over the %d bytes a config file may have: is it the right file?", path, fi.Size(), MaxConfigSize)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxConfigSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxConfigSize {
		return nil, fmt.Errorf("%s is over the %d bytes a config file may have: is it the right file?", path, MaxConfigSize)
	}
	return b, nil
}

// fileKind names what a non-regular file is, for messages.
func fileKind(m os.FileMode) string {
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

// urlUserinfo matches the user[:password]@ of a URL in free text: from the
// scheme's "//" to the last "@" before a space or a quote, so a password
// with a stray "/" is covered too.
// userinfo may hold ' and, in a URL that does not parse, spaces or
// slashes: the class stops only at the @ (over-redacting a message is
// harmless, leaking a password is not).
var urlUserinfo = regexp.MustCompile("([A-Za-z][A-Za-z0-9+.-]*://)([^@\"<>`\\n]*)@")

// RedactURLs replaces the credentials of every URL in s (user:password@,
// or a bare user@ that may be a token) with "xxxxx"; the user name is kept
// when a password follows it. A query string is left as it is.
func RedactURLs(s string) string {
	return urlUserinfo.ReplaceAllStringFunc(s, func(m string) string {
		sub := urlUserinfo.FindStringSubmatch(m)
		scheme, info := sub[1], sub[2]
		if user, _, ok := strings.Cut(info, ":"); ok && user != "" && !strings.ContainsAny(user, "/?#") {
			return scheme + user + ":xxxxx@"
		}
		return scheme + "xxxxx@"
	})
}

// Parse decodes YAML over the defaults. Unknown keys are errors.
func Parse(b []byte) (Config, error) {
	c := Default()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, err
	}
	if c.Wallets == nil {
		c.Wallets = scanner.DefaultWallets()
	}
	for i := range c.Lanes {
		l := &c.Lanes[i]
		if l.ChargeTTL == 0 {
			l.ChargeTTL = 10 * time.Minute
		}
		for j := range l.Scanners {
			sc := &l.Scanners[j]
			if sc.Scene == "" {
				sc.Scene = scanner.SceneBarCode
			}
			if sc.Layout == "" {
				sc.Layout = "us"
			}
			if sc.Mode == "" {
				sc.Mode = "keyboard"
			}
		}
		for j := range l.Displays {
			d := &l.Displays[j]
			if d.Encoding == "" {
				d.Encoding = "ascii"
			}
			if d.Language == "" {
				d.Language = "en"
			}
		}
	}
	return c, nil
}

// IsSandbox reports whether posd runs its own sandbox gateway.
func (c *Config) IsSandbox() bool { return c.Gateway.URL == SandboxURL }

// Validate returns warnings, and an error listing every problem.
func (c *Config) Validate() (warnings []string, err error) {
	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }

	for _, v := range []string{c.Merchant.ID, c.Merchant.StoreID, c.Gateway.URL} {
		if strings.Contains(strings.ToUpper(v), "FILL-IN") || strings.Contains(strings.ToUpper(v), "FILLIN") {
			bad("%q: the packaged template is not filled in yet", RedactURLs(v))
		}
	}
	for i, l := range c.Lanes {
		if strings.Contains(strings.ToUpper(l.DeviceInfo), "FILLIN") {
			bad("lanes[%d].device_info %q: the packaged template is not filled in yet", i, l.DeviceInfo)
		}
	}
	if !c.IsSandbox() {
		u, perr := url.Parse(c.Gateway.URL)
		switch {
		case perr != nil || u.Host == "":
			bad("gateway.url %q: \"sandbox\" or an https:// base URL", RedactURLs(c.Gateway.URL))
		case u.Scheme != "https" && !(u.Scheme == "http" && payment.IsLoopbackHost(u.Hostname())):
			bad("gateway.url %q: https required (plain http only on loopback)", RedactURLs(c.Gateway.URL))
		}
		if c.Merchant.ID == "" {
			bad("merchant.id: required for a real gateway")
		}
		if c.Merchant.KeyFile == "" {
			bad("merchant.key_file: required for a real gateway")
		}
		window := c.Confirm.QueryInterval * time.Duration(c.Confirm.QueryAttempts)
		if window < 30*time.Second || window >= 45*time.Second {
			warnings = append(warnings, fmt.Sprintf("confirm: queries span %s; a real gateway wants at least 30s and under 45s", window))
		}
	}
	if c.Merchant.KeyFile != "" {
		if _, kerr := ReadKey(c.Merchant.KeyFile); kerr != nil {
			bad("merchant.key_file: %v", kerr)
		}
		if w := CredentialWarning("merchant.key_file", c.Merchant.KeyFile); w != "" {
			warnings = append(warnings, w)
		}
	}
	store := tradeid.Part(c.Merchant.StoreID)
	if store == "" {
		bad("merchant.store_id: required, letters and digits")
	} else if store != c.Merchant.StoreID {
		warnings = append(warnings, fmt.Sprintf("merchant.store_id %q: only %q is used in order ids", c.Merchant.StoreID, store))
	}
	if net.ParseIP(c.Merchant.ClientIP) == nil {
		bad("merchant.client_ip %q: an IP address", c.Merchant.ClientIP)
	}
	if c.Gateway.ProbeInterval <= 0 {
		bad("gateway.probe_interval must be positive")
	}
	if c.Gateway.Timeout <= 0 || c.Gateway.ConnectTimeout <= 0 {
		bad("gateway.timeout and gateway.connect_timeout: must be positive")
	}
	if c.Confirm.QueryInterval <= 0 || c.Confirm.QueryAttempts < 1 {
		bad("confirm.query_interval must be positive and confirm.query_attempts at least 1")
	}
	if c.Confirm.ReverseInterval <= 0 || c.Confirm.ReverseAttempts < 1 {
		bad("confirm.reverse_interval must be positive and confirm.reverse_attempts at least 1")
	}
	if c.Confirm.ReconcileInterval <= 0 || c.Confirm.ReconcileMax < c.Confirm.ReconcileInterval {
		bad("confirm.reconcile_interval must be positive and confirm.reconcile_max at least as long")
	}
	if c.Journal.Path == "" {
		bad("journal.path: required")
	}
	if c.Journal.Retention < 24*time.Hour {
		bad("journal.retention %s: at least 24h (final orders are kept that long)", c.Journal.Retention)
	}
	if err := checkListen(c.API.Listen); err != nil {
		if !c.API.AllowRemote || !errors.Is(err, errNotLoopback) {
			bad("api.listen: %v", err)
		} else if c.API.TokenFile == "" {
			bad("api.allow_remote: a non-loopback api.listen requires api.token_file")
		}
	}
	remote := false
	if err := checkListen(c.API.Listen); errors.Is(err, errNotLoopback) {
		remote = true
	}
	if remote && (c.API.TLSCertFile == "" || c.API.TLSKeyFile == "") {
		bad("api.listen %q is not loopback: it serves TLS only (api.tls_cert_file, api.tls_key_file)", c.API.Listen)
	}
	if (c.API.TLSCertFile == "") != (c.API.TLSKeyFile == "") {
		bad("api.tls_cert_file and api.tls_key_file go together")
	}
	for _, f := range []struct {
		key, path string
		secret    bool
	}{{"api.tls_cert_file", c.API.TLSCertFile, false}, {"api.tls_key_file", c.API.TLSKeyFile, true}, {"gateway.ca_file", c.Gateway.CAFile, false}} {
		if f.path != "" {
			if err := checkPEMFile(f.path, f.secret); err != nil {
				bad("%s: %v", f.key, err)
			}
		}
	}
	if c.API.MaxConnections <= 0 || c.API.MaxStreams <= 0 {
		bad("api.max_connections and api.max_streams must be positive")
	}
	if c.API.TokenFile != "" {
		switch tok, terr := ReadSecret(c.API.TokenFile); {
		case terr != nil:
			bad("api.token_file: %v", terr)
		case len(tok) < MinTokenLen:
			bad("api.token_file: the token is %d bytes; at least %d (head -c 32 /dev/urandom | base64)", len(tok), MinTokenLen)
		}
		if w := CredentialWarning("api.token_file", c.API.TokenFile); w != "" {
			warnings = append(warnings, w)
		}
	}
	if c.Log.Format != "console" && c.Log.Format != "json" {
		bad("log.format %q: console or json", c.Log.Format)
	}
	if _, lerr := ParseLevel(c.Log.Level); lerr != nil {
		bad("log.level %q: debug, info, warn or error", c.Log.Level)
	}
	if _, werr := scanner.NewRouter(c.Wallets); werr != nil {
		bad("wallets: %v", werr)
	}
	if len(c.Lanes) == 0 {
		bad("lanes: at least one lane")
	}
	ids, devices := map[string]bool{}, map[string]string{}
	for i, l := range c.Lanes {
		at := fmt.Sprintf("lanes[%d]", i)
		if l.ID == "" {
			bad("%s.id: required", at)
		} else if ids[l.ID] {
			bad("%s.id %q: two lanes with one id", at, l.ID)
		}
		ids[l.ID] = true
		dev := tradeid.Part(l.DeviceInfo)
		switch {
		case dev == "":
			bad("%s.device_info: required, letters and digits", at)
		case devices[dev] != "":
			bad("%s.device_info %q: lane %s has the same device_info; order ids would collide", at, l.DeviceInfo, devices[dev])
		case len(store)+len(dev) > tradeid.MaxPrefix:
			bad("%s.device_info %q: store_id and device_info together exceed %d characters (order ids are at most 32)", at, l.DeviceInfo, tradeid.MaxPrefix)
		}
		devices[dev] = l.ID
		if l.FixedFee < 0 || l.MaxFee < 0 {
			bad("%s: fixed_fee and max_fee are fen, not negative", at)
		}
		if l.MaxFee > 0 && l.FixedFee > l.MaxFee {
			bad("%s.fixed_fee %d is over max_fee %d", at, l.FixedFee, l.MaxFee)
		}
		if l.FixedFee > 0 && (l.Subject == "" || l.Body == "") {
			bad("%s: a fixed_fee lane needs subject and body (what each scan sends)", at)
		}
		if len(l.Subject) > payment.MaxSubject || len(l.Body) > payment.MaxBody {
			bad("%s: subject is at most %d bytes and body %d (UTF-8)", at, payment.MaxSubject, payment.MaxBody)
		}
		if l.ChargeTTL < 0 {
			bad("%s.charge_ttl: must be positive", at)
		}
		for j, s := range l.Scanners {
			errs = append(errs, validateScanner(fmt.Sprintf("%s.scanners[%d]", at, j), s)...)
		}
		for j, d := range l.Displays {
			errs = append(errs, validateDisplay(fmt.Sprintf("%s.displays[%d]", at, j), d, c)...)
		}
	}
	errs = append(errs, validateAlone(c.Lanes)...)
	if c.ShutdownTimeout <= 0 {
		bad("shutdown_timeout: must be positive")
	}
	for i := range warnings {
		warnings[i] = RedactURLs(warnings[i])
	}
	if len(errs) > 0 {
		return warnings, errors.New(RedactURLs("  - " + strings.Join(errs, "\n  - ")))
	}
	return warnings, nil
}

func checkListen(addr string) error {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if path == "" {
			return errors.New("unix: needs a path")
		}
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: host:port or unix:/path", addr)
	}
	if port == "" {
		return fmt.Errorf("%q: port missing", addr)
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%q: %w (or set api.allow_remote with api.token_file)", addr, errNotLoopback)
	}
	return nil
}

var errNotLoopback = errors.New("the API listens on loopback or a unix socket only")

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

// ParseLevel maps log.level to zap's levels.
func ParseLevel(s string) (zapcore.Level, error) {
	var l zapcore.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
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

// Fen is money in the config: an integer number of fen. YAML would turn
// 1.5 into 1 silently; a Fen refuses anything but an integer.
type Fen int64

func (f *Fen) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		return fmt.Errorf("line %d: %q is not an integer number of fen", n.Line, n.Value)
	}
	var v int64
	if err := n.Decode(&v); err != nil {
		return err
	}
	*f = Fen(v)
	return nil
}
