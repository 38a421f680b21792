package fs

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMountCreateListStatus(t *testing.T) {
	m := mountFake(t)
	out := m.mustSh(`echo create s1 memory=512 > $M/ctl && ls $M/sandboxes && cat $M/sandboxes/s1/status`)
	if want := "s1\n" + wantStatus; out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	if got := m.mustSh(`ls $M`); got != "clone\nctl\nerrors\nsandboxes\nversion\n" {
		t.Errorf("ls /kata = %q", got)
	}
	if got := m.mustSh(`ls $M/sandboxes/s1`); got != "config\nconsole\ncontainers\nctl\ndevices\nerrors\nevents\ninterfaces\nroutes\nstatus\nstatus.json\n" {
		t.Errorf("ls sandboxes/s1 = %q", got)
	}
	if got := m.mustSh(`cat $M/version`); got != "katafs 0.1.0\nagent-protocol 1\nqemu 9.2.0\n" {
		t.Errorf("version = %q", got)
	}
	if got := m.mustSh(`grep '"memory": 512' $M/sandboxes/s1/status.json && grep -c '"memory_mib": 512' $M/sandboxes/s1/config`); !strings.HasSuffix(got, "1\n") {
		t.Errorf("status.json/config: %q", got)
	}
	if got := m.mustSh(`tail -1 $M/sandboxes/s1/status`); got != "containers 0\n" {
		t.Errorf("tail -1 status = %q", got)
	}
	fi, err := os.Stat(m.path("sandboxes/s1/status"))
	if err != nil || fi.Size() != int64(len(wantStatus)) {
		t.Errorf("stat status: size %d, %v; want %d", fi.Size(), err, len(wantStatus))
	}
	if _, err := os.Stat(m.path("sandboxes/nope")); !isErrno(err, syscall.ENOENT) {
		t.Errorf("stat sandboxes/nope: %v", err)
	}
	if _, err := os.Stat(m.path("sandboxes/" + strings.Repeat("x", 100))); !isErrno(err, syscall.ENOENT) {
		t.Errorf("stat of a bad name: %v", err)
	}
	if _, err := os.OpenFile(m.path("version"), os.O_WRONLY, 0); !isErrno(err, syscall.EACCES) {
		t.Errorf("open version for writing: %v", err)
	}
	if _, err := os.Open(m.path("ctl")); !isErrno(err, syscall.EACCES) {
		t.Errorf("open ctl for reading: %v", err)
	}
	if len(m.errorLines("errors")) != 0 {
		t.Errorf("errors: %q", m.read("errors"))
	}
}

