//go:build !linux

package wrapper

import "errors"

// SetSubreaper is only supported on Linux; elsewhere it returns
// errors.ErrUnsupported.
func SetSubreaper() error { return errors.ErrUnsupported }

// IsSubreaper is only supported on Linux; elsewhere it returns false and
// errors.ErrUnsupported.
func IsSubreaper() (bool, error) { return false, errors.ErrUnsupported }
