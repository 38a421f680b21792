// Command katafs-agent is the katafs guest agent. As PID 1 of a sandbox VM
// (the initrd's /init) it boots the guest and serves the agent protocol on
// the virtio-serial port; with -listen it serves on a unix socket instead,
// without PID 1 duties, for tests and debugging.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/katafs/katafs/agent"
)

func main() {
	// Before the PID 1 check: a container's exec server is PID 1 of its
	// own pid namespace.
	if agent.IsContainerInit() {
		agent.RunContainerInit()
	}
	if os.Getpid() == 1 {
		// The kernel passes unknown boot parameters as arguments: parse none.
		agent.RunInit()
	}
	listen := flag.String("listen", "", "serve on this unix socket instead of the virtio-serial port (no PID 1 duties)")
	debug := flag.Bool("debug", false, "log debug messages")
	flag.Parse()
	if *listen == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "katafs-agent: not PID 1: use -listen PATH to serve on a unix socket")
		os.Exit(2)
	}
	if *debug {
		logrus.SetLevel(logrus.DebugLevel)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
	defer stop()
	fmt.Fprintln(os.Stderr, agent.BootMarker)
	if err := agent.ServeUnix(ctx, *listen); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(os.Stderr, "katafs-agent: %v\n", err)
		os.Exit(1)
	}
}
