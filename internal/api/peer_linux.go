package api

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// peerUID is the uid of the process at the other end of a unix socket
// (SO_PEERCRED) or of a loopback TCP connection (the kernel's socket
// table, /proc/self/net/tcp: every local user connects from 127.0.0.1).
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

// loopbackUID finds the client's socket — its local address the peer's
// remote one — in the socket tables and reads its owner.
func loopbackUID(server, client *net.TCPAddr) (int, bool) {
	for _, table := range []struct {
		path string
		ip   func(net.IP) net.IP
	}{{"/proc/self/net/tcp", net.IP.To4}, {"/proc/self/net/tcp6", net.IP.To16}} {
		sip, cip := table.ip(server.IP), table.ip(client.IP)
		if sip == nil || cip == nil {
			continue
		}
		want := procAddr(cip, client.Port) + " " + procAddr(sip, server.Port)
		if uid, ok := findUID(table.path, want); ok {
			return uid, true
		}
	}
	return 0, false
}

// procAddr is an address as the kernel prints it there: each 32-bit word
// of the address in the host's (little-endian) order, then the port.
func procAddr(ip net.IP, port int) string {
	b := make([]byte, len(ip))
	for i := 0; i < len(ip); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = ip[i+3], ip[i+2], ip[i+1], ip[i]
	}
	return strings.ToUpper(hex.EncodeToString(b)) + fmt.Sprintf(":%04X", port)
}

func findUID(path, addrs string) (int, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) > 7 && fs[1]+" "+fs[2] == addrs {
			uid, err := strconv.Atoi(fs[7])
			return uid, err == nil
		}
	}
	return 0, false
}
