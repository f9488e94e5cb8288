package httpguard

import (
	"encoding/binary"
	"net"
	"syscall"
)

// peerUID is the uid of the process at the other end of a unix socket
// (SO_PEERCRED) or of a loopback TCP connection (every local user
// connects from 127.0.0.1).
func peerUID(c net.Conn) (int, bool) {
	switch s := netConn(c).(type) {
	case *net.UnixConn:
		raw, err := s.SyscallConn()
		if err != nil {
			return 0, false
		}
		var cred *syscall.Ucred
		var cerr error
		if err := raw.Control(func(fd uintptr) {
			cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
		}); err != nil || cerr != nil {
			return 0, false
		}
		return int(cred.Uid), true
	case *net.TCPConn:
		local, lok := s.LocalAddr().(*net.TCPAddr)
		remote, rok := s.RemoteAddr().(*net.TCPAddr)
		if !lok || !rok || !remote.IP.IsLoopback() {
			return 0, false
		}
		return loopbackUID(local, remote)
	}
	return 0, false
}

// loopbackUID asks the kernel (sock_diag, one exact lookup) who owns the
// client's end of a loopback connection.
func loopbackUID(server, client *net.TCPAddr) (int, bool) {
	family, sip, cip := syscall.AF_INET, server.IP.To4(), client.IP.To4()
	if sip == nil || cip == nil {
		family, sip, cip = syscall.AF_INET6, server.IP.To16(), client.IP.To16()
	}
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 4) // NETLINK_SOCK_DIAG
	if err != nil {
		return 0, false
	}
	defer syscall.Close(fd)
	tv := syscall.Timeval{Usec: 100_000}
	_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	// nlmsghdr (16) + inet_diag_req_v2 (8 + inet_diag_sockid 48).
	req := make([]byte, 16+56)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], 20) // SOCK_DIAG_BY_FAMILY
	binary.NativeEndian.PutUint16(req[6:], syscall.NLM_F_REQUEST)
	req[16], req[17] = byte(family), syscall.IPPROTO_TCP
	binary.NativeEndian.PutUint32(req[20:], 0xffffffff) // every state
	id := req[24:]
	binary.BigEndian.PutUint16(id[0:], uint16(client.Port))
	binary.BigEndian.PutUint16(id[2:], uint16(server.Port))
	copy(id[4:20], cip)
	copy(id[20:36], sip)
	binary.NativeEndian.PutUint32(id[40:], 0xffffffff) // no cookie
	binary.NativeEndian.PutUint32(id[44:], 0xffffffff)
	if err := syscall.Sendto(fd, req, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return 0, false
	}
	buf := make([]byte, 4096)
	n, _, err := syscall.Recvfrom(fd, buf, 0)
	// nlmsghdr, then inet_diag_msg: family, state, timer, retrans, the
	// sockid (48), expires, rqueue, wqueue, uid.
	if err != nil || n < 16+68 || binary.NativeEndian.Uint16(buf[4:]) != 20 {
		return 0, false
	}
	return int(binary.NativeEndian.Uint32(buf[16+64:])), true
}
