package fs

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/katafs/katafs/sandbox"
)

func u32(n uint32) *uint32 { return &n }

func TestParseContainerCreate(t *testing.T) {
	for _, tc := range []struct {
		line string
		want sandbox.ContainerConfig
	}{
		{"c1", sandbox.ContainerConfig{ID: "c1"}},
		{"c1 --", sandbox.ContainerConfig{ID: "c1"}},
		{"c1 rootfs=/img/x.ext4 --tty", sandbox.ContainerConfig{ID: "c1", Rootfs: "/img/x.ext4", TTY: true}},
		{"c1 bundle=/b -- sh -c 'echo hi; exit 3'", sandbox.ContainerConfig{ID: "c1", Bundle: "/b", Args: []string{"sh", "-c", "echo hi; exit 3"}}},
		// After -- everything is the command, options included.
		{"c1 -- ls --tty rootfs=x --", sandbox.ContainerConfig{ID: "c1", Args: []string{"ls", "--tty", "rootfs=x", "--"}}},
	} {
		words, err := tokenize(tc.line)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseContainerCreate(words)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseContainerCreate(%q) = %+v, %v; want %+v", tc.line, got, err, tc.want)
		}
	}
}

func TestParseContainerCreateErrors(t *testing.T) {
	for _, tc := range []struct{ line, msg string }{
		{"", "missing container ID"},
		{"rootfs=/x", "missing container ID"},
		{"--tty", "missing container ID"},
		{"..", "bad id"},
		{"ctl", "reserved"},
		{"c1 rootfs=", "empty value"},
		{"c1 rootfs=a rootfs=b", "given twice"},
		{"c1 image=x", "unknown option"},
		{"c1 sh", "unexpected argument"},
		{"c1 --ty", "unexpected argument"},
	} {
		words, _ := tokenize(tc.line)
		_, err := parseContainerCreate(words)
		if !errors.Is(err, sandbox.ErrInvalid) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("parseContainerCreate(%q) err = %v; want ErrInvalid with %q", tc.line, err, tc.msg)
		}
	}
}

func TestParseExec(t *testing.T) {
	for _, tc := range []struct {
		line string
		want sandbox.ProcessConfig
	}{
		{"p1 -- true", sandbox.ProcessConfig{ID: "p1", Args: []string{"true"}}},
		{"p1 --tty --env A=1 --env=B=x=y --env 'C=a b' --cwd /tmp --user 1000:1000 -- sh -c 'echo $A'",
			sandbox.ProcessConfig{ID: "p1", TTY: true, Env: []string{"A=1", "B=x=y", "C=a b"}, Cwd: "/tmp",
				UID: u32(1000), GID: u32(1000), Args: []string{"sh", "-c", "echo $A"}}},
		{"p1 --user 0 -- id", sandbox.ProcessConfig{ID: "p1", UID: u32(0), Args: []string{"id"}}},
		{"p1 --env E= -- env", sandbox.ProcessConfig{ID: "p1", Env: []string{"E="}, Args: []string{"env"}}},
		{"p1 -- -- --tty", sandbox.ProcessConfig{ID: "p1", Args: []string{"--", "--tty"}}},
		// A quoted JSON object is JSON too.
		{`p1 '{"args":["ls"]}'`, sandbox.ProcessConfig{ID: "p1", JSON: []byte(`{"args":["ls"]}`)}},
	} {
		words, err := tokenize(tc.line)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseExec(words)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseExec(%q) = %+v, %v; want %+v", tc.line, got, err, tc.want)
		}
	}
}

func TestParseExecErrors(t *testing.T) {
	for _, tc := range []struct{ line, msg string }{
		{"", "missing process ID"},
		{"--tty -- sh", "missing process ID"},
		{"p/1 -- sh", "bad id"},
		{"ctl -- sh", "reserved"},
		{"p1", "no command"},
		{"p1 --", "no command"},
		{"p1 --tty", "no command"},
		{"p1 sh", "unexpected argument"},
		{"p1 --foo -- sh", "unexpected argument"},
		{"p1 --tty=yes -- sh", "takes no value"},
		{"p1 --env", "needs a value"},
		{"p1 --env NOEQ -- sh", "want NAME=VALUE"},
		{"p1 --env =v -- sh", "want NAME=VALUE"},
		{"p1 --cwd tmp -- sh", "absolute"},
		{"p1 --cwd /a --cwd /b -- sh", "given twice"},
		{"p1 --user bob -- sh", "UID[:GID]"},
		{"p1 --user 1:x -- sh", "UID[:GID]"},
		{"p1 --user 99999999999 -- sh", "UID[:GID]"},
		{`p1 '{"args":'`, "not valid JSON"},
	} {
		words, _ := tokenize(tc.line)
		_, err := parseExec(words)
		if !errors.Is(err, sandbox.ErrInvalid) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("parseExec(%q) err = %v; want ErrInvalid with %q", tc.line, err, tc.msg)
		}
	}
}

