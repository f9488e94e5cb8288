package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap/zapcore"
	"go.yaml.in/yaml/v3"

	"example.com/posd/internal/secret"
	"example.com/posd/payment/sandbox"
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
	Refunds         Refunds          `yaml:"refunds"`
	Charges         Charges          `yaml:"charges"`
	Reconcile       Reconcile        `yaml:"reconcile"`
	Fleet           Fleet            `yaml:"fleet"`
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
	// WitnessPath is the journal's second witness, outside its folder,
	// where backups of the state folder do not look: a copy of the folder
	// put back is recognised by it. Default: $CACHE_DIRECTORY/journal.witness
	// under systemd (the unit's CacheDirectory), none otherwise.
	WitnessPath string `yaml:"witness_path"`
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
	// AllowedOrigins are the exact origins of tills that run in a browser
	// (https://…, or http://localhost:PORT while developing): CORS for
	// them alone; every other origin is refused.
	AllowedOrigins []string `yaml:"allowed_origins"`
}

type Log struct {
	Format string `yaml:"format"` // console or json
	Level  string `yaml:"level"`
}

type Scan struct {
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
}

// Reconcile: how fast a reconciliation asks the gateway.
type Reconcile struct {
	Rate float64 `yaml:"rate"` // queries a second
}

// Fleet: the head office's copy of every order, through NATS JetStream
// (internal/fleet). Off when URL is empty.
type Fleet struct {
	// URL: nats:// or tls://, several comma-separated for a cluster (or
	// the store's leaf node).
	URL             string `yaml:"url"`
	CredentialsFile string `yaml:"credentials_file"` // a NATS creds file
	SubjectPrefix   string `yaml:"subject_prefix"`
	// Box names this box in its store's NATS config (its inbox prefix is
	// _INBOX_<box>); empty: its lanes' ids joined by -.
	Box string `yaml:"box"`
	// OutboxWarn: past this many changes waiting, or the oldest waiting
	// longer than OutboxWarnAge, /healthz and the log warn.
	OutboxWarn    uint64        `yaml:"outbox_warn"`
	OutboxWarnAge time.Duration `yaml:"outbox_warn_age"`
}

// Charges: how a till's references are kept.
type Charges struct {
	// ReferenceWindow: a till's reference names one charge of a lane this
	// long (a second open with it returns the first).
	ReferenceWindow time.Duration `yaml:"reference_window"`
}

// Refunds are the gateway's limits on refunding a payment (docs/protocol.md,
// "Refund limits"): a refund past them is refused on the box, before
// anything is sent.
type Refunds struct {
	MaxPerOrder int           `yaml:"max_per_order"` // refunds of one payment (the gateway's: 50)
	MaxAge      time.Duration `yaml:"max_age"`       // how long after the payment (the gateway's: a year)
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
		Journal:         Journal{Path: "/var/lib/posd/journal.db", WitnessPath: cacheWitness(), Retention: 180 * 24 * time.Hour},
		API:             API{Listen: "127.0.0.1:8321", MaxConnections: 128, MaxStreams: 16},
		Log:             Log{Format: "console", Level: "info"},
		Scan:            Scan{DuplicateWindow: 10 * time.Second},
		Refunds:         Refunds{MaxPerOrder: 50, MaxAge: 365 * 24 * time.Hour},
		Charges:         Charges{ReferenceWindow: 7 * 24 * time.Hour},
		Reconcile:       Reconcile{Rate: 5},
		Fleet:           Fleet{SubjectPrefix: "posd", OutboxWarn: 10_000, OutboxWarnAge: time.Hour},
		ShutdownTimeout: 10 * time.Second,
	}
}

// cacheWitness is the journal's second witness in the cache directory
// systemd gives the unit ("" outside systemd).
func cacheWitness() string {
	dir, _, _ := strings.Cut(os.Getenv("CACHE_DIRECTORY"), ":")
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, "journal.witness")
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
		return nil, fmt.Errorf("%s is not a regular file (%s): -config names the YAML file itself", path, secret.FileKind(fi.Mode()))
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

// FleetMerchant is the merchant a box's records are published under: the
// sandbox's own when posd runs it and merchant.id is empty (the subjects
// need a token there).
func (c *Config) FleetMerchant() string {
	if c.Merchant.ID == "" && c.IsSandbox() {
		return sandbox.MerchantID
	}
	return c.Merchant.ID
}

// FleetBox is the box's name in its store's NATS config: fleet.box, or
// its lanes' ids joined by -.
func (c *Config) FleetBox() string {
	if c.Fleet.Box != "" {
		return c.Fleet.Box
	}
	ids := make([]string, 0, len(c.Lanes))
	for _, l := range c.Lanes {
		ids = append(ids, l.ID)
	}
	return strings.Join(ids, "-")
}

// IsSandbox reports whether posd runs its own sandbox gateway.
func (c *Config) IsSandbox() bool { return c.Gateway.URL == SandboxURL }

// ParseLevel maps log.level to zap's levels.
func ParseLevel(s string) (zapcore.Level, error) {
	var l zapcore.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
}

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
