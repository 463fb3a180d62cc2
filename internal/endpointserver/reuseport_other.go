//go:build !(linux || darwin || freebsd)

package endpointserver

import (
	"errors"
	"syscall"
)

// reusePort refuses: this platform's SO_REUSEPORT is not supported.
func reusePort(_, _ string, _ syscall.RawConn) error {
	return errors.New("SO_REUSEPORT is not supported on this platform")
}
