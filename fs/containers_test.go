package fs

import (
	"errors"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/katafs/katafs/sandbox"
)

const (
	ctrDir  = "sandboxes/s1/containers/c1"
	procDir = ctrDir + "/procs/p1"
)

// mountWithContainer mounts the fake with sandbox s1 and its container
// c1 running, and process p1 exec'd in it (no tty).
func mountWithContainer(t *testing.T) *mount {
	t.Helper()
	m := mountFake(t)
	m.mustSh(`echo create s1 > $M/ctl && echo create c1 > $M/sandboxes/s1/containers/ctl &&
		echo start > $M/` + ctrDir + `/ctl &&
		echo "exec p1 -- sh -c 'echo hi'" > $M/` + ctrDir + `/procs/ctl`)
	return m
}

func (m *mount) proc(ctr, proc string) *fakeProcess {
	m.t.Helper()
	p, err := m.b.fakeProc("s1", ctr, proc)
	if err != nil {
		m.t.Fatal(err)
	}
	return p
}

func (m *mount) ctr(id string) *fakeContainer {
	m.t.Helper()
	s, err := m.b.get("s1")
	if err != nil {
		m.t.Fatal(err)
	}
	c, err := s.ctr(id)
	if err != nil {
		m.t.Fatal(err)
	}
	return c
}

func TestMountContainerLifeCycle(t *testing.T) {
	m := mountFake(t)
	m.mustSh(`echo create s1 > $M/ctl`)
	out := m.mustSh(`cd $M/sandboxes/s1/containers && echo "create c1 rootfs=/img/a.ext4 --tty -- sh -c 'sleep 9'" > ctl &&
		ls && ls c1 && ls c1/procs && cat c1/status && cat c1/config`)
	want := "c1\nctl\n" + "config\nctl\nerrors\nprocs\nstatus\nstatus.json\n" + "ctl\ninit\n" +
		"id c1\nstate ready\npid 0\nexit -\n" + `{"ociVersion":"1.1.0","process":{"args":["sh"]}}` + "\n"
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	c := m.ctr("c1")
	if cfg, _, _ := c.got(); !reflect.DeepEqual(cfg, sandbox.ContainerConfig{ID: "c1", Rootfs: "/img/a.ext4", TTY: true, Args: []string{"sh", "-c", "sleep 9"}}) {
		t.Errorf("backend got %+v", cfg)
	}
	if got := m.mustSh(`grep ^containers $M/sandboxes/s1/status`); got != "containers 1\n" {
		t.Errorf("sandbox status: %q", got)
	}
	ctl := `$M/` + ctrDir + `/ctl`
	for _, step := range []struct{ cmd, state string }{
		{"start", "running"}, {"pause", "paused"}, {"resume", "running"}, {"kill", "running"},
		{"kill KILL", "running"}, {"kill 2", "running"}, {"stop", "stopped"},
	} {
		out := m.mustSh(`echo ` + step.cmd + ` > ` + ctl + ` && grep ^state $M/` + ctrDir + `/status`)
		if out != "state "+step.state+"\n" {
			t.Errorf("after %s: %q", step.cmd, out)
		}
	}
	if _, _, kills := c.got(); !reflect.DeepEqual(kills, []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL, syscall.SIGINT}) {
		t.Errorf("kills %v; want TERM KILL INT", kills)
	}
	if got := m.read(ctrDir + "/status.json"); got != "{\n  \"id\": \"c1\",\n  \"state\": \"stopped\",\n  \"pid\": 100,\n  \"exit\": \"signal TERM\"\n}\n" {
		t.Errorf("status.json = %q", got)
	}
	// A failure, then delete: the container's errors file goes with it.
	m.sh(`echo pause > ` + ctl)
	if n := len(m.errorLines(ctrDir + "/errors")); n != 1 {
		t.Errorf("%d errors lines", n)
	}
	if out := m.mustSh(`echo delete > ` + ctl + ` && ls $M/sandboxes/s1/containers`); out != "ctl\n" {
		t.Errorf("after delete: %q", out)
	}
	if _, err := os.Stat(m.path(ctrDir)); !isErrno(err, syscall.ENOENT) {
		t.Errorf("stat of deleted container: %v", err)
	}
	m.mustSh(`echo create c1 > $M/sandboxes/s1/containers/ctl`)
	if n := len(m.errorLines(ctrDir + "/errors")); n != 0 {
		t.Errorf("recreated container has %d errors lines", n)
	}
	if n := len(m.errorLines("sandboxes/s1/errors")); n != 0 {
		t.Errorf("sandbox errors: %q", m.read("sandboxes/s1/errors"))
	}
}

