package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"example.com/posd/internal/natsauth"
	"example.com/posd/internal/tradeid"
	"example.com/posd/payment"
	"example.com/posd/scanner"
)

// Validate returns warnings, and an error listing every problem.
func (c *Config) Validate() (warnings []string, err error) {
	var p problems
	c.checkTemplate(&p)
	c.checkGateway(&p)
	c.checkMerchant(&p)
	c.checkTimings(&p)
	c.checkJournalAndAPI(&p)
	c.checkLanes(&p)
	c.checkFleet(&p)
	if c.ShutdownTimeout <= 0 {
		p.bad("shutdown_timeout: must be positive")
	}
	for i := range p.warnings {
		p.warnings[i] = RedactURLs(p.warnings[i])
	}
	if len(p.errs) > 0 {
		return p.warnings, errors.New(RedactURLs("  - " + strings.Join(p.errs, "\n  - ")))
	}
	return p.warnings, nil
}

// problems collects what Validate finds: every error, so that an operator
// fixes the file in one pass, and the warnings.
type problems struct{ errs, warnings []string }

func (p *problems) bad(format string, a ...any) { p.errs = append(p.errs, fmt.Sprintf(format, a...)) }
func (p *problems) warn(w string)               { p.warnings = append(p.warnings, w) }
func (p *problems) add(errs ...string)          { p.errs = append(p.errs, errs...) }

// checkTemplate refuses the packaged template's placeholders.
func (c *Config) checkTemplate(p *problems) {
	for _, v := range []string{c.Merchant.ID, c.Merchant.StoreID, c.Gateway.URL} {
		if strings.Contains(strings.ToUpper(v), "FILL-IN") || strings.Contains(strings.ToUpper(v), "FILLIN") {
			p.bad("%q: the packaged template is not filled in yet", RedactURLs(v))
		}
	}
	for i, l := range c.Lanes {
		if strings.Contains(strings.ToUpper(l.DeviceInfo), "FILLIN") {
			p.bad("lanes[%d].device_info %q: the packaged template is not filled in yet", i, l.DeviceInfo)
		}
	}
}

// checkGateway: a real gateway needs https, a merchant and a key, and a
// confirmation window the gateway family documents.
func (c *Config) checkGateway(p *problems) {
	if !c.IsSandbox() {
		u, perr := url.Parse(c.Gateway.URL)
		switch {
		case perr != nil || u.Host == "":
			p.bad("gateway.url %q: \"sandbox\" or an https:// base URL", RedactURLs(c.Gateway.URL))
		case u.Scheme != "https" && !(u.Scheme == "http" && payment.IsLoopbackHost(u.Hostname())):
			p.bad("gateway.url %q: https required (plain http only on loopback)", RedactURLs(c.Gateway.URL))
		}
		if c.Merchant.ID == "" {
			p.bad("merchant.id: required for a real gateway")
		}
		if c.Merchant.KeyFile == "" {
			p.bad("merchant.key_file: required for a real gateway")
		}
		window := c.Confirm.QueryInterval * time.Duration(c.Confirm.QueryAttempts)
		if window < 30*time.Second || window >= 45*time.Second {
			p.warn(fmt.Sprintf("confirm: queries span %s; a real gateway wants at least 30s and under 45s", window))
		}
	}
	if c.Merchant.KeyFile != "" {
		if _, kerr := ReadKey(c.Merchant.KeyFile); kerr != nil {
			p.bad("merchant.key_file: %v", kerr)
		}
		if w := CredentialWarning("merchant.key_file", c.Merchant.KeyFile); w != "" {
			p.warn(w)
		}
	}
}

// checkMerchant: the key file, the store id that names orders, the IP.
func (c *Config) checkMerchant(p *problems) {
	store := tradeid.Part(c.Merchant.StoreID)
	if store == "" {
		p.bad("merchant.store_id: required, letters and digits")
	} else if store != c.Merchant.StoreID {
		p.warn(fmt.Sprintf("merchant.store_id %q: only %q is used in order ids", c.Merchant.StoreID, store))
	}
	if net.ParseIP(c.Merchant.ClientIP) == nil {
		p.bad("merchant.client_ip %q: an IP address", c.Merchant.ClientIP)
	}
}