// Each bad input fails with its errno, adds exactly one line to the right
// errors file, and leaves the mount serving.
func TestMountBadInputs(t *testing.T) {
	m := mountFake(t)
	m.mustSh(`echo create s1 > $M/ctl`)
	random := make([]byte, 64<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	long := append(bytes.Repeat([]byte("a"), 1<<20), '\n')
	for _, tc := range []struct {
		name  string
		ctl   string // relative to the mount
		data  []byte
		errno syscall.Errno
		msg   string // in the errors line
	}{
		{"unknown command", "ctl", []byte("explode s2\n"), syscall.EINVAL, `explode s2: invalid argument: unknown command "explode"`},
		{"dotdot", "ctl", []byte("create ..\n"), syscall.EINVAL, "bad id"},
		{"slash", "ctl", []byte("create 'a/b'\n"), syscall.EINVAL, `bad id "a/b"`},
		{"100 chars", "ctl", []byte("create " + strings.Repeat("x", 100) + "\n"), syscall.EINVAL, "id of 100 characters"},
		{"missing id", "ctl", []byte("create\n"), syscall.EINVAL, "missing ID"},
		{"bad int", "ctl", []byte("create s2 memory=1G\n"), syscall.EINVAL, "memory=1G: want a positive integer"},
		{"unknown option", "ctl", []byte("create s2 color=red\n"), syscall.EINVAL, `unknown option "color"`},
		{"unterminated quote", "ctl", []byte("create 's2\n"), syscall.EINVAL, "unterminated"},
		{"backend refuses value", "ctl", []byte("create s2 factory=bogus\n"), syscall.EINVAL, `factory "bogus"`},
		{"duplicate", "ctl", []byte("create s1\n"), syscall.EEXIST, "create s1: already exists: sandbox s1"},
		{"1 MiB line", "ctl", long, syscall.EINVAL, "line longer than 4096 bytes"},
		{"random bytes", "ctl", random, syscall.EINVAL, "ctl: invalid argument"},
		{"sandbox unknown command", "sandboxes/s1/ctl", []byte("create x\n"), syscall.EINVAL, "unknown command"},
		{"sandbox extra argument", "sandboxes/s1/ctl", []byte("start now\n"), syscall.EINVAL, "start takes no arguments"},
		{"sandbox wrong state", "sandboxes/s1/ctl", []byte("pause\n"), syscall.EBUSY, "pause: wrong state"},
		{"sandbox 1 MiB line", "sandboxes/s1/ctl", long, syscall.EINVAL, "line longer"},
		{"sandbox random bytes", "sandboxes/s1/ctl", random, syscall.EINVAL, "invalid argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := strings.TrimSuffix(tc.ctl, "ctl") + "errors"
			other := "sandboxes/s1/errors"
			if errs == other {
				other = "errors"
			}
			before, otherBefore := len(m.errorLines(errs)), len(m.errorLines(other))
			if err := m.write(tc.ctl, tc.data); !isErrno(err, tc.errno) {
				t.Errorf("write: %v; want %v", err, tc.errno)
			}
			lines := m.errorLines(errs)
			if len(lines) != before+1 {
				t.Fatalf("%s has %d new lines; want 1: %q", errs, len(lines)-before, lines[before:])
			}
			if len(m.errorLines(other)) != otherBefore {
				t.Errorf("%s changed too", other)
			}
			last := lines[len(lines)-1]
			if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d) [^:]+: `).MatchString(last) || !strings.Contains(last, tc.msg) {
				t.Errorf("errors line %q; want time, command and %q", last, tc.msg)
			}
			m.serving()
		})
	}
	if ids := m.mustSh(`ls $M/sandboxes`); ids != "s1\n" {
		t.Errorf("sandboxes after bad inputs: %q", ids)
	}
}

// The same failures through a shell, as users meet them.
func TestMountBadInputsShell(t *testing.T) {
	m := mountFake(t)
	m.mustSh(`echo create s1 > $M/ctl`)
	for _, tc := range []struct{ script, stderr string }{
		{`echo explode > $M/ctl`, "Invalid argument"},
		{`echo create .. > $M/ctl`, "Invalid argument"},
		{`echo "create 'a/b'" > $M/ctl`, "Invalid argument"},
		{`echo create s1 > $M/ctl`, "File exists"},
		{`head -c 1048576 /dev/zero | tr '\0' a > $M/ctl`, "Invalid argument"},
		{`head -c 65536 /dev/urandom > $M/ctl`, "Invalid argument"},
		{`echo pause > $M/sandboxes/s1/ctl`, "Device or resource busy"},
	} {
		before := len(m.errorLines("errors")) + len(m.errorLines("sandboxes/s1/errors"))
		// bash, as dash's echo reports every write error as "I/O error".
		_, stderr, err := m.bash(tc.script)
		if err == nil || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("%s: err %v, stderr %q; want failure with %q", tc.script, err, stderr, tc.stderr)
		}
		if n := len(m.errorLines("errors")) + len(m.errorLines("sandboxes/s1/errors")) - before; n != 1 {
			t.Errorf("%s: %d new errors lines; want 1", tc.script, n)
		}
		m.serving()
	}
	// The idiom of the spec.
	out, _, _ := m.sh(`echo pause > $M/sandboxes/s1/ctl || tail -1 $M/sandboxes/s1/errors`)
	if !strings.Contains(out, "pause: wrong state: pause: sandbox s1 is ready") {
		t.Errorf("echo pause || tail -1 errors: %q", out)
	}
}

func TestMountMultiLineStopsAtFirstFailure(t *testing.T) {
	m := mountFake(t)
	err := m.write("ctl", []byte("create m1\ncreate m1\ncreate m2\n"))
	if !isErrno(err, syscall.EEXIST) {
		t.Errorf("write: %v; want EEXIST", err)
	}
	if ids := m.mustSh(`ls $M/sandboxes`); ids != "m1\n" {
		t.Errorf("sandboxes = %q; want only m1", ids)
	}
	if n := len(m.errorLines("errors")); n != 1 {
		t.Errorf("%d errors lines; want 1", n)
	}
	// Lines split across writes are joined; all run in order.
	f, err := os.OpenFile(m.path("ctl"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"crea", "te m2\ncreate", " m3\n\n  \n"} {
		if _, err := f.Write([]byte(s)); err != nil {
			t.Errorf("write %q: %v", s, err)
		}
	}
	if err := f.Close(); err != nil {
		t.Error(err)
	}
	if ids := m.mustSh(`ls $M/sandboxes`); ids != "m1\nm2\nm3\n" {
		t.Errorf("sandboxes = %q", ids)
	}
}

func TestMountLineWithoutNewlineRunsAtClose(t *testing.T) {
	m := mountFake(t)
	// An external printf: its close(2) reports the flush error.
	m.mustSh(`/usr/bin/printf 'create p1' > $M/ctl && test -d $M/sandboxes/p1`)
	_, stderr, err := m.sh(`/usr/bin/printf 'create p1' > $M/ctl`)
	if err == nil || !strings.Contains(stderr, "File exists") {
		t.Errorf("second printf: %v %q; want File exists", err, stderr)
	}
	// The same through open/write/close: the error comes from close.
	f, err := os.OpenFile(m.path("sandboxes/p1/ctl"), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("pause")); err != nil {
		t.Errorf("write of a partial line: %v", err)
	}
	if err := f.Close(); !isErrno(err, syscall.EBUSY) {
		t.Errorf("close: %v; want EBUSY", err)
	}
	if n := len(m.errorLines("sandboxes/p1/errors")); n != 1 {
		t.Errorf("%d errors lines; want 1", n)
	}
	m.mustSh(`printf start > $M/sandboxes/p1/ctl`)
	if st := m.read("sandboxes/p1/status"); !strings.Contains(st, "state running\n") {
		t.Errorf("status after printf start:\n%s", st)
	}
}

// A line that overflows over several small writes is reported once; the
// rest of it fails without more reports, and the next line works.
func TestMountLongLineOverManyWrites(t *testing.T) {
	m := mountFake(t)
	f, err := os.OpenFile(m.path("ctl"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := bytes.Repeat([]byte("b"), 1000)
	var failed int
	for range 10 {
		if _, err := f.Write(chunk); err != nil {
			if !isErrno(err, syscall.EINVAL) {
				t.Errorf("write: %v", err)
			}
			failed++
		}
	}
	if failed != 6 {
		t.Errorf("%d writes failed; want 6 (the 5th chunk overflows)", failed)
	}
	if _, err := f.Write([]byte("bbb\ncreate l1\n")); !isErrno(err, syscall.EINVAL) {
		t.Errorf("write ending the long line: %v", err)
	}
	if _, err := f.Write([]byte("create l1\n")); err != nil {
		t.Errorf("next line: %v", err)
	}
	if n := len(m.errorLines("errors")); n != 1 {
		t.Errorf("%d errors lines; want 1: %q", n, m.read("errors"))
	}
}

func TestMountClone(t *testing.T) {
	m := mountFake(t)
	out := m.mustSh(`cat $M/clone; cat $M/clone; ls $M/sandboxes`)
	if out != "sb1\nsb2\nsb1\nsb2\n" {
		t.Errorf("clone twice + ls = %q", out)
	}
	if fi, err := os.Stat(m.path("clone")); err != nil || fi.Size() != 0 {
		t.Errorf("stat clone: %v", err)
	}
	if ids, _ := m.b.List(t.Context()); len(ids) != 2 {
		t.Errorf("stat created sandboxes: %v", ids)
	}
}

func TestMountSandboxLifeCycleAndDelete(t *testing.T) {
	m := mountFake(t)
	m.mustSh(`echo create s1 > $M/ctl`)
	for _, step := range []struct{ cmd, state string }{
		{"start", "running"}, {"pause", "paused"}, {"resume", "running"}, {"stop", "stopped"},
	} {
		out := m.mustSh(`echo ` + step.cmd + ` > $M/sandboxes/s1/ctl && grep ^state $M/sandboxes/s1/status`)
		if out != "state "+step.state+"\n" {
			t.Errorf("after %s: %q", step.cmd, out)
		}
	}
	m.mustSh(`echo release > $M/sandboxes/s1/ctl`)
	// A shell sitting in the directory while it is deleted: its files
	// are gone and it lists empty (glibc reads ENOENT from getdents as
	// the end of a removed directory).
	out, stderr, err := m.sh(`cd $M/sandboxes/s1 && echo delete > ctl && ls $M/sandboxes && ! cat status && ls .`)
	if err != nil || out != "" || strings.Count(stderr, "No such file") != 1 {
		t.Errorf("after delete: out %q stderr %q err %v", out, stderr, err)
	}
	for _, p := range []string{"sandboxes/s1", "sandboxes/s1/status"} {
		if _, err := os.Stat(m.path(p)); !isErrno(err, syscall.ENOENT) {
			t.Errorf("stat %s after delete: %v", p, err)
		}
	}
	// The ID is free again, with a fresh errors file.
	m.mustSh(`echo create s1 > $M/ctl && echo start > $M/sandboxes/s1/ctl`)
	if n := len(m.errorLines("sandboxes/s1/errors")); n != 0 {
		t.Errorf("recreated sandbox has %d errors lines", n)
	}
}

// A sandbox the backend knows but the tree never saw (made before a
// restart) is found by lookup and listed.
func TestMountFindsExistingSandbox(t *testing.T) {
	m := mountFake(t)
	m.b.Create(t.Context(), sandboxConfig("old"))
	if out := m.mustSh(`cat $M/sandboxes/old/status | head -1; ls $M/sandboxes`); out != "id old\nold\n" {
		t.Errorf("got %q", out)
	}
}

func TestMountLogsFailures(t *testing.T) {
	m := mountFake(t)
	m.mustSh(`echo create s1 > $M/ctl`)
	m.sh(`echo pause > $M/sandboxes/s1/ctl; echo create s1 > $M/ctl`)
	var got []string
	for _, e := range m.hook.AllEntries() {
		if e.Message == "command failed" {
			got = append(got, e.Data["sandbox"].(string)+" "+e.Data["command"].(string)+" "+e.Data["errno"].(string))
		}
	}
	want := []string{"s1 pause device or resource busy", "s1 create s1 file exists"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("logged %q; want %q", got, want)
	}
}

// Writers on different sandboxes do not wait for each other.
func TestMountSlowCreateDoesNotBlockOthers(t *testing.T) {
	m := mountFake(t)
	m.mustSh(`echo create s1 > $M/ctl`)
	release := make(chan struct{})
	m.b.blockCreate("slow", func(ctx context.Context) error { <-release; return nil })
	done := make(chan error, 1)
	go func() { _, _, err := m.sh(`echo create slow > $M/ctl`); done <- err }()
	waitFor(t, func() bool { return m.b.waiting("slow") })
	start := time.Now()
	m.mustSh(`echo start > $M/sandboxes/s1/ctl && cat $M/clone && ls $M/sandboxes`)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("other commands took %v while a create was slow", d)
	}
	close(release)
	if err := <-done; err != nil {
		t.Errorf("slow create: %v", err)
	}
}
