package scanner

import (
	"context"
	"io"

	"example.com/posd/internal/device"
)

// Serial reads a serial barcode scanner or sound-wave receiver: one code
// per CR, LF or CRLF terminated line. The port is opened anew after every
// failure, found again by USB id when it was named by one.
type Serial struct {
	Open    device.Opener
	Name    string
	Scene   string
	Report  Report
	Backoff Backoff
}

// Run reads until ctx ends.
func (s *Serial) Run(ctx context.Context, emit func(Scan)) error {
	open := func() (io.ReadCloser, error) { return s.Open() }
	return supervise(ctx, open, func(ctx context.Context, r io.Reader) error {
		var f LineFramer // a partial code does not survive a reconnect
		buf := make([]byte, 256)
		for {
			n, err := r.Read(buf)
			f.Feed(buf[:n], func(code string) { emit(Scan{Code: code, Scene: s.Scene, Source: s.Name}) })
			if err != nil {
				return err
			}
			if n == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}, s.Report, s.Backoff)
}
