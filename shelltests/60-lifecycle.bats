#!/usr/bin/env bats
# Lifecycle and durability: pause/resume, daemon restarts and crashes with
# processes running, QEMU dying under the daemon, stop/start, the lock.

load helpers

setup_file() { setup_daemon; }
teardown_file() { teardown_daemon; }

# ticker SB: a sandbox with container c1 and process t1 printing a
# numbered line every 0.5 s.
ticker() {
	echo "create $1" >"$MNT/ctl"
	echo start >"$MNT/sandboxes/$1/ctl"
	local C=$MNT/sandboxes/$1/containers
	echo "create c1 -- sleep 100000" >"$C/ctl"
	echo start >"$C/c1/ctl"
	echo "exec t1 -- sh -c 'i=0; while :; do i=\$((i+1)); echo line\$i; sleep 0.5; done'" >"$C/c1/procs/ctl"
}

# snap FILE: what a stream holds now (reading a live stream to its end
# would wait for the process to end).
snap() { head -c "$(stat -c %s "$1")" "$1"; }

lines() { snap "$MNT/sandboxes/$1/containers/c1/procs/t1/stdout" | wc -l; }

# no_gap SB: the ticker's lines run 1..N with none missing.
no_gap() {
	snap "$MNT/sandboxes/$1/containers/c1/procs/t1/stdout" |
		awk '{ sub("line", ""); if ($0 != NR) { print "gap at " NR ": " $0; exit 1 } }'
}

@test "pause stops output and every container; resume carries on" {
	ticker pz
	sleep 1.2
	echo pause >"$MNT/sandboxes/pz/ctl"
	[ "$(field "$MNT/sandboxes/pz/containers/c1/status" state)" = paused ]
	n=$(lines pz)
	sleep 1.5
	[ "$(lines pz)" -eq "$n" ]
	fails_with "Device or resource busy" bash -c "echo pause > $MNT/sandboxes/pz/ctl"
	echo resume >"$MNT/sandboxes/pz/ctl"
	[ "$(field "$MNT/sandboxes/pz/containers/c1/status" state)" = running ]
	sleep 1.5
	[ "$(lines pz)" -gt "$n" ]
	echo delete >"$MNT/sandboxes/pz/ctl"
	fails_with "No such file" bash -c "echo resume > $MNT/sandboxes/pz/ctl"
}

@test "SIGTERM of the daemon: processes go on, a new daemon serves all of it again" {
	ticker rs
	C=$MNT/sandboxes/rs/containers
	sleep 1
	qpid=$(field "$MNT/sandboxes/rs/status" pid)
	stop_daemon
	sleep 2 # the process prints while no daemon runs
	kill -0 "$qpid"
	start_daemon
	[ "$(field "$MNT/sandboxes/rs/status" state)" = running ]
	n=$(lines rs)
	sleep 1.5
	[ "$(lines rs)" -gt "$n" ] # still streaming into the spool
	# nothing lost: the numbers run 1..N with no gap
	no_gap rs
	# exec into the old container, wait on the old process
	echo "exec e1 -- echo again" >"$C/c1/procs/ctl"
	[ "$(cat "$C/c1/procs/e1/stdout")" = again ]
	echo KILL >"$C/c1/procs/t1/signal"
	[ "$(cat "$C/c1/procs/t1/wait")" = "signal KILL" ]
	echo delete >"$MNT/sandboxes/rs/ctl"
}

@test "kill -9 of the daemon: lazy unmount, new daemon, the same" {
	ticker cr
	C=$MNT/sandboxes/cr/containers
	sleep 1
	kill -KILL "$(cat "$STATE/daemon.pid")"
	umount -l "$MNT"
	sleep 1.5
	start_daemon
	[ "$(field "$MNT/sandboxes/cr/status" state)" = running ]
	n=$(lines cr)
	sleep 1.5
	[ "$(lines cr)" -gt "$n" ]
	no_gap cr
	echo delete >"$MNT/sandboxes/cr/ctl"
}

@test "kill -9 during a create: after restart no zombie QEMU, no half sandbox" {
	bash -c "echo create half > $MNT/ctl" &
	for _ in $(seq 200); do
		pgrep -f "qemu-system.*guest=half,.*$STATE" >/dev/null && break
		sleep 0.05
	done
	kill -KILL "$(cat "$STATE/daemon.pid")"
	wait || true
	umount -l "$MNT"
	start_daemon
	run ls "$MNT/sandboxes"
	[[ $output != *half* ]]
	[ ! -e "$STATE/meta/sandboxes/half" ]
	for _ in $(seq 50); do
		pgrep -f "qemu-system.*guest=half,.*$STATE" >/dev/null || break
		sleep 0.1
	done
	run pgrep -f "qemu-system.*guest=half,.*$STATE"
	[ "$status" -ne 0 ]
}

