package fs

import (
	"errors"
	"strings"
	"testing"

	"github.com/katafs/katafs/sandbox"
)

func TestParseCreate(t *testing.T) {
	for _, tc := range []struct {
		line string
		want sandbox.Config
	}{
		{"s1", sandbox.Config{ID: "s1"}},
		{"s1 memory=512 cpus=2", sandbox.Config{ID: "s1", MemoryMiB: 512, CPUs: 2}},
		{"a.b_c-9 factory=cache netns=/var/run/netns/x proxy=kata shim=noop",
			sandbox.Config{ID: "a.b_c-9", Factory: "cache", NetNS: "/var/run/netns/x", Proxy: "kata", Shim: "noop"}},
		// fs checks syntax only: the backend judges values.
		{"s2 factory=bogus", sandbox.Config{ID: "s2", Factory: "bogus"}},
	} {
		words, err := tokenize(tc.line)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseCreate(words)
		if err != nil || got != tc.want {
			t.Errorf("parseCreate(%q) = %+v, %v; want %+v", tc.line, got, err, tc.want)
		}
	}
}

func TestParseCreateErrors(t *testing.T) {
	for _, tc := range []struct{ line, msg string }{
		{"", "missing ID"},
		{"memory=512", "missing ID"},
		{"..", "bad id"},
		{"'a/b'", "bad id"},
		{strings.Repeat("a", 100), "at most 64"},
		{"-x", "bad id"},
		{"s1 memory=lots", "positive integer"},
		{"s1 memory=-1", "positive integer"},
		{"s1 memory=0", "positive integer"},
		{"s1 cpus=+2", "positive integer"},
		{"s1 cpus=99999999999", "positive integer"},
		{"s1 color=red", "unknown option"},
		{"s1 memory", "unexpected argument"},
		{"s1 cpus=1 cpus=2", "given twice"},
		{"s1 netns=", "empty value"},
	} {
		words, err := tokenize(tc.line)
		if err != nil {
			t.Fatal(err)
		}
		_, err = parseCreate(words)
		if !errors.Is(err, sandbox.ErrInvalid) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("parseCreate(%q) err = %v; want ErrInvalid with %q", tc.line, err, tc.msg)
		}
	}
}

func TestCommandsUnknown(t *testing.T) {
	cs := sandboxCommands(nil, "s1")
	_, err := cs.lookup("explode")
	if !errors.Is(err, sandbox.ErrInvalid) || !strings.Contains(err.Error(), "delete, pause, release, resume, start, stop") {
		t.Errorf("lookup(explode) = %v", err)
	}
	for v := range sandboxVerbs {
		if _, err := cs.lookup(v); err != nil {
			t.Errorf("lookup(%s) = %v", v, err)
		}
	}
	err = cs["start"].run(t.Context(), []string{"now"})
	if !errors.Is(err, sandbox.ErrInvalid) {
		t.Errorf("start now = %v; want ErrInvalid", err)
	}
}
