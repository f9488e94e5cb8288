package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"example.com/posd/internal/tradeid"
	"example.com/posd/payment"
	"example.com/posd/scanner"
)

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