func (c *Config) checkTimings(p *problems) {
	if c.Gateway.ProbeInterval <= 0 {
		p.bad("gateway.probe_interval must be positive")
	}
	if c.Gateway.Timeout <= 0 || c.Gateway.ConnectTimeout <= 0 {
		p.bad("gateway.timeout and gateway.connect_timeout: must be positive")
	}
	if c.Confirm.QueryInterval <= 0 || c.Confirm.QueryAttempts < 1 {
		p.bad("confirm.query_interval must be positive and confirm.query_attempts at least 1")
	}
	if c.Confirm.ReverseInterval <= 0 || c.Confirm.ReverseAttempts < 1 {
		p.bad("confirm.reverse_interval must be positive and confirm.reverse_attempts at least 1")
	}
	if c.Confirm.ReconcileInterval <= 0 || c.Confirm.ReconcileMax < c.Confirm.ReconcileInterval {
		p.bad("confirm.reconcile_interval must be positive and confirm.reconcile_max at least as long")
	}
	if c.Reconcile.Rate <= 0 || c.Reconcile.Rate > 100 {
		p.bad("reconcile.rate %v: queries a second, more than 0 and at most 100", c.Reconcile.Rate)
	}
	if c.Charges.ReferenceWindow <= 0 {
		p.bad("charges.reference_window must be positive")
	}
	if c.Refunds.MaxPerOrder < 1 || c.Refunds.MaxAge <= 0 {
		p.bad("refunds.max_per_order must be at least 1 and refunds.max_age positive")
	}
}

// checkJournalAndAPI: the journal, the API's exposure and its secrets, logs
// and wallets.
func (c *Config) checkJournalAndAPI(p *problems) {
	if c.Journal.Path == "" {
		p.bad("journal.path: required")
	}
	if w := c.Journal.WitnessPath; w != "" && inside(filepath.Dir(c.Journal.Path), w) {
		p.bad("journal.witness_path %s: in the journal's folder, a copy of the folder brings it back; put it where backups of the folder do not look", w)
	}
	if c.Journal.Retention < 24*time.Hour {
		p.bad("journal.retention %s: at least 24h (final orders are kept that long)", c.Journal.Retention)
	}
	if err := checkListen(c.API.Listen); err != nil {
		if !c.API.AllowRemote || !errors.Is(err, errNotLoopback) {
			p.bad("api.listen: %v", err)
		} else if c.API.TokenFile == "" {
			p.bad("api.allow_remote: a non-loopback api.listen requires api.token_file")
		}
	}
	remote := false
	if err := checkListen(c.API.Listen); errors.Is(err, errNotLoopback) {
		remote = true
	}
	if remote && (c.API.TLSCertFile == "" || c.API.TLSKeyFile == "") {
		p.bad("api.listen %q is not loopback: it serves TLS only (api.tls_cert_file, api.tls_key_file)", c.API.Listen)
	}
	if (c.API.TLSCertFile == "") != (c.API.TLSKeyFile == "") {
		p.bad("api.tls_cert_file and api.tls_key_file go together")
	}
	for _, f := range []struct {
		key, path string
		secret    bool
	}{{"api.tls_cert_file", c.API.TLSCertFile, false}, {"api.tls_key_file", c.API.TLSKeyFile, true}, {"gateway.ca_file", c.Gateway.CAFile, false}} {
		if f.path != "" {
			if err := checkPEMFile(f.path, f.secret); err != nil {
				p.bad("%s: %v", f.key, err)
			}
		}
	}
	for _, o := range c.API.AllowedOrigins {
		if err := checkOrigin(o); err != nil {
			p.bad("api.allowed_origins: %v", err)
		}
	}
	if len(c.API.AllowedOrigins) > 0 && strings.HasPrefix(c.API.Listen, "unix:") {
		p.bad("api.allowed_origins: no browser reaches a unix socket (api.listen %q): a browser till needs a TCP listener with a token", c.API.Listen)
	}
	if len(c.API.AllowedOrigins) > 0 && c.API.TokenFile == "" {
		p.bad("api.allowed_origins: a till in a browser needs api.token_file (every call carries the token)")
	}
	if c.API.MaxConnections <= 0 || c.API.MaxStreams <= 0 {
		p.bad("api.max_connections and api.max_streams must be positive")
	}
	if c.API.TokenFile != "" {
		switch tok, terr := ReadSecret(c.API.TokenFile); {
		case terr != nil:
			p.bad("api.token_file: %v", terr)
		case len(tok) < MinTokenLen:
			p.bad("api.token_file: the token is %d bytes; at least %d (head -c 32 /dev/urandom | base64)", len(tok), MinTokenLen)
		}
		if w := CredentialWarning("api.token_file", c.API.TokenFile); w != "" {
			p.warn(w)
		}
	}
	if c.Log.Format != "console" && c.Log.Format != "json" {
		p.bad("log.format %q: console or json", c.Log.Format)
	}
	if _, lerr := ParseLevel(c.Log.Level); lerr != nil {
		p.bad("log.level %q: debug, info, warn or error", c.Log.Level)
	}
	if _, werr := scanner.NewRouter(c.Wallets); werr != nil {
		p.bad("wallets: %v", werr)
	}
}

