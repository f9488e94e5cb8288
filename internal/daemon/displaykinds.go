package daemon

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"example.com/posd/display"
	"example.com/posd/internal/api"
	"example.com/posd/internal/config"
	"example.com/posd/internal/device"
	"example.com/posd/internal/httpguard"
	"example.com/posd/internal/journal"
)

// displayKind is one value of lanes[].displays[].type: everything posd
// knows of it. A new kind is a display.Display in ./display and one entry
// in displayKinds (plus its keys in config.Display if it needs new ones).
type displayKind struct {
	// check returns the problems of an entry's keys (config.Load reports
	// them, with every other problem of the file).
	check func(at string, d config.Display, c *config.Config) []string
	// label names the device in GET /v1/devices and the logs.
	label func(config.Display) string
	// lasting displays live as long as posd (startWebDisplays); the others
	// are restarted when a SIGHUP changes the displays (displaySet).
	lasting bool
	// build makes the display of an entry that passed check; startDisplays
	// feeds it with display.RunDevice, a result staying on screen for
	// hold. A nil display is one that needs no feeding (it serves itself).
	build func(e *displayEnv, d config.Display) (dev display.Display, hold time.Duration, err error)
}

// displayEnv is what a display kind's build may use.
type displayEnv struct {
	ctx    context.Context
	wg     *sync.WaitGroup // for the goroutines build starts
	cfg    config.Config
	hub    *display.Hub
	j      *journal.Journal // nil for lasting kinds
	reg    *device.Registry // nil for lasting kinds
	stdout io.Writer        // nil for lasting kinds

	lane  string
	index int         // the display's place in its lane
	log   *zap.Logger // the display's: lane, type and device
	// web is the web displays' handler, made by the first web display:
	// startDisplays returns it, for the API's listener to serve.
	web *display.Web
}

// report is the display's reporter for GET /v1/devices.
func (e *displayEnv) report(d config.Display) display.Report {
	return display.Report(e.reg.Reporter(e.lane, "display", d.Type, d.Name()))
}

// resultHold is how long a result stays on a customer's screen.
const resultHold = 5 * time.Second

