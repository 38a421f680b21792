package qmp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"
)

func dialFake(t *testing.T, f *fakeQMP) *Monitor {
	t.Helper()
	m, err := Dial(testCtx(t), f.path)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestFakeExecuteAndStatus(t *testing.T) {
	f := newFakeQMP(t, func(f *fakeQMP, cmd fakeCmd) {
		switch cmd.Execute {
		case "echo":
			f.send(`{"return": {"got": ` + string(cmd.Arguments) + `}}`)
		default:
			statusHandler("running")(f, cmd)
		}
	}).serve()
	m := dialFake(t, f)
	if m.QEMUVersion() != "7.2.22" {
		t.Errorf("version %q", m.QEMUVersion())
	}
	ctx := testCtx(t)
	st, err := m.Status(ctx)
	if err != nil || st != "running" {
		t.Fatalf("Status = %q, %v", st, err)
	}
	var out struct {
		Got struct {
			ID string `json:"id"`
			N  int    `json:"n"`
		} `json:"got"`
	}
	if err := m.Execute(ctx, "echo", map[string]any{"id": "rp1", "n": 3}, &out); err != nil {
		t.Fatal(err)
	}
	if out.Got.ID != "rp1" || out.Got.N != 3 {
		t.Errorf("echo: %+v", out)
	}
	if err := m.Execute(ctx, "stop", nil, nil); err != nil {
		t.Fatal(err)
	}
	cmds := f.received()
	if len(cmds) != 4 || cmds[0].Execute != "qmp_capabilities" || cmds[3].Execute != "stop" || cmds[3].Arguments != nil {
		t.Errorf("server saw %+v", cmds)
	}
}

func TestFakeErrorReply(t *testing.T) {
	f := newFakeQMP(t, func(f *fakeQMP, cmd fakeCmd) {
		switch cmd.Execute {
		case "device_del":
			f.send(`{"error": {"class": "DeviceNotFound", "desc": "Device 'nic9' not found"}}`)
		case "device_add":
			f.send(`{"error": {"class": "GenericError", "desc": "Bus 'rp9' not found"}}`)
		default:
			f.send(`{"error": {"class": "CommandNotFound", "desc": "The command ` + cmd.Execute + ` has not been found"}}`)
		}
	}).serve()
	m := dialFake(t, f)
	ctx := testCtx(t)
	for cmd, class := range map[string]string{
		"device_del": ClassDeviceNotFound,
		"device_add": ClassGenericError,
		"nope":       ClassCommandNotFound,
	} {
		err := m.Execute(ctx, cmd, nil, nil)
		var qe *Error
		if !errors.As(err, &qe) {
			t.Fatalf("%s: %v is not a *qmp.Error", cmd, err)
		}
		if qe.Class != class || qe.Command != cmd || qe.Desc == "" {
			t.Errorf("%s: %+v, want class %s", cmd, qe, class)
		}
	}
	// The connection survives error replies.
	if err := m.Execute(ctx, "device_add", nil, nil); err == nil {
		t.Fatal("want an error")
	}
}

func TestFakeEventFanOut(t *testing.T) {
	f := newFakeQMP(t, func(f *fakeQMP, cmd fakeCmd) {
		if cmd.Execute == "stop" {
			// An event before the reply and one after, as QEMU does.
			f.send(fakeEvent("STOP", `{}`))
			f.send(`{"return": {}}`)
			f.send(fakeEvent("BLOCK_IO_ERROR", `{"device": "vdb", "operation": "write"}`))
			return
		}
		f.send(`{"return": {}}`)
	}).serve()
	m := dialFake(t, f)
	a, cancelA := m.Subscribe()
	b, cancelB := m.Subscribe()
	defer cancelB()
	if err := m.Stop(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	for name, ch := range map[string]<-chan Event{"a": a, "b": b} {
		var got []Event
		for len(got) < 2 {
			select {
			case e := <-ch:
				got = append(got, e)
			case <-time.After(5 * time.Second):
				t.Fatalf("subscriber %s got only %+v", name, got)
			}
		}
		if got[0].Name != "STOP" || got[1].Name != "BLOCK_IO_ERROR" || got[1].Data["device"] != "vdb" {
			t.Errorf("subscriber %s: %+v", name, got)
		}
		if want := time.Unix(1700000000, 250000); !got[0].Time.Equal(want) {
			t.Errorf("time %v, want %v", got[0].Time, want)
		}
	}
	cancelA()
	cancelA() // idempotent
	if _, ok := <-a; ok {
		t.Error("cancelled subscription still open")
	}
	f.send(fakeEvent("RESUME", `{}`))
	select {
	case e := <-b:
		if e.Name != "RESUME" {
			t.Errorf("got %s", e.Name)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("remaining subscriber got nothing")
	}
}

func TestFakeSlowSubscriberDoesNotBlockExecute(t *testing.T) {
	const flood = 2000
	f := newFakeQMP(t, func(f *fakeQMP, cmd fakeCmd) {
		if cmd.Execute == "flood" {
			for i := 0; i < flood; i++ {
				f.send(fakeEvent("VSERPORT_CHANGE", fmt.Sprintf(`{"id": "agent", "open": true, "n": %d}`, i)))
			}
		}
		statusHandler("paused")(f, cmd)
	}).serve()
	m := dialFake(t, f)
	_, cancelSlow := m.Subscribe() // never read
	defer cancelSlow()
	fast, cancelFast := m.Subscribe()
	defer cancelFast()
	counted := make(chan int)
	go func() {
		n := 0
		for range fast {
			n++
		}
		counted <- n
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Execute(ctx, "flood", nil, nil); err != nil {
		t.Fatalf("Execute behind a slow subscriber: %v", err)
	}
	if st, err := m.Status(ctx); err != nil || st != "paused" {
		t.Fatalf("Status = %q, %v", st, err)
	}
	if d := m.Dropped(); d < flood-subscriberBuffer {
		t.Errorf("dropped %d, want at least %d", d, flood-subscriberBuffer)
	}
	m.Close()
	n := <-counted
	if n == 0 {
		t.Error("the fast subscriber got nothing")
	}
	t.Logf("fast subscriber got %d of %d, %d dropped in all", n, flood, m.Dropped())
}

func TestFakeExecuteContextCancel(t *testing.T) {
	f := newFakeQMP(t, func(f *fakeQMP, cmd fakeCmd) {
		if cmd.Execute != "hang" { // "hang" is answered later, by the test
			statusHandler("running")(f, cmd)
		}
	}).serve()
	m := dialFake(t, f)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	begin := time.Now()
	err := m.Execute(ctx, "hang", nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	if d := time.Since(begin); d > time.Second {
		t.Errorf("cancellation took %v", d)
	}
	// The late reply to "hang" must not be taken for the next command's.
	f.send(`{"return": {"status": "stale", "running": false}}`)
	st, err := m.Status(testCtx(t))
	if err != nil || st != "running" {
		t.Fatalf("after a cancelled command: Status = %q, %v", st, err)
	}
	if err := m.Execute(ctx, "query-status", nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ended ctx: %v", err)
	}
}

func TestFakeDoneOnSocketClose(t *testing.T) {
	f := newFakeQMP(t, statusHandler("running")).serve()
	m := dialFake(t, f)
	ev, cancel := m.Subscribe()
	defer cancel()
	if _, err := m.Status(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	f.close()
	waitClosed(t, m.Done(), 5*time.Second, "Monitor.Done")
	if _, ok := <-ev; ok {
		t.Error("subscriber channel still open")
	}
	if err := m.Execute(testCtx(t), "query-status", nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Execute on a closed monitor: %v", err)
	}
	if err := m.Quit(testCtx(t)); !errors.Is(err, ErrClosed) {
		t.Errorf("Quit on a closed monitor: %v", err)
	}
	late, _ := m.Subscribe()
	if _, ok := <-late; ok {
		t.Error("Subscribe after close gave an open channel")
	}
	if err := m.Close(); err != nil {
		t.Logf("Close after the peer went: %v", err)
	}
	m.Close() // twice is fine
}

func TestFakeQuitWithoutReply(t *testing.T) {
	f := newFakeQMP(t, func(f *fakeQMP, cmd fakeCmd) {
		if cmd.Execute == "quit" {
			f.close() // QEMU may exit before its answer is out
		}
	}).serve()
	m := dialFake(t, f)
	if err := m.Quit(testCtx(t)); err != nil {
		t.Fatalf("Quit: %v", err)
	}
	waitClosed(t, m.Done(), 5*time.Second, "Monitor.Done")
}

func TestFakeCloseByClient(t *testing.T) {
	f := newFakeQMP(t, statusHandler("running")).serve()
	m := dialFake(t, f)
	ev, _ := m.Subscribe()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, m.Done(), time.Second, "Monitor.Done")
	if _, ok := <-ev; ok {
		t.Error("subscriber channel still open")
	}
}

func TestFakeDialNoGreeting(t *testing.T) {
	f := newFakeQMP(t, nil)
	f.greet = false
	f.serve()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err := Dial(ctx, f.path)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("Dial took %v", d)
	}
}

func TestFakeDialNoSocket(t *testing.T) {
	_, err := Dial(testCtx(t), shortDir(t)+"/qmp.sock")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
}

func TestFakeExecuteWithFile(t *testing.T) {
	f := newFakeQMP(t, statusHandler("running")).serve()
	m := dialFake(t, f)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if err := m.ExecuteWithFile(testCtx(t), "getfd", map[string]string{"fdname": "tap0"}, w, nil); err != nil {
		t.Fatal(err)
	}
	cmds := f.received()
	last := cmds[len(cmds)-1]
	var args map[string]string
	json.Unmarshal(last.Arguments, &args)
	if last.Execute != "getfd" || args["fdname"] != "tap0" {
		t.Errorf("server saw %+v", last)
	}
	if _, err := w.Write([]byte("x")); err != nil {
		t.Errorf("caller's file unusable after ExecuteWithFile: %v", err)
	}
}
