package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
)

// Retry tuning of Connect. Variables so tests can shrink them.
var (
	// connectAttemptTimeout bounds one dial+yamux+Check: an attempt whose
	// bytes went nowhere (guest not yet listening) must not eat ctx.
	connectAttemptTimeout = 2 * time.Second
	connectBackoffMin     = 5 * time.Millisecond
	connectBackoffMax     = 100 * time.Millisecond
)

// Connect dials the agent and returns a client once the agent has answered
// Check. Until the guest opens its end of the port, QEMU resets host
// connections, so Connect retries the whole dial+yamux+Check with a small
// backoff until Check answers or ctx ends; ctx's deadline is the only
// overall limit. ErrVsockUnavailable is not retried.
func Connect(ctx context.Context, d Dialer) (*Client, error) {
	start := time.Now()
	backoff := connectBackoffMin
	timer := time.NewTimer(0)
	if !timer.Stop() {
		<-timer.C
	}
	defer timer.Stop()
	for attempt := 1; ; attempt++ {
		t0 := time.Now()
		c, err := connectOnce(ctx, d)
		if err == nil {
			logrus.WithFields(logrus.Fields{"attempts": attempt, "waited": time.Since(start)}).Debug("agent: connected")
			return c, nil
		}
		logrus.WithFields(logrus.Fields{"attempt": attempt, "took": time.Since(t0)}).WithError(err).Debug("agent: connect attempt failed")
		if errors.Is(err, ErrVsockUnavailable) {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("agent: connect: no answer after %v (%d attempts): %w; last error: %w",
				time.Since(start).Round(time.Millisecond), attempt, ctx.Err(), err)
		}
		timer.Reset(backoff)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("agent: connect: no answer after %v (%d attempts): %w; last error: %w",
				time.Since(start).Round(time.Millisecond), attempt, ctx.Err(), err)
		case <-timer.C:
		}
		backoff = min(2*backoff, connectBackoffMax)
	}
}

// connectOnce is one attempt of Connect.
func connectOnce(ctx context.Context, d Dialer) (*Client, error) {
	actx, cancel := context.WithTimeout(ctx, connectAttemptTimeout)
	defer cancel()
	conn, err := d.Dial(actx)
	if err != nil {
		return nil, err
	}
	c, err := newClient(conn)
	if err != nil {
		return nil, err
	}
	if err := c.Check(actx); err != nil {
		c.close(0) // the session is broken or unanswered: no grace
		return nil, err
	}
	return c, nil
}
