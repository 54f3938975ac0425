package doctor

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
	"time"
)

// socketTimeout bounds CheckSocket's connect; a Unix socket answers at once
// or not at all.
const socketTimeout = time.Second

// SocketError means this process may not connect to the admin's Unix
// socket: connecting needs write permission on it, and Envoy creates it
// mode 0755 as its own user unless the bootstrap's pipe.mode says otherwise.
type SocketError struct {
	Path     string
	UID, GID int // ours, effective
	// Mode, OwnerUID and OwnerGID are the socket's; StatErr is set when
	// they could not be read.
	Mode               fs.FileMode
	OwnerUID, OwnerGID int
	StatErr            error
	Err                error // the connect's
}

func (e *SocketError) Error() string {
	s := fmt.Sprintf("admin socket %s is not connectable for uid %d gid %d (%v)", e.Path, e.UID, e.GID, e.Err)
	if e.StatErr != nil {
		s += fmt.Sprintf("; cannot stat it (%v), so a directory on the way may not let this user through", e.StatErr)
	} else {
		s += fmt.Sprintf("; it is %v (%#o) owned by uid %d gid %d, and connecting needs write permission", e.Mode, e.Mode.Perm(), e.OwnerUID, e.OwnerGID)
	}
	return s + "; fix: set pipe.mode in Envoy's bootstrap (admin: {address: {pipe: {path: " + e.Path +
		", mode: 438}}} makes it 0666; 432 (0660) with a group both containers share), or run both as one uid"
}

func (e *SocketError) Unwrap() error { return e.Err }

// CheckSocket connects to the Unix socket at path and returns a
// *SocketError when the connect is refused for permission (EACCES), and nil
// otherwise: a socket that is missing or refuses connections (Envoy not up
// yet) is the reachability check's business.
func CheckSocket(path string) error {
	c, err := net.DialTimeout("unix", path, socketTimeout)
	if err == nil {
		c.Close()
		return nil
	}
	if !errors.Is(err, syscall.EACCES) {
		return nil
	}
	e := &SocketError{Path: path, UID: os.Geteuid(), GID: os.Getegid(), Err: syscall.EACCES}
	fi, serr := os.Stat(path)
	if serr != nil {
		e.StatErr = serr
		return e
	}
	e.Mode = fi.Mode()
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.OwnerUID, e.OwnerGID = int(st.Uid), int(st.Gid)
	}
	return e
}