func TestMountExecAndStatus(t *testing.T) {
	m := mountWithContainer(t)
	m.mustSh(`cd $M/` + ctrDir + `/procs && echo "exec p2 --tty --env A=1 --env 'B=two words' --cwd /tmp --user 1000:1000 -- sh -c 'echo \$A'" > ctl`)
	m.mustSh(`echo 'exec pj {"args": ["sh", "-c", "echo '"'"'a  b'"'"'"], "cwd": "/"}' > $M/` + ctrDir + `/procs/ctl`)
	c := m.ctr("c1")
	want := []sandbox.ProcessConfig{
		{ID: "p1", Args: []string{"sh", "-c", "echo hi"}},
		{ID: "p2", TTY: true, Env: []string{"A=1", "B=two words"}, Cwd: "/tmp", UID: u32(1000), GID: u32(1000), Args: []string{"sh", "-c", "echo $A"}},
		{ID: "pj", JSON: []byte(`{"args": ["sh", "-c", "echo 'a  b'"], "cwd": "/"}`)},
	}
	if _, execs, _ := c.got(); !reflect.DeepEqual(execs, want) {
		t.Errorf("execs\n%+v\nwant\n%+v", execs, want)
	}
	out := m.mustSh(`cd $M/` + ctrDir + `/procs && ls && ls p1 && ls p2 && cat p2/status`)
	wantOut := "ctl\ninit\np1\np2\npj\n" +
		"signal\nstatus\nstatus.json\nstderr\nstdin\nstdout\nwait\nwinsize\n" +
		"signal\nstatus\nstatus.json\nstdin\nstdout\nwait\nwinsize\n" +
		"id p2\nstate running\npid 202\nexit -\ntty true\nstdout_bytes 0\nstderr_bytes 0\nstdout_dropped 0\nstderr_dropped 0\n"
	if out != wantOut {
		t.Errorf("got\n%s\nwant\n%s", out, wantOut)
	}
	if _, err := os.Stat(m.path(ctrDir + "/procs/p2/stderr")); !isErrno(err, syscall.ENOENT) {
		t.Errorf("stat stderr of a tty process: %v", err)
	}
	if _, err := os.Stat(m.path(ctrDir + "/procs/nope")); !isErrno(err, syscall.ENOENT) {
		t.Errorf("stat of an unknown process: %v", err)
	}
	if _, err := os.Stat(m.path("sandboxes/s1/containers/nope/ctl")); !isErrno(err, syscall.ENOENT) {
		t.Errorf("stat of an unknown container: %v", err)
	}
	if got := m.mustSh(`grep exit $M/` + procDir + `/status.json`); got != "  \"exit\": \"\",\n" {
		t.Errorf("status.json exit: %q", got)
	}
}

