package agent

import (
	"errors"
	"golang.org/x/sys/unix"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// copyBufSize is the copy buffer of stdio pumps: large, so that one
// stream keeps the port busy.
const copyBufSize = 256 << 10

// outPump copies one output of a process (a pipe, or a pty master) to
// whichever host stream is attached, one at a time. It reads the pipe
// only while a stream is attached and keeps whatever a dying stream did
// not take, so a host that reconnects and attaches again gets the rest
// of the output, nothing lost and nothing twice. At EOF of the pipe it
// closes the attached stream (FIN); streams attached later end at once.
type outPump struct {
	src io.ReadCloser

	mu      sync.Mutex
	cur     net.Conn      // attached stream, nil if none
	changed chan struct{} // closed and replaced when cur changes
	eof     bool          // src is at EOF and everything went out
}

func newOutPump(src io.ReadCloser) *outPump {
	p := &outPump{src: src, changed: make(chan struct{})}
	go p.run()
	return p
}

// finishedPump is a pump of a stream that does not exist (stderr of a
// tty process): attaches end at once.
func finishedPump() *outPump {
	return &outPump{eof: true, changed: make(chan struct{})}
}

// attach makes s the stream that output goes to. A stream already
// attached is closed: the newest attach wins (a host that reconnected).
func (p *outPump) attach(s net.Conn) {
	p.mu.Lock()
	if p.eof {
		p.mu.Unlock()
		s.Close()
		return
	}
	old := p.cur
	p.cur = s
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	if old != nil {
		old.Close() // interrupts a Write blocked on it
	}
}

// stream waits for an attached stream; nil once the pump was stopped.
func (p *outPump) stream() net.Conn {
	for {
		p.mu.Lock()
		s, ch, eof := p.cur, p.changed, p.eof
		p.mu.Unlock()
		if s != nil || eof {
			return s
		}
		<-ch
	}
}

// stop ends a pump that no stream is attached to (its process is being
// removed); an attached one drains to the end of its source first.
func (p *outPump) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil || p.eof {
		return
	}
	p.eof = true
	close(p.changed)
	p.changed = make(chan struct{})
}

// detach drops s if it is still the attached stream.
func (p *outPump) detach(s net.Conn) {
	p.mu.Lock()
	if p.cur == s {
		p.cur = nil
	}
	p.mu.Unlock()
	s.Close()
}

func (p *outPump) run() {
	buf := make([]byte, copyBufSize)
	for {
		s := p.stream() // read nothing until someone takes it
		if s == nil {
			break
		}
		n, err := p.src.Read(buf)
		if err == nil && n < len(buf)/2 {
			n = p.gather(buf, n)
		}
		if n > 0 && !p.deliver(s, buf[:n]) {
			break
		}
		if err != nil {
			if !isEOF(err) {
				logStdioError(err)
			}
			break
		}
	}
	p.src.Close()
	p.mu.Lock()
	p.eof = true
	s := p.cur
	p.cur = nil
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	if s != nil {
		s.Close() // FIN after the last byte
	}
}

// gatherWait is how long gather waits for a writer that is still
// producing. One big frame instead of many small ones is what the guest's
// single vCPU needs (under TCG: 7.9 MB/s with a frame per pipe read, 11.9
// MB/s gathered); a line printed now and then waits at most this long,
// and output before an exit not at all (poll reports the hang-up at once).
const gatherWait = 2 * time.Millisecond

// gather tops buf[:n] up with what the pipe holds, and while the writer
// keeps producing (more arrives within gatherWait) waits for more, until
// buf is half full.
func (p *outPump) gather(buf []byte, n int) int {
	f, ok := p.src.(*os.File)
	if !ok {
		return n
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return n
	}
	for {
		n = p.topUp(buf, n)
		if n >= len(buf)/2 {
			return n
		}
		more := false
		rc.Control(func(fd uintptr) {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			k, _ := unix.Poll(fds, int(gatherWait/time.Millisecond))
			more = k > 0 && fds[0].Revents&unix.POLLIN != 0
		})
		if !more {
			return n
		}
	}
}

