package fs

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/katafs/katafs/sandbox"
)

// maxLine bounds one ctl line (without its newline).
const maxLine = 4096

// splitLine checks that line is text and splits it into words.
func splitLine(line string) ([]string, error) {
	if err := checkText(line); err != nil {
		return nil, err
	}
	return tokenize(line)
}

// checkText refuses a line that is not UTF-8 text without control
// characters (tabs are blanks).
func checkText(line string) error {
	if !utf8.ValidString(line) {
		return fmt.Errorf("%w: line is not UTF-8 text", sandbox.ErrInvalid)
	}
	for _, r := range line {
		if (r < ' ' && r != '\t') || r == 0x7f {
			return fmt.Errorf("%w: line holds control character %q", sandbox.ErrInvalid, r)
		}
	}
	return nil
}

// tokenize splits a line into words on blanks (space, tab). Single quotes
// keep everything up to the next single quote; double quotes keep
// everything up to the next unescaped double quote, where a backslash
// escapes only \ " $ and `; outside quotes a backslash escapes the next
// character. Quoted and unquoted parts next to each other make one word,
// and ” is an empty word. Nothing is expanded. An unterminated quote or a
// trailing backslash is an error wrapping ErrInvalid.
func tokenize(line string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
	)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("%w: unterminated ' quote", sandbox.ErrInvalid)
			}
			cur.WriteString(line[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			j, err := doubleQuoted(line[i+1:], &cur)
			if err != nil {
				return nil, err
			}
			i += j + 1
			inWord = true
		case c == '\\':
			if i+1 == len(line) {
				return nil, fmt.Errorf("%w: trailing backslash", sandbox.ErrInvalid)
			}
			i++
			cur.WriteByte(line[i])
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// doubleQuoted copies the inside of a double-quoted string from s (which
// starts after the opening quote) to cur and returns the index of the
// closing quote in s.
func doubleQuoted(s string, cur *strings.Builder) (int, error) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return i, nil
		case '\\':
			if i+1 < len(s) && strings.IndexByte("\\\"$`", s[i+1]) >= 0 {
				i++
				cur.WriteByte(s[i])
			} else {
				cur.WriteByte(c)
			}
		default:
			cur.WriteByte(c)
		}
	}
	return 0, fmt.Errorf("%w: unterminated \" quote", sandbox.ErrInvalid)
}
