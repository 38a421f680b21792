#!/usr/bin/env bats
# Containers and processes the way users drive them: echo into ctl and
# stdin, cat and tail -f on stdout, wait, signal, winsize.

load helpers

setup_file() {
	setup_daemon
	echo "create sb" >"$MNT/ctl"
	echo start >"$MNT/sandboxes/sb/ctl"
	export C=$MNT/sandboxes/sb/containers
	echo "create c1 -- sleep 100000" >"$C/ctl"
	echo start >"$C/c1/ctl"
}
teardown_file() { teardown_daemon; }

# run_proc PID ARGS...: exec a process in c1 and wait for it.
run_proc() {
	local pid=$1
	shift
	echo "exec $pid -- $*" >"$C/c1/procs/ctl"
	cat "$C/c1/procs/$pid/wait"
}

@test "stdout, stderr apart, and the exit code" {
	run run_proc p1 sh -c "'echo hello; echo oops >&2; exit 3'"
	[ "$output" = "exit 3" ]
	[ "$(cat "$C/c1/procs/p1/stdout")" = hello ]
	[ "$(cat "$C/c1/procs/p1/stderr")" = oops ]
	[ "$(field "$C/c1/procs/p1/status" state)" = exited ]
	[ "$(field "$C/c1/procs/p1/status" exit)" = "exit 3" ]
	# output and exit stay readable after the end
	[ "$(cat "$C/c1/procs/p1/stdout")" = hello ]
}

@test "a container's own init: create with args, start, output, exit" {
	echo "create c2 -- sh -c 'echo from-init; exit 7'" >"$C/ctl"
	[ "$(field "$C/c2/status" state)" = ready ]
	echo start >"$C/c2/ctl"
	[ "$(cat "$C/c2/procs/init/wait")" = "exit 7" ]
	[ "$(cat "$C/c2/procs/init/stdout")" = from-init ]
	[ "$(field "$C/c2/status" state)" = stopped ]
	[ "$(field "$C/c2/status" exit)" = "exit 7" ]
	grep -q '"sh"' "$C/c2/config"
	echo delete >"$C/c2/ctl"
	[ ! -e "$C/c2" ]
}

@test "20 MB of random bytes through stdout arrive byte for byte" {
	run_proc mk sh -c "'head -c 20000000 /dev/urandom > /tmp/r && sha256sum /tmp/r > /tmp/r.sum'"
	run_proc cat20 cat /tmp/r
	want=$(run_proc sum cat /tmp/r.sum >/dev/null; cut -d' ' -f1 "$C/c1/procs/sum/stdout")
	got=$(sha256sum <"$C/c1/procs/cat20/stdout" | cut -d' ' -f1)
	[ "$(stat -c %s "$C/c1/procs/cat20/stdout")" -eq 20000000 ]
	[ -n "$want" ] && [ "$got" = "$want" ]
}

@test "5 MB into stdin arrive byte for byte, then EOF" {
	head -c 5000000 /dev/urandom >"$STATE/in"
	echo "exec in5 -- sha256sum" >"$C/c1/procs/ctl"
	cat "$STATE/in" >"$C/c1/procs/in5/stdin"
	[ "$(cat "$C/c1/procs/in5/wait")" = "exit 0" ]
	want=$(sha256sum <"$STATE/in" | cut -d' ' -f1)
	[ "$(cut -d' ' -f1 "$C/c1/procs/in5/stdout")" = "$want" ]
}

@test "stdin held open by a script with exec 5>stdin" {
	echo "exec rd -- cat" >"$C/c1/procs/ctl"
	# (bats keeps fd 3 for itself)
	exec 5>"$C/c1/procs/rd/stdin"
	echo one >&5
	echo two >&5
	exec 5>&-
	[ "$(cat "$C/c1/procs/rd/wait")" = "exit 0" ]
	[ "$(cat "$C/c1/procs/rd/stdout")" = "$(printf 'one\ntwo')" ]
}

@test "tail -f follows a process that prints once a second" {
	echo "exec tick -- sh -c 'for i in 1 2 3 4 5; do echo tick\$i; sleep 1; done'" >"$C/c1/procs/ctl"
	# once the stream has bytes, tail seeks to its end and follows
	for _ in $(seq 50); do
		[ "$(field "$C/c1/procs/tick/status" stdout_bytes)" -gt 0 ] && break
		sleep 0.1
	done
	timeout 2.5 tail -f "$C/c1/procs/tick/stdout" >"$STATE/tail" || true
	[ "$(field "$C/c1/procs/tick/status" state)" = running ]
	grep -q tick2 "$STATE/tail"
	cat "$C/c1/procs/tick/wait" >/dev/null
	[ "$(wc -l <"$C/c1/procs/tick/stdout")" -eq 5 ]
}

