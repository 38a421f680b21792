package fs

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/katafs/katafs/sandbox"
)

func TestTokenize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"   \t ", nil},
		{"start", []string{"start"}},
		{"  create  s1\tmemory=512 ", []string{"create", "s1", "memory=512"}},
		{`exec p1 -- sh -c 'echo hi; exit 3'`, []string{"exec", "p1", "--", "sh", "-c", "echo hi; exit 3"}},
		{`a "b c" d`, []string{"a", "b c", "d"}},
		{`a'b c'd`, []string{"ab cd"}},
		{`'' x`, []string{"", "x"}},
		{`""`, []string{""}},
		{`'$HOME *'`, []string{"$HOME *"}},
		{`"$HOME" *`, []string{"$HOME", "*"}},
		{`"a \"q\" \\ \$ \x"`, []string{`a "q" \ $ \x`}},
		{`'a\b'`, []string{`a\b`}},
		{`a\ b`, []string{"a b"}},
		{`"it's"`, []string{"it's"}},
		{`'say "hi"'`, []string{`say "hi"`}},
		{"create 'a/b'", []string{"create", "a/b"}},
	} {
		got, err := tokenize(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("tokenize(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestTokenizeErrors(t *testing.T) {
	for _, in := range []string{`'abc`, `"abc`, `a "b\"`, `abc\`, `x 'y' 'z`} {
		if got, err := tokenize(in); !errors.Is(err, sandbox.ErrInvalid) {
			t.Errorf("tokenize(%q) = %q, %v; want ErrInvalid", in, got, err)
		}
	}
}

func TestSplitLineRejectsBinary(t *testing.T) {
	for _, in := range []string{"start\x00", "\xff\xfe", "a\rb", "x\x1b[0m", "del\x7f"} {
		if _, err := splitLine(in); !errors.Is(err, sandbox.ErrInvalid) {
			t.Errorf("splitLine(%q) err = %v; want ErrInvalid", in, err)
		}
	}
	if w, err := splitLine("create\ts1 proxy=kata é"); err != nil || len(w) != 4 {
		t.Errorf("splitLine of text = %q, %v", w, err)
	}
	if _, err := splitLine(strings.Repeat("x", maxLine)); err != nil {
		t.Errorf("splitLine of a long word: %v", err)
	}
}