// checkLanes: ids and device_infos unique (they name orders), fees,
// texts, and each scanner and display through its kind.
func (c *Config) checkLanes(p *problems) {
	store := tradeid.Part(c.Merchant.StoreID)
	if len(c.Lanes) == 0 {
		p.bad("lanes: at least one lane")
	}
	ids, devices := map[string]bool{}, map[string]string{}
	for i, l := range c.Lanes {
		at := fmt.Sprintf("lanes[%d]", i)
		if l.ID == "" {
			p.bad("%s.id: required", at)
		} else if ids[l.ID] {
			p.bad("%s.id %q: two lanes with one id", at, l.ID)
		}
		ids[l.ID] = true
		dev := tradeid.Part(l.DeviceInfo)
		switch {
		case dev == "":
			p.bad("%s.device_info: required, letters and digits", at)
		case devices[dev] != "":
			p.bad("%s.device_info %q: lane %s has the same device_info; order ids would collide", at, l.DeviceInfo, devices[dev])
		case len(store)+len(dev) > tradeid.MaxPrefix:
			p.bad("%s.device_info %q: store_id and device_info together exceed %d characters (order ids are at most 32)", at, l.DeviceInfo, tradeid.MaxPrefix)
		}
		devices[dev] = l.ID
		if l.FixedFee < 0 || l.MaxFee < 0 {
			p.bad("%s: fixed_fee and max_fee are fen, not negative", at)
		}
		if l.MaxFee > 0 && l.FixedFee > l.MaxFee {
			p.bad("%s.fixed_fee %d is over max_fee %d", at, l.FixedFee, l.MaxFee)
		}
		if l.FixedFee > 0 && (l.Subject == "" || l.Body == "") {
			p.bad("%s: a fixed_fee lane needs subject and body (what each scan sends)", at)
		}
		if len(l.Subject) > payment.MaxSubject || len(l.Body) > payment.MaxBody {
			p.bad("%s: subject is at most %d bytes and body %d (UTF-8)", at, payment.MaxSubject, payment.MaxBody)
		}
		if l.ChargeTTL < 0 {
			p.bad("%s.charge_ttl: must be positive", at)
		}
		for j, s := range l.Scanners {
			p.add(validateScanner(fmt.Sprintf("%s.scanners[%d]", at, j), s)...)
		}
		for j, d := range l.Displays {
			p.add(validateDisplay(fmt.Sprintf("%s.displays[%d]", at, j), d, c)...)
		}
	}
	p.add(validateAlone(c.Lanes)...)
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

// checkFleet: the broker's URLs, the credentials (checked like the
// merchant key: they let a box publish as the store), the subject prefix.
func (c *Config) checkFleet(p *problems) {
	f := c.Fleet
	if f.URL == "" {
		return
	}
	for _, raw := range strings.Split(f.URL, ",") {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || u.Host == "" || (u.Scheme != "nats" && u.Scheme != "tls") {
			p.bad("fleet.url %q: nats:// or tls:// URLs, comma-separated", RedactURLs(raw))
		}
	}
	if f.CredentialsFile != "" {
		if creds, err := ReadSecret(f.CredentialsFile); err != nil {
			p.bad("fleet.credentials_file: %v", err)
		} else if _, err := natsauth.Option(creds); err != nil {
			p.bad("fleet.credentials_file %s: %v", f.CredentialsFile, err)
		}
		if w := CredentialWarning("fleet.credentials_file", f.CredentialsFile); w != "" {
			p.warn(w)
		}
	}
	if !validSubjectToken(f.SubjectPrefix) {
		p.bad("fleet.subject_prefix %q: letters, digits, - and _ (one subject token)", f.SubjectPrefix)
	}
	if box := c.FleetBox(); !validSubjectToken(box) {
		p.bad("fleet.box %q: letters, digits, - and _ (one subject token; empty: the lanes' ids joined by -)", box)
	}
	for _, l := range c.Lanes {
		if !validSubjectToken(l.ID) {
			p.bad("lanes[].id %q: letters, digits, - and _ with fleet.url set (a token of the lane's subjects)", l.ID)
		}
	}
	if !validSubjectToken(c.FleetMerchant()) || !validSubjectToken(c.Merchant.StoreID) {
		p.bad("merchant.id %q and merchant.store_id %q: letters, digits, - and _ with fleet.url set (tokens of the subjects)", c.Merchant.ID, c.Merchant.StoreID)
	}
	if f.OutboxWarn == 0 || f.OutboxWarnAge <= 0 {
		p.bad("fleet.outbox_warn and fleet.outbox_warn_age must be positive")
	}
}

// validSubjectToken: one token of a NATS subject, with nothing a subject
// gives a meaning to (. * > or white space).
func validSubjectToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// inside reports whether path is in dir or below it.
func inside(dir, path string) bool {
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(path))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// checkOrigin accepts an exact origin a browser sends: https://host[:port],
// or http:// for localhost and loopback addresses only (a till being
// developed); no path, no wildcard.
func checkOrigin(o string) error {
	u, err := url.Parse(o)
	switch {
	case err != nil || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || o != u.Scheme+"://"+u.Host:
		return fmt.Errorf("%q: an origin is scheme://host[:port], nothing after", o)
	case strings.Contains(u.Host, "*"):
		return fmt.Errorf("%q: no wildcards: list each till's origin", o)
	case u.Host != strings.ToLower(u.Host):
		return fmt.Errorf("%q: a browser sends the host in lower case: %s://%s", o, u.Scheme, strings.ToLower(u.Host))
	case u.Port() != "" && (u.Scheme == "https" && u.Port() == "443" || u.Scheme == "http" && u.Port() == "80"):
		return fmt.Errorf("%q: a browser leaves the default port out: %s://%s", o, u.Scheme, u.Hostname())
	case u.Port() != "" && !validPort(u.Port()):
		return fmt.Errorf("%q: port %s: 1 to 65535", o, u.Port())
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && (u.Hostname() == "localhost" || net.ParseIP(u.Hostname()) != nil && net.ParseIP(u.Hostname()).IsLoopback()):
		return nil
	}
	return fmt.Errorf("%q: https://, or http://localhost:PORT while developing", o)
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535 && strconv.Itoa(n) == p
}
