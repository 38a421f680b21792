package sandbox

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// agentErr maps an error of an agent call onto the sentinels, keeping the
// agent's message: the guest knows best what went wrong.
func agentErr(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	msg := err.Error()
	if st, ok := status.FromError(err); ok {
		msg = st.Message()
		switch st.Code() {
		case codes.NotFound:
			return fmt.Errorf("%w: %s: %s", ErrNotFound, what, msg)
		case codes.AlreadyExists:
			return fmt.Errorf("%w: %s: %s", ErrExists, what, msg)
		case codes.FailedPrecondition:
			return fmt.Errorf("%w: %s: %s", ErrBusy, what, msg)
		case codes.InvalidArgument:
			return fmt.Errorf("%w: %s: %s", ErrInvalid, what, msg)
		case codes.ResourceExhausted:
			return fmt.Errorf("%w: %s: %s", ErrNoSpace, what, msg)
		}
	}
	return fmt.Errorf("%w: %s: %s", ErrVM, what, msg)
}
