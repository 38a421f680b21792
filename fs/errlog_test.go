package fs

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func TestErrorLogBound(t *testing.T) {
	l := newErrorLog(3)
	for i := range 5 {
		l.add(fmt.Sprintf("e%d", i))
	}
	var buf bytes.Buffer
	if err := l.Generate(t.Context(), &buf); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "e2\ne3\ne4\n"; got != want {
		t.Errorf("errors = %q; want %q", got, want)
	}
}

func TestErrorLogDefaultBoundAndOneLine(t *testing.T) {
	l := newErrorLog(0)
	for i := range defaultErrorsMax + 10 {
		l.add(fmt.Sprintf("line %d\nsecond part", i))
	}
	var buf bytes.Buffer
	l.Generate(t.Context(), &buf)
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != defaultErrorsMax {
		t.Fatalf("%d lines; want %d", len(lines), defaultErrorsMax)
	}
	if lines[0] != "line 10 second part" || lines[len(lines)-1] != fmt.Sprintf("line %d second part", defaultErrorsMax+9) {
		t.Errorf("first %q last %q", lines[0], lines[len(lines)-1])
	}
}

func TestErrorLogsDrop(t *testing.T) {
	ls := newErrorLogs(5)
	ls.get("s1").add("x")
	ls.drop("s1")
	var buf bytes.Buffer
	ls.get("s1").Generate(t.Context(), &buf)
	if buf.Len() != 0 {
		t.Errorf("errors of a recreated sandbox = %q; want empty", buf.String())
	}
}