// stdout and stderr are streams: cat follows them until the process
// ends; a late reader gets everything at once.
func TestMountProcessStreams(t *testing.T) {
	m := mountWithContainer(t)
	p := m.proc("c1", "p1")
	cmd, out := startCat(t, "cat", m.path(procDir+"/stdout"))
	time.Sleep(100 * time.Millisecond)
	p.stdout.write("one\n")
	if got := readLine(t, out); got != "one\n" {
		t.Errorf("cat got %q", got)
	}
	p.stderr.write("oops\n")
	if fi, err := os.Stat(m.path(procDir + "/stderr")); err != nil || fi.Size() != 5 {
		t.Errorf("stat stderr: %v", err)
	}
	p.stdout.write("two\n")
	if got := readLine(t, out); got != "two\n" {
		t.Errorf("cat got %q", got)
	}
	p.end(sandbox.ExitStatus{Code: 0})
	if err := waitExit(t, cmd, 10*time.Second); err != nil {
		t.Errorf("cat stdout: %v", err)
	}
	if got := m.mustSh(`cd $M/` + procDir + ` && cat stdout stderr && tail -c 4 stdout && head -c 2 stdout`); got != "one\ntwo\noops\ntwo\non" {
		t.Errorf("late read: %q", got)
	}
}

func TestMountWait(t *testing.T) {
	m := mountWithContainer(t)
	p := m.proc("c1", "p1")
	cmd, out := startCat(t, "cat", m.path(procDir+"/wait"))
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
		t.Fatal("cat wait returned while the process runs")
	case <-time.After(300 * time.Millisecond):
	}
	p.end(sandbox.ExitStatus{Code: 3})
	if got := readLine(t, out); got != "exit 3\n" {
		t.Errorf("wait = %q", got)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("cat wait did not end")
	}
	start := time.Now()
	if got := m.mustSh(`cat $M/` + procDir + `/wait; tail -1 $M/` + procDir + `/wait`); got != "exit 3\nexit 3\n" {
		t.Errorf("wait after the end = %q", got)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("wait after the end took %v", d)
	}
	if got := m.mustSh(`grep -E '^(state|exit) ' $M/` + procDir + `/status`); got != "state exited\nexit exit 3\n" {
		t.Errorf("status: %q", got)
	}
	m.mustSh(`echo "exec p2 -- sleep 1" > $M/` + ctrDir + `/procs/ctl`)
	m.proc("c1", "p2").end(sandbox.ExitStatus{Signal: "KILL"})
	if got := m.read(ctrDir + "/procs/p2/wait"); got != "signal KILL\n" {
		t.Errorf("wait of a killed process = %q", got)
	}
}

// Ctrl-C on `cat wait` ends it promptly; the process goes on.
func TestMountWaitInterrupted(t *testing.T) {
	m := mountWithContainer(t)
	cmd, _ := startCat(t, "cat", m.path(procDir+"/wait"))
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	cmd.Process.Signal(os.Interrupt)
	err := waitExit(t, cmd, 5*time.Second)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGINT {
		t.Errorf("cat: %v; want killed by SIGINT", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cat wait took %v to stop", d)
	}
	// A harmless signal (bash's SIGCHLD) does not end it.
	p := m.proc("c1", "p1")
	go func() {
		time.Sleep(500 * time.Millisecond)
		p.end(sandbox.ExitStatus{Code: 7})
	}()
	out, stderr, err := m.bash(`sleep 0.2 & cat $M/` + procDir + `/wait; wait`)
	if err != nil || out != "exit 7\n" {
		t.Errorf("cat wait with a background job: %q %q %v", out, stderr, err)
	}
	m.serving()
}

func TestMountStdin(t *testing.T) {
	m := mountWithContainer(t)
	p := m.proc("c1", "p1")
	// Two writers: EOF only after the last one closes.
	w1, err := os.OpenFile(m.path(procDir+"/stdin"), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := os.OpenFile(m.path(procDir+"/stdin"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		f *os.File
		s string
	}{{w1, "a"}, {w2, "b"}, {w1, "c"}, {w2, "d"}} {
		if _, err := w.f.WriteString(w.s); err != nil {
			t.Fatal(err)
		}
	}
	if err := w1.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, _, n := p.stdinState(); return n == 1 })
	if got, eof, _ := p.stdinState(); got != "abcd" || eof {
		t.Errorf("stdin %q eof %v after the first close", got, eof)
	}
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, eof, _ := p.stdinState(); return eof })

	// The shell's ways: `cat file > stdin` and a kept-open fd, in order.
	m.mustSh(`echo "exec p2 -- cat" > $M/` + ctrDir + `/procs/ctl`)
	p2 := m.proc("c1", "p2")
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB: several FUSE writes
	bigFile := t.TempDir() + "/big"
	if err := os.WriteFile(bigFile, []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	m.mustSh(`cd $M/` + ctrDir + `/procs/p2 && exec 3>stdin && echo first >&3 && cat ` + bigFile + ` > stdin && echo last >&3 && exec 3>&-`)
	waitFor(t, func() bool { _, eof, _ := p2.stdinState(); return eof })
	if got, _, _ := p2.stdinState(); got != "first\n"+big+"last\n" {
		t.Errorf("stdin of %d bytes starts %q ends %q", len(got), got[:min(len(got), 10)], got[max(0, len(got)-10):])
	}
	// Reading stdin is refused.
	if _, err := os.Open(m.path(procDir + "/stdin")); !isErrno(err, syscall.EACCES) {
		t.Errorf("open stdin for reading: %v", err)
	}
	// Writing to a process that ended: EPIPE.
	p2.end(sandbox.ExitStatus{})
	if err := m.write(ctrDir+"/procs/p2/stdin", []byte("late\n")); !isErrno(err, syscall.EPIPE) {
		t.Errorf("write to an ended process: %v; want EPIPE", err)
	}
}