// topUp adds what else the pipe holds right now to buf[:n] without
// waiting: a writer that writes in small pieces would otherwise cost one
// yamux frame (and, in a VM, one port write) per piece.
func (p *outPump) topUp(buf []byte, n int) int {
	f, ok := p.src.(*os.File)
	if !ok {
		return n
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return n
	}
	for n < len(buf) {
		var k int
		rc.Read(func(fd uintptr) bool {
			// Read only what FIONREAD (TIOCINQ) says is there: the fd may be in
			// blocking mode (passed over SCM_RIGHTS), and a blocking
			// read here would hold back output until the buffer fills
			// or the process ends (tail -f would see nothing).
			avail, err := unix.IoctlGetInt(int(fd), unix.TIOCINQ) // FIONREAD
			if err != nil || avail <= 0 {
				return true
			}
			k, _ = syscall.Read(int(fd), buf[n:n+min(avail, len(buf)-n)])
			return true // never wait
		})
		if k <= 0 {
			break
		}
		n += k
	}
	return n
}

// deliver writes b to the attached stream, moving on to the next
// attached stream whenever one fails, until all of b went out. It
// reports false if the pump was stopped first.
func (p *outPump) deliver(s net.Conn, b []byte) bool {
	for len(b) > 0 {
		n, err := s.Write(b)
		b = b[n:]
		if err != nil {
			p.detach(s)
			if s = p.stream(); s == nil {
				return false
			}
		}
	}
	return true
}

// isEOF is the end of an output: io.EOF of a pipe, EIO of a pty master
// whose slave is closed everywhere.
func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.EIO) || errors.Is(err, os.ErrClosed)
}

// stdinSink feeds host streams into a process's stdin. A stream that ends
// with the host's FIN closes stdin (EOF for the process); one that ends
// because its session died leaves stdin open for the next attach.
type stdinSink struct {
	dst *os.File
	tty bool // dst is a pty master: EOF is ^D, the master stays open

	mu     sync.Mutex
	cur    net.Conn
	last   chan struct{} // closed when the latest copier is done
	closed bool
	wmu    sync.Mutex // serializes writes with close
}

func newStdinSink(dst *os.File, tty bool) *stdinSink {
	return &stdinSink{dst: dst, tty: tty}
}

// attach copies s into stdin until s ends. sessionDead reports whether
// the session of s is gone (then the end of s is no EOF for the process).
func (k *stdinSink) attach(s net.Conn, sessionDead func() bool) {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		s.Close()
		return
	}
	old, prev := k.cur, k.last
	k.cur = s
	done := make(chan struct{})
	k.last = done
	k.mu.Unlock()
	if old != nil {
		old.Close()
	}
	go func() {
		defer close(done)
		if prev != nil {
			<-prev // its bytes came first
		}
		buf := make([]byte, copyBufSize)
		for {
			n, err := s.Read(buf)
			if n > 0 {
				k.wmu.Lock()
				_, werr := k.dst.Write(buf[:n])
				k.wmu.Unlock()
				if werr != nil {
					s.Close()
					k.close() // the process closed its stdin: no reader left
					return
				}
			}
			if err != nil {
				k.mu.Lock()
				current := k.cur == s
				if current {
					k.cur = nil
				}
				k.mu.Unlock()
				s.Close()
				if current && errors.Is(err, io.EOF) && !sessionDead() {
					k.close()
				}
				return
			}
		}
	}()
}

// close gives the process EOF on stdin. For a tty that is the EOF
// character; the master stays open as it also carries the output.
func (k *stdinSink) close() {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return
	}
	k.closed = true
	s := k.cur
	k.cur = nil
	k.mu.Unlock()
	if s != nil {
		s.Close()
	}
	k.wmu.Lock()
	defer k.wmu.Unlock()
	if k.tty {
		k.dst.Write([]byte{4}) // VEOF
		return
	}
	k.dst.Close()
}