// A JSON object after `exec PID` is taken unsplit, quotes and blanks
// included; other verbs and lines are tokenized as usual.
func TestSplitJSONTail(t *testing.T) {
	c := &ctlFile{cmds: procsCommands(nil, ref{})}
	js := `{"args": ["sh", "-c", "echo 'a  b'"], "env": ["A=\"x\""]}`
	words, err := c.split("  exec\tp1  " + js + "  ")
	if err != nil || !reflect.DeepEqual(words, []string{"exec", "p1", js}) {
		t.Errorf("split = %q, %v", words, err)
	}
	cfg, err := parseExec(words[1:])
	if err != nil || string(cfg.JSON) != js || cfg.ID != "p1" {
		t.Errorf("parseExec = %+v, %v", cfg, err)
	}
	words, err = c.split(`exec p1 -- echo '{a b}'`)
	if err != nil || !reflect.DeepEqual(words, []string{"exec", "p1", "--", "echo", "{a b}"}) {
		t.Errorf("split = %q, %v", words, err)
	}
	if _, err := c.split("exec p1 {\x01}"); !errors.Is(err, sandbox.ErrInvalid) {
		t.Errorf("control character in JSON line: %v", err)
	}
}

func TestParseKill(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want syscall.Signal
	}{
		{nil, syscall.SIGTERM}, {[]string{"KILL"}, syscall.SIGKILL}, {[]string{"SIGINT"}, syscall.SIGINT}, {[]string{"9"}, syscall.SIGKILL},
	} {
		if got, err := parseKill(tc.args); err != nil || got != tc.want {
			t.Errorf("parseKill(%q) = %v, %v", tc.args, got, err)
		}
	}
	for _, args := range [][]string{{"BOGUS"}, {"0"}, {"TERM", "KILL"}} {
		if _, err := parseKill(args); !errors.Is(err, sandbox.ErrInvalid) {
			t.Errorf("parseKill(%q) err = %v", args, err)
		}
	}
}

func TestParseWinsize(t *testing.T) {
	if r, c, err := parseWinsize([]string{"40", "132"}); err != nil || r != 40 || c != 132 {
		t.Errorf("parseWinsize(40 132) = %d %d %v", r, c, err)
	}
	for _, w := range [][]string{{"abc"}, {"24"}, {"24", "x"}, {"0", "80"}, {"24", "80", "1"}, {"70000", "80"}, {"-1", "80"}} {
		if _, _, err := parseWinsize(w); !errors.Is(err, sandbox.ErrInvalid) {
			t.Errorf("parseWinsize(%q) err = %v", w, err)
		}
	}
}

func TestContainerAndProcessStatusRendering(t *testing.T) {
	var buf bytes.Buffer
	writeText(&buf, containerStatusFields(sandbox.ContainerStatus{ID: "c1", State: sandbox.StateRunning, Pid: 7}))
	if want := "id c1\nstate running\npid 7\nexit -\n"; buf.String() != want {
		t.Errorf("container status =\n%s\nwant\n%s", buf.String(), want)
	}
	buf.Reset()
	st := sandbox.ProcessStatus{ID: "p1", State: "exited", Pid: 9, Exit: "signal KILL", TTY: true,
		StdoutBytes: 1 << 40, StderrBytes: 3, StdoutDropped: 5}
	writeText(&buf, procStatusFields(st))
	want := "id p1\nstate exited\npid 9\nexit signal KILL\ntty true\nstdout_bytes 1099511627776\nstderr_bytes 3\nstdout_dropped 5\nstderr_dropped 0\n"
	if buf.String() != want {
		t.Errorf("process status =\n%s\nwant\n%s", buf.String(), want)
	}
	buf.Reset()
	if err := writeJSON(&buf, procStatusFields(st)); err != nil {
		t.Fatal(err)
	}
	wantJSON := `{
  "id": "p1",
  "state": "exited",
  "pid": 9,
  "exit": "signal KILL",
  "tty": true,
  "stdout_bytes": 1099511627776,
  "stderr_bytes": 3,
  "stdout_dropped": 5,
  "stderr_dropped": 0
}
`
	if buf.String() != wantJSON {
		t.Errorf("process status.json =\n%s\nwant\n%s", buf.String(), wantJSON)
	}
}

func TestRefPathsAndErrors(t *testing.T) {
	for _, tc := range []struct {
		r          ref
		path, errs string
	}{
		{ref{}, "", ""},
		{ref{sb: "s1"}, "/sandboxes/s1", "s1"},
		{ref{sb: "s1", ctr: "c1"}, "/sandboxes/s1/containers/c1", "s1/c1"},
		{ref{sb: "s1", ctr: "c1", proc: "p1"}, "/sandboxes/s1/containers/c1/procs/p1", "s1/c1"},
	} {
		if tc.r.path() != tc.path || tc.r.errorsDir() != tc.errs {
			t.Errorf("%+v: path %q errors %q", tc.r, tc.r.path(), tc.r.errorsDir())
		}
	}
	ls := newErrorLogs(5)
	ls.get("s1").add("a")
	ls.get("s1/c1").add("b")
	ls.get("s10").add("c")
	ls.drop("s1")
	var buf bytes.Buffer
	ls.get("s1/c1").Generate(t.Context(), &buf)
	ls.get("s10").Generate(t.Context(), &buf)
	if buf.String() != "c\n" {
		t.Errorf("after dropping s1: %q", buf.String())
	}
}
