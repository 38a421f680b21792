package fs

import (
	"bytes"
	"context"
	"strings"
	"sync"
)

// defaultErrorsMax is how many lines an errors file keeps.
const defaultErrorsMax = 200

// errorLog is the content of one errors file: the newest max lines,
// oldest first. The logs live in daemon memory only; the daemon log has
// the same lines for good.
type errorLog struct {
	mu    sync.Mutex
	max   int
	lines []string
}

func newErrorLog(max int) *errorLog {
	if max <= 0 {
		max = defaultErrorsMax
	}
	return &errorLog{max: max}
}

// add appends line, dropping the oldest line past the bound.
func (l *errorLog) add(line string) {
	line = oneLine(line)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) >= l.max {
		n := copy(l.lines, l.lines[len(l.lines)-l.max+1:])
		l.lines = l.lines[:n]
	}
	l.lines = append(l.lines, line)
}

// Generate renders the errors file.
func (l *errorLog) Generate(_ context.Context, buf *bytes.Buffer) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.lines {
		buf.WriteString(s)
		buf.WriteByte('\n')
	}
	return nil
}

// oneLine keeps a message on one line of a line-oriented file.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// errorLogs holds the top-level errors file ("") and one per sandbox
// and container.
type errorLogs struct {
	mu  sync.Mutex
	max int
	m   map[string]*errorLog
}

func newErrorLogs(max int) *errorLogs {
	return &errorLogs{max: max, m: map[string]*errorLog{}}
}

// get returns the errors file of dir (a ref.errorsDir: "" for the top
// level, ID for a sandbox, ID/CID for a container), making it on first use.
func (ls *errorLogs) get(dir string) *errorLog {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l, ok := ls.m[dir]
	if !ok {
		l = newErrorLog(ls.max)
		ls.m[dir] = l
	}
	return l
}

// drop forgets the errors files of a deleted object: dir and those of
// the objects inside it (a sandbox's containers).
func (ls *errorLogs) drop(dir string) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for k := range ls.m {
		if k == dir || strings.HasPrefix(k, dir+"/") {
			delete(ls.m, k)
		}
	}
}
