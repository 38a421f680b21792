package relay

import "errors"

// Sentinels; every error of this package that one applies to wraps it.
var (
	// ErrClosed: the spool or stdin was closed (Close, Remove) while the
	// call waited or before it was made.
	ErrClosed = errors.New("relay: closed")
	// ErrBusy: a second Fill on a spool that is being filled.
	ErrBusy = errors.New("relay: busy")
	// ErrInvalid: a bad argument (a negative offset or limit) or a call
	// in the wrong state (Fill of a spool that is already done).
	ErrInvalid = errors.New("relay: invalid")
)