@test "QEMU killed under the daemon: stopped with the cause, processes exited, nothing hangs" {
	ticker qk
	C=$MNT/sandboxes/qk/containers
	kill -KILL "$(field "$MNT/sandboxes/qk/status" pid)"
	[ "$(timeout 20 cat "$C/c1/procs/t1/wait")" = "signal KILL" ]
	timeout 20 cat "$C/c1/procs/t1/stdout" >/dev/null
	[ "$(field "$MNT/sandboxes/qk/status" state)" = stopped ]
	grep -q "^reason qemu exited" "$MNT/sandboxes/qk/status"
	[ "$(field "$C/c1/status" state)" = stopped ]
	[ "$(field "$C/c1/procs/t1/status" state)" = exited ]
	echo delete >"$MNT/sandboxes/qk/ctl"
}

@test "stop, then start: the VM boots again with its containers created again" {
	echo "create ss" >"$MNT/ctl"
	echo start >"$MNT/sandboxes/ss/ctl"
	C=$MNT/sandboxes/ss/containers
	echo "create c1 -- sh -c 'echo reborn'" >"$C/ctl"
	echo stop >"$MNT/sandboxes/ss/ctl"
	[ "$(field "$MNT/sandboxes/ss/status" state)" = stopped ]
	echo start >"$MNT/sandboxes/ss/ctl"
	[ "$(field "$C/c1/status" state)" = ready ]
	echo start >"$C/c1/ctl"
	[ "$(cat "$C/c1/procs/init/wait")" = "exit 0" ]
	[ "$(cat "$C/c1/procs/init/stdout")" = reborn ]
	echo delete >"$MNT/sandboxes/ss/ctl"
}

@test "a second daemon on the same state directory refuses to start" {
	run timeout 10 "$KATAFS" mount --state-dir "$STATE" "$(mktemp -d)"
	[ "$status" -ne 0 ]
	[[ $output == *"in use by another katafs"* ]]
}

@test "events: state changes and QMP events, followed as they come" {
	echo "create evs" >"$MNT/ctl"
	E=$MNT/sandboxes/evs/events
	cat "$E" >"$STATE/events.follow" &
	follower=$!
	echo start >"$MNT/sandboxes/evs/ctl"
	echo pause >"$MNT/sandboxes/evs/ctl"
	echo resume >"$MNT/sandboxes/evs/ctl"
	sleep 0.5
	# the follower saw them while the sandbox lives (cat has not ended)
	kill -0 "$follower"
	grep -Eq '^[0-9T:.-]+Z created ' "$STATE/events.follow"
	grep -q " started ready -> running" "$STATE/events.follow"
	grep -q " qmp STOP" "$STATE/events.follow"
	grep -q " paused running -> paused" "$STATE/events.follow"
	grep -q " resumed paused -> running" "$STATE/events.follow"
	echo delete >"$MNT/sandboxes/evs/ctl"
	# deleting ends the stream: the follower gets EOF
	for _ in $(seq 50); do kill -0 "$follower" 2>/dev/null || break; sleep 0.1; done
	run kill -0 "$follower"
	[ "$status" -ne 0 ]
	grep -q " deleted" "$STATE/events.follow"
}

@test "a guest panic: guest-panicked and qemu-exited events, the reason in status" {
	echo "create pan" >"$MNT/ctl"
	echo start >"$MNT/sandboxes/pan/ctl"
	C=$MNT/sandboxes/pan/containers
	echo "create c1 -- sleep 100000" >"$C/ctl"
	echo start >"$C/c1/ctl"
	echo "exec boom -- sh -c 'echo c > /proc/sysrq-trigger'" >"$C/c1/procs/ctl"
	for _ in $(seq 100); do
		[ "$(field "$MNT/sandboxes/pan/status" state)" = stopped ] && break
		sleep 0.1
	done
	grep -q "^reason qemu exited: guest-panic" "$MNT/sandboxes/pan/status"
	snap() { head -c "$(stat -c %s "$1")" "$1"; }
	snap "$MNT/sandboxes/pan/events" | grep -q " guest-panicked "
	snap "$MNT/sandboxes/pan/events" | grep -q " qemu-exited "
	echo delete >"$MNT/sandboxes/pan/ctl"
}

@test "a QEMU that died while no daemon ran: stopped, with the reason" {
	echo "create gone" >"$MNT/ctl"
	pid=$(field "$MNT/sandboxes/gone/status" pid)
	stop_daemon
	kill -KILL "$pid"
	wait_gone "$pid"
	start_daemon
	[ "$(field "$MNT/sandboxes/gone/status" state)" = stopped ]
	grep -q "^reason qemu exited while no daemon ran" "$MNT/sandboxes/gone/status"
	echo start >"$MNT/sandboxes/gone/ctl"
	[ "$(field "$MNT/sandboxes/gone/status" agent)" = ok ]
	echo delete >"$MNT/sandboxes/gone/ctl"
}

@test "deleting a sandbox ends a reader blocked on wait" {
	ticker dw
	C=$MNT/sandboxes/dw/containers
	timeout 30 cat "$C/c1/procs/t1/wait" >"$STATE/dw.wait" &
	reader=$!
	sleep 0.5
	echo delete >"$MNT/sandboxes/dw/ctl"
	wait "$reader"
	[ "$(cat "$STATE/dw.wait")" = "signal KILL" ]
}