func TestMountSignalAndWinsize(t *testing.T) {
	m := mountWithContainer(t)
	p := m.proc("c1", "p1")
	m.mustSh(`cd $M/` + procDir + ` && echo TERM > signal && echo SIGKILL > signal && echo 9 > signal && echo hup > signal`)
	if want := []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL, syscall.SIGKILL, syscall.SIGHUP}; !reflect.DeepEqual(p.signalsGot(), want) {
		t.Errorf("signals %v; want %v", p.signalsGot(), want)
	}
	m.mustSh(`echo "exec t1 --tty -- sh" > $M/` + ctrDir + `/procs/ctl`)
	out := m.mustSh(`cd $M/` + ctrDir + `/procs/t1 && cat winsize && echo 40 132 > winsize && cat winsize && stat -c %s winsize`)
	if out != "24 80\n40 132\n7\n" {
		t.Errorf("winsize: %q", out)
	}
}

// Each bad input fails with its errno and adds one line to the errors
// file of the right directory.
func TestMountContainerBadInputs(t *testing.T) {
	m := mountWithContainer(t)
	m.mustSh(`echo "exec t1 --tty -- sh" > $M/` + ctrDir + `/procs/ctl`)
	const (
		sbErrs  = "sandboxes/s1/errors"
		ctrErrs = ctrDir + "/errors"
	)
	for _, tc := range []struct {
		name, file, data string
		errno            syscall.Errno
		errs, msg        string
	}{
		{"create bad id", "sandboxes/s1/containers/ctl", "create ..\n", syscall.EINVAL, sbErrs, "create ..: invalid argument: bad id"},
		{"create reserved", "sandboxes/s1/containers/ctl", "create ctl\n", syscall.EINVAL, sbErrs, "reserved"},
		{"create duplicate", "sandboxes/s1/containers/ctl", "create c1\n", syscall.EEXIST, sbErrs, "create c1: already exists"},
		{"create bad option", "sandboxes/s1/containers/ctl", "create c2 image=x\n", syscall.EINVAL, sbErrs, "unknown option"},
		{"container unknown verb", ctrDir + "/ctl", "exec\n", syscall.EINVAL, ctrErrs, "unknown command"},
		{"container wrong state", ctrDir + "/ctl", "start\n", syscall.EBUSY, ctrErrs, "start: wrong state"},
		{"kill bad signal", ctrDir + "/ctl", "kill BOGUS\n", syscall.EINVAL, ctrErrs, `kill BOGUS: invalid argument: unknown signal "BOGUS"`},
		{"exec no argv", ctrDir + "/procs/ctl", "exec p9\n", syscall.EINVAL, ctrErrs, "exec p9: invalid argument: exec p9: no command"},
		{"exec no argv after --", ctrDir + "/procs/ctl", "exec p9 --tty --\n", syscall.EINVAL, ctrErrs, "no command"},
		{"exec duplicate", ctrDir + "/procs/ctl", "exec p1 -- true\n", syscall.EEXIST, ctrErrs, "exec p1 -- true: already exists"},
		{"exec bad JSON", ctrDir + "/procs/ctl", "exec p9 {\"args\":\n", syscall.EINVAL, ctrErrs, "not valid JSON"},
		{"exec bad user", ctrDir + "/procs/ctl", "exec p9 --user me -- id\n", syscall.EINVAL, ctrErrs, "UID[:GID]"},
		{"signal bad", procDir + "/signal", "BOGUS\n", syscall.EINVAL, ctrErrs, `signal BOGUS: invalid argument: unknown signal`},
		{"signal number out of range", procDir + "/signal", "99\n", syscall.EINVAL, ctrErrs, "out of range"},
		{"signal two words", procDir + "/signal", "TERM KILL\n", syscall.EINVAL, ctrErrs, "want one signal"},
		{"winsize abc", ctrDir + "/procs/t1/winsize", "abc\n", syscall.EINVAL, ctrErrs, `winsize abc: invalid argument: want ROWS COLS`},
		{"winsize without tty", procDir + "/winsize", "24 80\n", syscall.EINVAL, ctrErrs, "has no tty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			other := sbErrs
			if tc.errs == sbErrs {
				other = ctrErrs
			}
			before, otherBefore := len(m.errorLines(tc.errs)), len(m.errorLines(other))
			if err := m.write(tc.file, []byte(tc.data)); !isErrno(err, tc.errno) {
				t.Errorf("write: %v; want %v", err, tc.errno)
			}
			lines := m.errorLines(tc.errs)
			if len(lines) != before+1 {
				t.Fatalf("%s has %d new lines; want 1: %q", tc.errs, len(lines)-before, lines[before:])
			}
			if len(m.errorLines(other)) != otherBefore || len(m.errorLines("errors")) != 0 {
				t.Errorf("another errors file changed too")
			}
			last := lines[len(lines)-1]
			if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d) `).MatchString(last) || !strings.Contains(last, tc.msg) {
				t.Errorf("errors line %q; want time and %q", last, tc.msg)
			}
			m.serving()
		})
	}
	if got := m.mustSh(`ls $M/` + ctrDir + `/procs`); got != "ctl\ninit\np1\nt1\n" {
		t.Errorf("procs after bad inputs: %q", got)
	}
	// The idiom of the spec, through a shell.
	out, _, _ := m.bash(`echo "exec p9" > $M/` + ctrDir + `/procs/ctl || tail -1 $M/` + ctrDir + `/errors`)
	if !strings.Contains(out, "no command") {
		t.Errorf("exec || tail -1 errors: %q", out)
	}
	// A container gone while its ctl is open: ENOENT.
	f, err := os.OpenFile(m.path(ctrDir+"/ctl"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, _ := m.b.get("s1")
	s.cmu.Lock()
	delete(s.ctrs, "c1")
	s.cmu.Unlock()
	if _, err := f.WriteString("stop\n"); !isErrno(err, syscall.ENOENT) {
		t.Errorf("stop of a gone container: %v; want ENOENT", err)
	}
	if _, err := os.Stat(m.path(ctrDir)); !isErrno(err, syscall.ENOENT) {
		t.Errorf("stat of a gone container: %v", err)
	}
}
