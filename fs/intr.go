package fs

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// signalPoll is how often the pending signals of a caller whose request
// was interrupted harmlessly are checked again.
const signalPoll = 100 * time.Millisecond

// harmless are signals that interrupt a FUSE request without asking the
// caller to stop: bash catches SIGCHLD whenever a background job ends,
// the Go runtime sends SIGURG to preempt goroutines.
var harmless = sigmask(syscall.SIGCHLD, syscall.SIGURG, syscall.SIGWINCH, syscall.SIGCONT, syscall.SIGPROF)

func sigmask(sigs ...syscall.Signal) uint64 {
	var m uint64
	for _, s := range sigs {
		m |= 1 << (uint(s) - 1)
	}
	return m
}

// callerContext derives the context a blocking operation runs with from
// the FUSE request context. The kernel interrupts a request (and go-fuse
// cancels its context) when the caller gets any signal it catches, and
// only once per request. So an interrupt cancels the operation only if
// the caller has a signal pending other than the harmless ones (SIGINT,
// SIGTERM, a fatal signal's SIGKILL, ...); after a harmless one the
// caller's pending signals are polled until the operation ends. Call the
// returned stop when the operation is done.
func callerContext(ctx context.Context) (context.Context, context.CancelFunc) {
	caller, ok := fuse.FromContext(ctx)
	if !ok || caller.Pid == 0 {
		return context.WithCancel(ctx)
	}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
			return
		case <-ctx.Done():
		}
		tick := time.NewTicker(signalPoll)
		defer tick.Stop()
		for {
			if stopRequested(caller.Pid) {
				cancel()
				return
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return cctx, func() {
		close(done)
		cancel()
	}
}

// stopRequested reports whether thread tid has a signal pending that is
// not harmless, or is gone.
func stopRequested(tid uint32) bool {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", tid))
	if err != nil {
		return true
	}
	defer f.Close()
	pending, err := pendingSignals(bufio.NewScanner(f))
	if err != nil {
		return true
	}
	return pending&^harmless != 0
}

// pendingSignals reads the union of SigPnd (the thread's) and ShdPnd (the
// process's) from a /proc/PID/status text.
func pendingSignals(sc *bufio.Scanner) (uint64, error) {
	var m uint64
	found := 0
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "SigPnd" && k != "ShdPnd") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", k, err)
		}
		m |= n
		found++
	}
	if found != 2 {
		return 0, fmt.Errorf("SigPnd or ShdPnd missing")
	}
	return m, sc.Err()
}
