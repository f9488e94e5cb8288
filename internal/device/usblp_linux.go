package device

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unsafe"
)

// lpGetStatus is LPGETSTATUS (include/uapi/linux/lp.h): usblp answers it
// with the printer-class GET_PORT_STATUS byte, as an int.
const lpGetStatus = 0x060b

// usblpFile is an open /dev/usb/lp*: a file that also reads the
// printer-class status.
type usblpFile struct{ *os.File }

// PrinterStatus is the printer-class port status: LP_PERRORP 0x08 (no
// error), LP_PSELECD 0x10 (selected), LP_POUTPA 0x20 (paper out).
func (f usblpFile) PrinterStatus() (byte, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var st int32
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, lpGetStatus, uintptr(unsafe.Pointer(&st)))
	}); err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, &os.PathError{Op: "LPGETSTATUS", Path: f.Name(), Err: errno}
	}
	return byte(st), nil
}

// isUSBLP tells whether path is (or links to) a usblp node, /dev/usb/lp*.
func isUSBLP(path string) bool {
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	return filepath.Dir(path) == "/dev/usb" && strings.HasPrefix(filepath.Base(path), "lp")
}

func wrapFile(path string, f *os.File) io.ReadWriteCloser {
	if isUSBLP(path) {
		return usblpFile{f}
	}
	return f
}
