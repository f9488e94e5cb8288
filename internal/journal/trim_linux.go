package journal

import "golang.org/x/sys/unix"

// dropPages tells the kernel posd no longer needs the mapped pages at
// [addr, addr+size): they leave posd's resident set and stay in the page
// cache, read again from it when touched.
func dropPages(addr uintptr, size int64) {
	_, _, _ = unix.Syscall(unix.SYS_MADVISE, addr, uintptr(size), unix.MADV_DONTNEED)
}
