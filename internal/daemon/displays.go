package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"example.com/posd/display"
	"example.com/posd/internal/api"
	"example.com/posd/internal/config"
	"example.com/posd/internal/device"
	"example.com/posd/internal/journal"
)

// receiptQueue keeps receipts in the journal until they are printed.
type receiptQueue struct{ j *journal.Journal }

func (q receiptQueue) key(printer, id string) string { return printer + "\x00" + id }

func (q receiptQueue) Add(printer string, r display.Receipt) error {
	return q.j.Batch(func(tx *journal.Tx) error { return tx.Put(journal.Receipts, q.key(printer, r.ID), r) })
}

func (q receiptQueue) List(printer string) ([]display.Receipt, error) {
	var out []display.Receipt
	err := q.j.View(func(tx *journal.Tx) error {
		return tx.ForEachPrefix(journal.Receipts, printer+"\x00", func(_ string, v []byte) error {
			var r display.Receipt
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

func (q receiptQueue) Remove(printer, id string) error {
	return q.j.Batch(func(tx *journal.Tx) error { return tx.Delete(journal.Receipts, q.key(printer, id)) })
}

func opener(d config.Display) device.Opener {
	switch {
	case d.Address != "":
		return device.TCP(d.Address, 2*time.Second)
	case d.Type == "escpos" && d.USB != "":
		// usblp (found through sysfs) or a USB serial adapter
		return device.USBPrinter(device.Sysfs, device.SerialOptions{USB: d.USB, Baud: d.Baud})
	case d.Type == "escpos":
		// decided on each open: a udev link only resolves while the printer is there
		file, ser := device.File(d.Port), device.Serial(device.SerialOptions{Port: d.Port, Baud: d.Baud})
		return func() (io.ReadWriteCloser, error) {
			if isTTY(d.Port) {
				return ser()
			}
			return file() // /dev/usb/lp*
		}
	}
	return device.Serial(device.SerialOptions{Port: d.Port, USB: d.USB, Baud: d.Baud})
}

// isTTY tells a serial port from a USB printer class device (/dev/usb/lp*)
// by name, after following symlinks such as udev's /dev/posd/printer-0.
func isTTY(path string) bool {
	return !strings.HasPrefix(resolveLinks(path), "/dev/usb/lp")
}

// resolveLinks follows path while it is a symlink (a link's target need not
// exist); it returns path itself when it is not a link.
func resolveLinks(path string) string {
	for range 40 { // the kernel's own limit
		target, err := os.Readlink(path)
		if err != nil {
			break
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		path = filepath.Clean(target)
	}
	return path
}

// startDisplays runs every lane's displays, each on its own goroutine with
// its own queue, and returns the web display's handler, if any lane has one.
// With web false, web displays are left alone (a reload keeps them).
func startDisplays(ctx context.Context, wg *sync.WaitGroup, cfg config.Config, hub *display.Hub, j *journal.Journal,
	reg *device.Registry, log *zap.Logger, stdout io.Writer, web0 bool) (*display.Web, error) {
	var web *display.Web
	store := cfg.Merchant.StoreID
	for _, l := range cfg.Lanes {
		for i, d := range l.Displays {
			lane := l.ID
			dlog := log.Named("display").With(zap.String("lane", lane), zap.String("type", d.Type), zap.String("device", d.Name()))
			onErr := func(err error) { dlog.Warn("display failed; payments go on", zap.Error(err)) }
			var dev display.Display
			hold := 5 * time.Second
			switch d.Type {
			case "terminal":
				dev, hold = &display.Terminal{W: stdout}, 0 // a log: nothing to hold
			case "vfd":
				dev = &display.VFDDevice{
					VFD:    display.VFD{Language: d.Language, Encoding: display.VFDEncoder(d.Encoding)},
					Open:   opener(d),
					Report: display.Report(reg.Reporter(lane, "display", "vfd", d.Name())),
				}
			case "escpos":
				p := &display.Printer{
					Name: fmt.Sprintf("%s/%d", lane, i), Open: opener(d), Queue: receiptQueue{j},
					Report: display.Report(reg.Reporter(lane, "display", "escpos", d.Name())),
					Store:  store, Width: d.Width, Encoding: d.Encoding, Drawer: d.Drawer,
				}
				wg.Add(1)
				go func() { defer wg.Done(); p.Run(ctx) }()
				dev = p
			case "web":
				if !web0 {
					continue
				}
				if web == nil {
					web = &display.Web{Hub: hub, Lanes: map[string]bool{}, MaxStreams: cfg.API.MaxStreams}
				}
				web.Lanes[lane] = true
				if d.Listen != "" {
					ln, err := api.Listen(d.Listen)
					if err != nil {
						return nil, err
					}
					mux := http.NewServeMux()
					routeWeb(mux, web)
					ln = api.LimitListener(ln, cfg.API.MaxConnections)
					guarded := api.NewGuard(d.Listen, false).Wrap(mux)
					wg.Add(1)
					go func() { defer wg.Done(); _ = api.Serve(ctx, ln, guarded) }()
					dlog.Info("web customer display", zap.String("url", "http://"+ln.Addr().String()+"/display/"+lane))
				}
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				display.RunDevice(ctx, hub, lane, dev, 2*time.Second, hold, onErr)
			}()
		}
	}
	return web, nil
}

func routeWeb(mux interface {
	HandleFunc(string, func(http.ResponseWriter, *http.Request))
}, web *display.Web) {
	mux.HandleFunc("GET /display/{lane}", web.Page)
	mux.HandleFunc("GET /display/{lane}/events", web.CustomerEvents)
}

// startWebDisplays serves the web displays (they are not restarted by a
// reload: their listeners and routes live as long as posd).
func startWebDisplays(ctx context.Context, wg *sync.WaitGroup, cfg config.Config, hub *display.Hub, log *zap.Logger) (*display.Web, error) {
	only := cfg
	only.Lanes = nil
	for _, l := range cfg.Lanes {
		l.Scanners = nil
		var ds []config.Display
		for _, d := range l.Displays {
			if d.Type == "web" {
				ds = append(ds, d)
			}
		}
		l.Displays = ds
		only.Lanes = append(only.Lanes, l)
	}
	return startDisplays(ctx, wg, only, hub, nil, nil, log, nil, true)
}

// displaySet is the displays other than web ones, restartable on SIGHUP.
type displaySet struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (d *displaySet) start(ctx context.Context, cfg config.Config, hub *display.Hub, j *journal.Journal,
	reg *device.Registry, log *zap.Logger, stdout io.Writer) error {
	ctx, d.cancel = context.WithCancel(ctx)
	_, err := startDisplays(ctx, &d.wg, cfg, hub, j, reg, log, stdout, false)
	if err != nil {
		d.stop()
	}
	return err
}

func (d *displaySet) stop() {
	if d.cancel != nil {
		d.cancel()
	}
	d.wg.Wait()
}
