// Command posd is the checkout lane's payment daemon.
//
//	posd [run] -config FILE       run the daemon (the default command)
//	posd sandbox -listen ADDR     run the sandbox gateway alone
//	posd check-config -config F   list every problem of a config file
//	posd devices                  list candidate scanners with config stanzas
//	posd version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"example.com/posd/internal/api"
	"example.com/posd/internal/config"
	"example.com/posd/internal/daemon"
	"example.com/posd/internal/journal"
	"example.com/posd/payment/sandbox"
)

// version is set by the build (-ldflags "-X main.version=...").
var version = "dev"

// exitConfig is sysexits' EX_CONFIG: systemd does not restart on it.
const exitConfig = 78

// memoryLimit is the soft limit posd gives the Go runtime (GOMEMLIMIT
// overrides it): a box with 10,000 unresolved orders stays under 64 MB
// resident by collecting more often rather than growing. A process-wide
// knob, so the command sets it, not a package.
const memoryLimit = 40 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cmd := "run"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return runDaemon(args)
	case "sandbox":
		return runSandbox(args)
	case "check-config":
		return checkConfig(args)
	case "devices":
		return listDevices(os.Stdout)
	case "scan":
		return scanOnly(args)
	case "journal-check":
		return journalCheck(args)
	case "version":
		fmt.Println("posd", version)
		return 0
	case "help", "-h", "--help":
		usage()
		return 0
	}
	fmt.Fprintf(os.Stderr, "posd: unknown command %q\n", cmd)
	usage()
	return 2
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  posd [run] -config FILE        run the payment daemon
  posd sandbox -listen ADDR      run the sandbox gateway on its own
  posd check-config -config FILE check a config file, listing every problem
  posd devices                   list what could be a scanner here, with config stanzas
  posd scan -config FILE [-lane ID]  read the configured scanners without paying
  posd version                   print the version
`)
}

func runDaemon(args []string) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	path := fs.String("config", "/etc/posd/config.yaml", "config file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, warnings, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "posd:", err)
		return exitConfig
	}
	log, err := newLogger(cfg.Log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "posd:", err)
		return exitConfig
	}
	defer log.Sync()
	for _, w := range warnings {
		log.Warn("config: " + w)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log.Info("posd starting", zap.String("version", version), zap.String("config", *path))
	if err := daemon.Run(ctx, cfg, log, daemon.IO{Stdin: os.Stdin, Stdout: os.Stdout, ConfigPath: *path}, nil); err != nil {
		log.Error("posd stopped", zap.Error(err))
		if errors.Is(err, config.ErrConfig) { // a key or token file refused
			return exitConfig
		}
		return 1
	}
	log.Info("posd stopped")
	return 0
}

// scanOnly reads the configured scanners and prints what they deliver,
// paying nothing: an installer's check of each scanner (posd itself must
// be stopped, since it holds the devices).
func scanOnly(args []string) int {
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	path := fs.String("config", "/etc/posd/config.yaml", "config file")
	lane := fs.String("lane", "", "only this lane's scanners")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, _, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "posd:", err)
		return exitConfig
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := daemon.Scan(ctx, cfg, daemon.IO{Stdin: os.Stdin, Stdout: os.Stdout, ConfigPath: *path}, *lane); err != nil {
		fmt.Fprintln(os.Stderr, "posd:", err)
		return 1
	}
	return 0
}

func newLogger(c config.Log) (*zap.Logger, error) {
	level, err := config.ParseLevel(c.Level)
	if err != nil {
		return nil, err
	}
	var zc zap.Config
	if c.Format == "json" {
		zc = zap.NewProductionConfig()
	} else {
		zc = zap.NewDevelopmentConfig()
		zc.EncoderConfig.EncodeLevel = zapcore.CapitalLevelEncoder
		zc.DisableStacktrace = true
	}
	zc.Level = zap.NewAtomicLevelAt(level)
	zc.OutputPaths = []string{"stderr"}
	return zc.Build()
}

func runSandbox(args []string) int {
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8399", "address to listen on")
	merchant := fs.String("merchant-id", sandbox.MerchantID, "merchant id the sandbox accepts")
	keyFile := fs.String("key-file", "", "merchant key file (default: the built-in sandbox key)")
	slow := fs.Duration("slow", 15*time.Second, "how long a pay whose code ends in 83 waits before it answers")
	refunding := fs.Bool("refunding-after-reverse", false, "a reverse that refunds a paid order leaves trade_state 1 (refund in progress), not 4")
	keeps := fs.Bool("refund-keeps-trade-state", false, "an order keeps showing trade_state 0 (paid) after a refund, as some gateways of the family do")
	delay := fs.Duration("delay", 0, "added before every answer")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	key := sandbox.Key
	if *keyFile != "" {
		k, err := config.ReadKey(*keyFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "posd sandbox:", err)
			return exitConfig
		}
		key = k
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "posd sandbox:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "SANDBOX gateway on http://%s/ (merchant %s); ledger at /_sandbox/orders, back-office refunds at POST /_sandbox/backoffice/refund\n", l.Addr(), *merchant)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	sb := sandbox.New(sandbox.Options{MerchantID: *merchant, Key: key, SlowDelay: *slow, Delay: *delay,
		RefundingAfterReverse: *refunding, RefundKeepsTradeState: *keeps})
	if err := api.Serve(ctx, l, sb); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "posd sandbox:", err)
		return 1
	}
	return 0
}

func checkConfig(args []string) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	path := fs.String("config", "/etc/posd/config.yaml", "config file")
	unit := fs.String("unit", "", "the systemd unit whose LoadCredential= lines resolve ${CREDENTIALS_DIRECTORY} outside the service (default: posd.service under /etc/systemd/system, /lib/systemd/system or /usr/lib/systemd/system)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if os.Getenv("CREDENTIALS_DIRECTORY") == "" {
		// Judge the config as the service will see it: its credentials
		// are the files the unit loads them from.
		units := []string{*unit}
		if *unit == "" {
			units = []string{"/etc/systemd/system/posd.service", "/lib/systemd/system/posd.service", "/usr/lib/systemd/system/posd.service"}
		}
		for _, u := range units {
			mapped, err := config.UseUnitCredentials(u)
			if err != nil {
				if *unit != "" {
					fmt.Fprintln(os.Stderr, "check-config:", err)
					return exitConfig
				}
				continue
			}
			for _, m := range mapped {
				fmt.Fprintln(os.Stderr, "check-config: outside the service,", m)
			}
			break
		}
	}
	cfg, warnings, err := config.Load(*path)
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, "warning:", w)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitConfig
	}
	gw := config.RedactURLs(cfg.Gateway.URL)
	if cfg.IsSandbox() {
		gw = "SANDBOX (no real money moves)"
	}
	fmt.Printf("%s: ok (%d lanes, gateway %s)\n", *path, len(cfg.Lanes), gw)
	return 0
}

// journalCheck is run by posd itself before opening the journal (with
// -start: bounded when the witness vouches for the freelist), and by an
// operator (the whole file): bbolt may panic on a damaged file, and a panic
// here only ends this child.
func journalCheck(args []string) int {
	start := len(args) == 2 && args[0] == "-start"
	if !start && len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: posd journal-check [-start] PATH")
		return 2
	}
	path := args[len(args)-1]
	how, err := journal.CheckedWhole, error(nil)
	if start {
		how, err = journal.CheckStart(path)
	} else {
		err = journal.Check(path)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	fmt.Println(how)
	return 0
}
