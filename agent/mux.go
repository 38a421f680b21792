package agent

import (
	"github.com/hashicorp/yamux"
	"github.com/sirupsen/logrus"
)

// streamWindow is the receive window of each yamux stream.
const streamWindow = 4 << 20

// muxConfig is the yamux configuration of both ends.
func muxConfig() *yamux.Config {
	cfg := yamux.DefaultConfig()
	// A paused VM (snapshot, debugger, an overloaded TCG host) answers no
	// pings; it must not be declared dead for that.
	cfg.EnableKeepAlive = false
	// Same reason: an unacknowledged stream open would close the whole
	// session after 75 s. Callers bound their waits with a context instead.
	cfg.StreamOpenTimeout = 0
	// One stdio stream must keep the port busy: the default 256 KiB
	// window stalls a stream every 256 KiB for a window update's round
	// trip through the VM.
	cfg.MaxStreamWindowSize = streamWindow
	cfg.LogOutput = nil
	cfg.Logger = yamuxLogger{logrus.WithField("component", "yamux")}
	return cfg
}

// yamuxLogger sends yamux's messages to logrus at debug level: the errors
// it logs ("Failed to read header: EOF") are the ordinary end of a host
// connection, reported by the session loop anyway.
type yamuxLogger struct{ e *logrus.Entry }

func (l yamuxLogger) Print(v ...interface{})                 { l.e.Debug(v...) }
func (l yamuxLogger) Printf(format string, v ...interface{}) { l.e.Debugf(format, v...) }
func (l yamuxLogger) Println(v ...interface{})               { l.e.Debugln(v...) }

var _ yamux.Logger = yamuxLogger{}
