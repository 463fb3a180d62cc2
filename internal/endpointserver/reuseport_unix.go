//go:build linux || darwin || freebsd

package endpointserver

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePort is a net.ListenConfig Control function setting SO_REUSEPORT on
// the socket before it is bound.
func reusePort(_, _ string, c syscall.RawConn) error {
	var sockErr error
	if err := c.Control(func(fd uintptr) {
		sockErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return fmt.Errorf("SO_REUSEPORT: %w", err)
	}
	if sockErr != nil {
		return fmt.Errorf("SO_REUSEPORT: %w", sockErr)
	}
	return nil
}
