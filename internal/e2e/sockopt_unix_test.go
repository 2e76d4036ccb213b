//go:build unix

package e2e

import "syscall"

// smallReadBuffer shrinks a socket's receive buffer before it connects, so
// that a client that does not read holds back its server quickly.
func smallReadBuffer(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
	}); err != nil {
		return err
	}
	return serr
}
