//go:build !linux

package device

import (
	"io"
	"os"
)

func wrapFile(path string, f *os.File) io.ReadWriteCloser {
	return f
}
