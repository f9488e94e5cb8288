package scanner

import (
	"bufio"
	"context"
	"io"

	"example.com/posd/internal/device"
)

// Scene is the pay request's scene: how the code was read.
const (
	SceneBarCode  = "bar_code"
	SceneWaveCode = "wave_code"
)

// Scan is one code read by a device.
type Scan struct {
	Code   string
	Scene  string
	Source string // the device, for messages
}

// Source reads one device. Run blocks until ctx ends or the device fails,
// calling emit for each code; it closes what it opened.
type Source interface {
	Run(ctx context.Context, emit func(Scan)) error
}

// Lines reads one code per line from r: the terminal during development,
// and any line-framed stream. Lines longer than 256 bytes are dropped.
type Lines struct {
	R      io.Reader
	Name   string
	Scene  string
	Report Report // told connected when reading starts, gone at EOF or an error
}

// Run reads until EOF or ctx ends, calling emit from its reader goroutine
// (no hand-off between the terminator and the payment). A reader that
// cannot be interrupted (a terminal) leaves that goroutine blocked until
// the process exits; it emits nothing after Run returns.
func (l *Lines) Run(ctx context.Context, emit func(Scan)) error {
	report := l.Report
	if report == nil {
		report = func(device.State, string) {}
	}
	report(device.Connected, "")
	errc := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(l.R)
		sc.Buffer(make([]byte, 256), 256)
		for sc.Scan() {
			if ctx.Err() != nil {
				return
			}
			emit(Scan{Code: sc.Text(), Scene: l.Scene, Source: l.Name})
		}
		errc <- sc.Err()
	}()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case err := <-errc:
		detail := "end of input"
		if err != nil {
			detail = err.Error()
		}
		report(device.Gone, detail)
		return err
	}
}
