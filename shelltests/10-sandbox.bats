#!/usr/bin/env bats
# The walking skeleton, the way a user drives it: echo and cat on a real
# mount, a real QEMU, the real agent in the guest.

load helpers

setup_file() { setup_daemon; }
teardown_file() { teardown_daemon; }

@test "version names katafs, the agent protocol and qemu" {
	run cat "$MNT/version"
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == "katafs "* ]]
	[[ $output == *"agent-protocol "* ]]
	[[ $output == *"qemu 7."* || $output == *"qemu "[0-9]* ]]
}

@test "create, inspect, start, pause, resume and delete a sandbox" {
	echo "create s1 memory=256 cpus=1" >"$MNT/ctl"
	[ -d "$MNT/sandboxes/s1" ]
	run ls "$MNT/sandboxes"
	[[ $output == *s1* ]]

	st=$MNT/sandboxes/s1/status
	[ "$(head -1 "$st")" = "id s1" ]
	[ "$(field "$st" state)" = ready ]
	[ "$(field "$st" agent)" = ok ]
	[ "$(field "$st" memory)" = 256 ]
	[ "$(field "$st" factory)" = new ]
	pid=$(field "$st" pid)
	[ -n "$pid" ] && kill -0 "$pid"
	grep -q "qemu-system" "/proc/$pid/cmdline"
	grep -q '"state": "ready"' "$MNT/sandboxes/s1/status.json" ||
		grep -q '"state":"ready"' "$MNT/sandboxes/s1/status.json"
	grep -q '"id": "s1"' "$MNT/sandboxes/s1/config"

	# metadata mirrored on disk
	[ -f "$STATE/meta/sandboxes/s1/config" ]
	[ -f "$STATE/meta/sandboxes/s1/state" ]
	# the guest booted our agent
	grep -q "katafs-agent: started" "$MNT/sandboxes/s1/console"

	echo start >"$MNT/sandboxes/s1/ctl"
	[ "$(field "$st" state)" = running ]
	echo pause >"$MNT/sandboxes/s1/ctl"
	[ "$(field "$st" state)" = paused ]
	fails_with "Device or resource busy" bash -c "echo pause > $MNT/sandboxes/s1/ctl"
	tail -1 "$MNT/sandboxes/s1/errors" | grep -q "pause"
	echo resume >"$MNT/sandboxes/s1/ctl"
	[ "$(field "$st" state)" = running ]

	echo delete >"$MNT/sandboxes/s1/ctl"
	wait_gone "$pid"
	[ ! -e "$MNT/sandboxes/s1" ]
	[ ! -e "$STATE/meta/sandboxes/s1" ]
	run ls "$MNT/sandboxes"
	[[ $output != *s1* ]]
}

@test "clone creates a sandbox with a fresh id on each open" {
	id=$(cat "$MNT/clone")
	[ -n "$id" ]
	[ "$(field "$MNT/sandboxes/$id/status" state)" = ready ]
	pid=$(field "$MNT/sandboxes/$id/status" pid)
	echo delete >"$MNT/sandboxes/$id/ctl"
	wait_gone "$pid"
	[ ! -e "$MNT/sandboxes/$id" ]
}

@test "stop shuts the VM down and start boots it again" {
	echo "create s2" >"$MNT/ctl"
	st=$MNT/sandboxes/s2/status
	pid=$(field "$st" pid)
	echo stop >"$MNT/sandboxes/s2/ctl"
	wait_gone "$pid"
	[ "$(field "$st" state)" = stopped ]
	fails_with "Device or resource busy" bash -c "echo resume > $MNT/sandboxes/s2/ctl"
	echo start >"$MNT/sandboxes/s2/ctl"
	[ "$(field "$st" state)" = running ]
	[ "$(field "$st" agent)" = ok ]
	pid2=$(field "$st" pid)
	[ "$pid2" != "$pid" ] && kill -0 "$pid2"
	echo delete >"$MNT/sandboxes/s2/ctl"
	wait_gone "$pid2"
}

@test "a QEMU that dies shows the sandbox stopped with a reason" {
	echo "create s3" >"$MNT/ctl"
	pid=$(field "$MNT/sandboxes/s3/status" pid)
	kill -KILL "$pid"
	for _ in $(seq 50); do
		[ "$(field "$MNT/sandboxes/s3/status" state)" = stopped ] && break
		sleep 0.1
	done
	[ "$(field "$MNT/sandboxes/s3/status" state)" = stopped ]
	grep -q "^reason .*qemu exited" "$MNT/sandboxes/s3/status"
	echo delete >"$MNT/sandboxes/s3/ctl"
	[ ! -e "$MNT/sandboxes/s3" ]
}

@test "a daemon restart leaves the VM running and finds it again" {
	echo "create s4" >"$MNT/ctl"
	echo start >"$MNT/sandboxes/s4/ctl"
	pid=$(field "$MNT/sandboxes/s4/status" pid)
	stop_daemon
	kill -0 "$pid"
	start_daemon
	run ls "$MNT/sandboxes"
	[[ $output == *s4* ]]
	[ "$(field "$MNT/sandboxes/s4/status" state)" = running ]
	[ "$(field "$MNT/sandboxes/s4/status" pid)" = "$pid" ]
	[ "$(field "$MNT/sandboxes/s4/status" agent)" = ok ]
	echo delete >"$MNT/sandboxes/s4/ctl"
	wait_gone "$pid"
}

@test "Ctrl-C on a create undoes it: no QEMU, no metadata, no directory" {
	# As a terminal's Ctrl-C: SIGINT to a writer in the foreground (a
	# background job of a script would ignore SIGINT).
	(
		for _ in $(seq 200); do
			pgrep -f "qemu-system.*guest=s9,.*$STATE" >/dev/null && break
			sleep 0.05
		done
		pkill -INT -f "^bash -c echo create s9 >"
	) &
	run bash -c "echo create s9 > $MNT/ctl"
	[ "$status" -ne 0 ]
	for _ in $(seq 100); do
		pgrep -f "qemu-system.*guest=s9,.*$STATE" >/dev/null || break
		sleep 0.1
	done
	run pgrep -f "qemu-system.*guest=s9,.*$STATE"
	[ "$status" -ne 0 ]
	[ ! -e "$MNT/sandboxes/s9" ]
	[ ! -e "$STATE/meta/sandboxes/s9" ]
	tail -1 "$MNT/errors" | grep -q "create s9"
	# and the ID is free again
	echo "create s9" >"$MNT/ctl"
	echo delete >"$MNT/sandboxes/s9/ctl"
}

@test "katafs check reports FUSE, QEMU, the guest image and the accelerator" {
	run "$KATAFS" check --state-dir "$STATE"
	[ "$status" -eq 0 ]
	[[ $output == *"ok   fuse"* ]]
	[[ $output == *"ok   qemu"* ]]
	[[ $output == *"ok   guest"* ]]
	[[ $output == *"accel"*"will be used"* ]]
	run "$KATAFS" check --kernel /nonexistent/vmlinuz
	[ "$status" -ne 0 ]
	[[ $output == *"FAIL guest"* ]]
}