var displayKinds = map[string]displayKind{
	"terminal": {
		label: func(config.Display) string { return "terminal" },
		build: func(e *displayEnv, d config.Display) (display.Display, time.Duration, error) {
			// Listed in GET /v1/devices like every display: posd's own
			// output, there as long as posd is.
			e.report(d)(device.Connected, "posd's standard output")
			return &display.Terminal{W: e.stdout}, 0, nil // a log: nothing to hold
		},
	},
	"vfd": {
		check: func(at string, d config.Display, _ *config.Config) []string {
			bad := checkPortOrUSB(at, d)
			if d.Encoding != "" && d.Encoding != "ascii" && d.Encoding != "gb18030" {
				bad.add("%s.encoding %q: ascii or gb18030", at, d.Encoding)
			}
			if d.Language != "" && d.Language != "zh" && d.Language != "en" {
				bad.add("%s.language %q: zh or en", at, d.Language)
			}
			if d.Language == "zh" && d.Encoding != "gb18030" {
				bad.add("%s: language zh needs encoding gb18030 (a display with a Chinese font)", at)
			}
			return bad
		},
		label: func(d config.Display) string { return portOrUSB(d.Port, d.USB) },
		build: func(e *displayEnv, d config.Display) (display.Display, time.Duration, error) {
			return &display.VFDDevice{
				VFD:    display.VFD{Language: d.Language, Encoding: display.VFDEncoder(d.Encoding)},
				Open:   opener(d),
				Report: e.report(d),
			}, resultHold, nil
		},
	},
	"escpos": {
		check: func(at string, d config.Display, _ *config.Config) []string {
			var bad problems
			if _, cp := display.CodePages[d.Encoding]; d.Encoding != "" && d.Encoding != "ascii" && d.Encoding != "gb18030" && !cp {
				bad.add("%s.encoding %q: ascii, gb18030 or a code page (%s)", at, d.Encoding, strings.Join(codePages(), ", "))
			}
			n := 0
			for _, v := range []string{d.Port, d.USB, d.Address} {
				if v != "" {
					n++
				}
			}
			if n != 1 {
				bad.add("%s: exactly one of port, usb or address", at)
			}
			bad = append(bad, config.CheckUSB(at, d.USB)...)
			if d.Address != "" {
				if _, _, err := net.SplitHostPort(d.Address); err != nil {
					bad.add("%s.address %q: host:port (usually :9100)", at, d.Address)
				}
			}
			if d.Width != 0 && (d.Width < 16 || d.Width > 64) {
				bad.add("%s.width %d: 16 to 64 characters", at, d.Width)
			}
			return bad
		},
		label: func(d config.Display) string {
			if d.Address != "" {
				return d.Address
			}
			return portOrUSB(d.Port, d.USB)
		},
		build: func(e *displayEnv, d config.Display) (display.Display, time.Duration, error) {
			p := &display.Printer{
				Name: fmt.Sprintf("%s/%d", e.lane, e.index), Open: opener(d), Queue: receiptQueue{e.j},
				Report: e.report(d),
				Store:  e.cfg.Merchant.StoreID, Width: d.Width, Encoding: d.Encoding, Drawer: d.Drawer,
			}
			e.wg.Add(1)
			go func() { defer e.wg.Done(); p.Run(e.ctx) }()
			return p, resultHold, nil
		},
	},
	"web": {
		check: func(at string, d config.Display, c *config.Config) []string {
			var bad problems
			if strings.HasPrefix(c.API.Listen, "unix:") && d.Listen == "" {
				bad.add("%s: the API is on a unix socket, so the web display needs its own listen address", at)
			}
			if d.Listen != "" {
				if err := config.CheckListen(d.Listen); err != nil || strings.HasPrefix(d.Listen, "unix:") {
					bad.add("%s.listen %q: host:port on loopback", at, d.Listen)
				}
			}
			return bad
		},
		label:   func(config.Display) string { return "web" },
		lasting: true,
		build: func(e *displayEnv, d config.Display) (display.Display, time.Duration, error) {
			if e.web == nil {
				e.web = &display.Web{Hub: e.hub, Lanes: map[string]bool{}, MaxStreams: e.cfg.API.MaxStreams, Client: httpguard.ClientOf, Admitted: httpguard.KeepConn}
			}
			e.web.Lanes[e.lane] = true
			if d.Listen != "" {
				ln, err := api.Listen(d.Listen)
				if err != nil {
					return nil, 0, err
				}
				mux := http.NewServeMux()
				routeWeb(mux, e.web)
				ln = httpguard.LimitListener(ln, e.cfg.API.MaxConnections)
				guarded := httpguard.NewGuard(d.Listen, false).Wrap(mux)
				e.wg.Add(1)
				go func() { defer e.wg.Done(); _ = api.Serve(e.ctx, ln, guarded) }()
				e.log.Info("web customer display", zap.String("url", "http://"+ln.Addr().String()+"/display/"+e.lane))
			}
			return nil, 0, nil // served by the API's listener or its own
		},
	},
}

func init() {
	for name, k := range displayKinds {
		config.RegisterDisplay(name, config.DisplayKind{Check: k.check, Label: k.label})
	}
}

// checkPortOrUSB: a display on a serial port, named by path or USB id.
func checkPortOrUSB(at string, d config.Display) problems {
	var bad problems
	if d.Port == "" && d.USB == "" {
		bad.add("%s: port or usb required", at)
	}
	if d.Port != "" && d.USB != "" {
		bad.add("%s: port or usb, not both", at)
	}
	bad = append(bad, config.CheckUSB(at, d.USB)...)
	if d.Baud < 0 {
		bad.add("%s.baud: must be positive", at)
	}
	return bad
}

// codePages are the names of display.CodePages: cp437 … cp1252.
func codePages() []string {
	return slices.SortedFunc(maps.Keys(display.CodePages), func(a, b string) int {
		return cmp.Or(cmp.Compare(len(a), len(b)), cmp.Compare(a, b))
	})
}
