package display

import (
	"context"
	"fmt"
	"io"
	"time"

	"example.com/posd/internal/device"
)

// ReceiptQueue keeps receipts until they are printed, across restarts.
type ReceiptQueue interface {
	Add(printer string, r Receipt) error
	List(printer string) ([]Receipt, error)
	Remove(printer string, id string) error
}

// Printer is an ESC/POS receipt printer. Show only queues the receipt
// (durably): a printer that is offline, out of paper or gone never delays
// or fails a payment. Run prints what is queued whenever the printer
// answers its status as ready.
type Printer struct {
	Name     string // the queue's key and the device's name
	Open     device.Opener
	Report   Report
	Queue    ReceiptQueue
	Store    string
	Width    int
	Encoding string
	Drawer   bool
	// StatusTimeout bounds each DLE EOT answer; Retry is the wait before
	// trying a printer again.
	StatusTimeout time.Duration
	Retry         time.Duration

	kick    chan struct{}
	conn    io.ReadWriteCloser
	replies chan byte
}

func (p *Printer) init() {
	if p.kick == nil {
		p.kick = make(chan struct{}, 1)
	}
	if p.StatusTimeout <= 0 {
		p.StatusTimeout = 500 * time.Millisecond
	}
	if p.Retry <= 0 {
		p.Retry = 2 * time.Second
	}
}

// Show queues a receipt for paid, refunded and reprinted orders.
func (p *Printer) Show(e Event) error {
	if e.Kind != Paid && e.Kind != Refunded && e.Kind != Reprint {
		return nil
	}
	p.init()
	if err := p.Queue.Add(p.Name, ReceiptOf(e, p.Store)); err != nil {
		return fmt.Errorf("printer %s: queue receipt: %w", p.Name, err)
	}
	select {
	case p.kick <- struct{}{}:
	default:
	}
	return nil
}

// Run prints queued receipts until ctx ends. It owns the connection.
func (p *Printer) Run(ctx context.Context) {
	p.init()
	defer p.close()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		case <-t.C:
		}
		// Also while idle: the printer's status is asked every Retry, so
		// an unplugged or out-of-paper printer shows in /v1/devices
		// without waiting for a receipt.
		p.drain()
		t.Reset(p.Retry)
	}
}

// drain prints every queued receipt; false if some are left for later.
func (p *Printer) drain() bool {
	rs, err := p.Queue.List(p.Name)
	if err != nil {
		p.Report(device.Degraded, "receipt queue: "+err.Error())
		return false
	}
	if !p.ready() {
		return len(rs) == 0
	}
	for _, r := range rs {
		if _, err := p.conn.Write(ReceiptBytes(r, p.Width, p.Encoding, p.Drawer)); err != nil {
			p.Report(device.Gone, err.Error())
			p.close()
			return false
		}
		if err := p.Queue.Remove(p.Name, r.ID); err != nil {
			p.Report(device.Degraded, "receipt queue: "+err.Error())
			return false
		}
	}
	return true
}

// ready opens the printer if it is not open, asks its status and reports
// it. An I/O error on the port (ENODEV: unplugged, maybe plugged back as
// another node) closes it and opens it again at once.
func (p *Printer) ready() bool {
	for attempt := 0; ; attempt++ {
		if err := p.connect(); err != nil {
			return false
		}
		st, ioErr := p.status()
		if ioErr != nil && attempt == 0 {
			p.close()
			continue
		}
		switch {
		case !st.Known:
			p.Report(device.Degraded, "status "+st.String())
			// No answer may mean the link is gone: open it anew next time.
			p.close()
			return false
		case !st.OK():
			p.Report(device.Degraded, st.String())
			return false
		}
		p.Report(device.Connected, st.String())
		return true
	}
}

func (p *Printer) connect() error {
	if p.conn != nil {
		return nil
	}
	c, err := p.Open()
	if err != nil {
		p.Report(device.StateOf(err), err.Error())
		return err
	}
	p.conn = c
	p.replies = make(chan byte, 64)
	// The reader goroutine owns reads; it ends when the port is closed.
	go func(c io.Reader, out chan<- byte) {
		buf := make([]byte, 64)
		for {
			n, err := c.Read(buf)
			for _, b := range buf[:n] {
				select {
				case out <- b:
				default:
				}
			}
			if err != nil && err != io.EOF {
				return
			}
			if n == 0 && err == io.EOF {
				return
			}
		}
	}(c, p.replies)
	return nil
}

func (p *Printer) close() {
	if p.conn != nil {
		p.conn.Close()
		p.conn = nil
	}
}

// classStatus is a port that reads the printer-class status (a usblp
// node: LPGETSTATUS); serial and network printers do not have it.
type classStatus interface {
	PrinterStatus() (byte, error)
}

// Printer-class port status bits (LP_PSELECD, LP_POUTPA).
const (
	classSelected = 0x10
	classPaperOut = 0x20
)

// Status asks DLE EOT 1 and DLE EOT 4 (and DLE EOT 2, the offline cause,
// when offline), and the printer-class status of a USB printer. No answer
// within StatusTimeout is an unknown status, never "ok".
func (p *Printer) Status() PrinterStatus {
	st, _ := p.status()
	return st
}

// status is Status, with the I/O error (not a missing answer) that made
// it unknown, if any.
func (p *Printer) status() (PrinterStatus, error) {
	var class byte
	hasClass := false
	if c, ok := p.conn.(classStatus); ok {
		b, err := c.PrinterStatus()
		if err != nil {
			return PrinterStatus{Reason: err.Error()}, err
		}
		class, hasClass = b, true
	}
	ask := func(cmd []byte) (byte, error) {
		for len(p.replies) > 0 { // stale answers
			<-p.replies
		}
		if _, err := p.conn.Write(cmd); err != nil {
			return 0, err
		}
		select {
		case b := <-p.replies:
			return b, nil
		case <-time.After(p.StatusTimeout):
			return 0, errNoAnswer
		}
	}
	var st PrinterStatus
	online, err := ask(statusOnline)
	var paper byte
	if err == nil {
		paper, err = ask(statusPaper)
	}
	if err == nil {
		st = ParseStatus(online, paper)
		if st.Known && !st.Online {
			// DLE EOT 2: why. No answer leaves it "offline", cause unknown.
			cause, cerr := ask(statusCause)
			switch {
			case cerr == nil:
				st = WithOfflineCause(st, cause)
			case cerr != errNoAnswer:
				err = cerr
			}
		}
	}
	if err != nil {
		st = PrinterStatus{Reason: err.Error()}
	}
	if hasClass {
		st = WithClassStatus(st, class)
	}
	if err == errNoAnswer {
		err = nil
	}
	return st, err
}

// WithClassStatus adds a printer-class status byte to what DLE EOT told:
// paper out or not selected is known even when DLE EOT is not answered.
func WithClassStatus(st PrinterStatus, class byte) PrinterStatus {
	selected, paperOut := class&classSelected != 0, class&classPaperOut != 0
	if selected && !paperOut {
		return st
	}
	if !st.Known {
		st = PrinterStatus{Known: true, Online: true}
	}
	st.Online = st.Online && selected
	st.PaperOut = st.PaperOut || paperOut
	return st
}
