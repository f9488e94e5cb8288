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
	"example.com/posd/internal/config"
	"example.com/posd/internal/device"
	"example.com/posd/internal/journal"
)

// receiptQueue keeps receipts in the journal until they are printed.
type receiptQueue struct{ j *journal.Journal }

func (q receiptQueue) Add(printer string, r display.Receipt) error {
	return q.j.Batch(func(tx *journal.Tx) error { return tx.PutReceipt(printer, r.ID, r) })
}

func (q receiptQueue) List(printer string) ([]display.Receipt, error) {
	var out []display.Receipt
	err := q.j.View(func(tx *journal.Tx) error {
		return tx.EachReceipt(printer, func(v []byte) error {
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
	return q.j.Batch(func(tx *journal.Tx) error { return tx.DeleteReceipt(printer, id) })
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

// startDisplays runs every lane's displays, each built by its kind
// (displayKinds) and fed on its own goroutine from its own queue, and
// returns the web display's handler, if any lane has one. With lasting
// true only the lasting kinds (web) are started, otherwise only the others
// (a reload keeps the lasting ones).
func startDisplays(ctx context.Context, wg *sync.WaitGroup, cfg config.Config, hub *display.Hub, j *journal.Journal,
	reg *device.Registry, log *zap.Logger, stdout io.Writer, lasting bool) (*display.Web, error) {
	e := &displayEnv{ctx: ctx, wg: wg, cfg: cfg, hub: hub, j: j, reg: reg, stdout: stdout}
	for _, l := range cfg.Lanes {
		for i, d := range l.Displays {
			k, ok := displayKinds[d.Type]
			if !ok { // config.Load refuses it; a config built in code may not have been loaded
				return nil, fmt.Errorf("%w: lane %s display %d: type %q: not a display type (%v)", config.ErrConfig, l.ID, i, d.Type, config.DisplayTypes())
			}
			if k.lasting != lasting {
				continue
			}
			e.lane, e.index = l.ID, i
			e.log = log.Named("display").With(zap.String("lane", l.ID), zap.String("type", d.Type), zap.String("device", d.Name()))
			dev, hold, err := k.build(e, d)
			if err != nil {
				return nil, err
			}
			if dev == nil {
				continue
			}
			lane, dlog := l.ID, e.log
			onErr := func(err error) { dlog.Warn("display failed; payments go on", zap.Error(err)) }
			wg.Add(1)
			go func() {
				defer wg.Done()
				display.RunDevice(ctx, hub, lane, dev, 2*time.Second, hold, onErr)
			}()
		}
	}
	return e.web, nil
}

func routeWeb(mux interface {
	HandleFunc(string, func(http.ResponseWriter, *http.Request))
}, web *display.Web) {
	mux.HandleFunc("GET /display/{lane}", web.Page)
	mux.HandleFunc("GET /display/{lane}/events", web.CustomerEvents)
}

// startWebDisplays serves the web displays, the lasting kind (they are not
// restarted by a reload: their listeners and routes live as long as posd).
func startWebDisplays(ctx context.Context, wg *sync.WaitGroup, cfg config.Config, hub *display.Hub, log *zap.Logger) (*display.Web, error) {
	return startDisplays(ctx, wg, cfg, hub, nil, nil, log, nil, true)
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