@test "tail -n +1 -f follows a process from before its first byte" {
	echo "exec tock -- sh -c 'sleep 0.5; for i in 1 2 3 4; do echo tock\$i; sleep 1; done'" >"$C/c1/procs/ctl"
	# line-buffered, as tail writes to a terminal
	timeout 2.5 stdbuf -oL tail -n +1 -f "$C/c1/procs/tock/stdout" >"$STATE/tail2" || true
	[ "$(field "$C/c1/procs/tock/status" state)" = running ]
	grep -q tock1 "$STATE/tail2"
	cat "$C/c1/procs/tock/wait" >/dev/null
}

@test "a process nobody reads from that writes 10 MB still finishes" {
	echo "exec big -- head -c 10000000 /dev/zero" >"$C/c1/procs/ctl"
	[ "$(timeout 120 cat "$C/c1/procs/big/wait")" = "exit 0" ]
	[ "$(field "$C/c1/procs/big/status" stdout_bytes)" -eq 10000000 ]
}

@test "signal TERM ends sleep 1000, and wait says so" {
	echo "exec sl -- sleep 1000" >"$C/c1/procs/ctl"
	[ "$(field "$C/c1/procs/sl/status" state)" = running ]
	echo TERM >"$C/c1/procs/sl/signal"
	[ "$(cat "$C/c1/procs/sl/wait")" = "signal TERM" ]
}

@test "winsize is seen by stty size in a tty process" {
	echo "exec t1 --tty -- sh -c 'read x; stty size'" >"$C/c1/procs/ctl"
	echo "33 101" >"$C/c1/procs/t1/winsize"
	[ "$(cat "$C/c1/procs/t1/winsize")" = "33 101" ]
	echo go >"$C/c1/procs/t1/stdin"
	cat "$C/c1/procs/t1/wait"
	grep -q "33 101" "$C/c1/procs/t1/stdout"
}

@test "20 processes in parallel, each with its own output" {
	for i in $(seq 20); do
		echo "exec par$i -- sh -c 'sleep 1; echo out$i'" >"$C/c1/procs/ctl" &
	done
	wait
	for i in $(seq 20); do
		[ "$(cat "$C/c1/procs/par$i/wait")" = "exit 0" ]
		[ "$(cat "$C/c1/procs/par$i/stdout")" = "out$i" ]
	done
}

@test "Ctrl-C on cat wait returns promptly" {
	echo "exec long -- sleep 1000" >"$C/c1/procs/ctl"
	start=$(date +%s)
	run timeout -s INT 1 cat "$C/c1/procs/long/wait"
	[ "$status" -ne 0 ]
	[ $(($(date +%s) - start)) -lt 5 ]
	echo KILL >"$C/c1/procs/long/signal"
	[ "$(cat "$C/c1/procs/long/wait")" = "signal KILL" ]
}

@test "bad input: clear errno and a line in errors" {
	errs=$C/c1/errors
	n=$(wc -l <"$errs")
	fails_with "Invalid argument" bash -c "echo 'exec noargs' > $C/c1/procs/ctl"
	fails_with "Invalid argument" bash -c "echo 'exec noargs2 --' > $C/c1/procs/ctl"
	echo "exec dupe -- true" >"$C/c1/procs/ctl"
	fails_with "File exists" bash -c "echo 'exec dupe -- true' > $C/c1/procs/ctl"
	fails_with "Invalid argument" bash -c "echo NOSUCHSIG > $C/c1/procs/dupe/signal"
	fails_with "Invalid argument" bash -c "echo abc > $C/c1/procs/dupe/winsize"
	[ "$(wc -l <"$errs")" -ge $((n + 4)) ]
	fails_with "No such file" bash -c "echo start > $C/nosuch/ctl"
	fails_with "Device or resource busy" bash -c "echo delete > $C/c1/ctl"
	grep -q "delete" "$errs"
}

@test "a running container is deleted after kill; sandbox delete removes spools" {
	echo "create c3 -- sleep 1000" >"$C/ctl"
	echo start >"$C/c3/ctl"
	fails_with "Device or resource busy" bash -c "echo delete > $C/c3/ctl"
	echo "kill KILL" >"$C/c3/ctl"
	[ "$(cat "$C/c3/procs/init/wait")" = "signal KILL" ]
	echo delete >"$C/c3/ctl"
	[ ! -e "$C/c3" ]
	[ -d "$STATE/spool/sb" ]
	echo delete >"$MNT/sandboxes/sb/ctl"
	[ ! -e "$STATE/spool/sb" ]
}
