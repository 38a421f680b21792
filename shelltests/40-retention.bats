#!/usr/bin/env bats
# Output retention: past --spool-limit the oldest bytes go, offsets stay,
# status counts what was dropped, and the newest bytes read back exact.

load helpers

setup_file() {
	export DAEMON_ARGS="--spool-limit 1M"
	setup_daemon
	echo "create rt" >"$MNT/ctl"
	echo start >"$MNT/sandboxes/rt/ctl"
	export C=$MNT/sandboxes/rt/containers
	echo "create c1 -- sleep 100000" >"$C/ctl"
	echo start >"$C/c1/ctl"
}
teardown_file() { teardown_daemon; }

@test "past the limit the head is dropped and counted, the tail is exact" {
	# 4 MiB of numbered lines: the last line says how many there were
	echo "exec big -- sh -c 'seq 1 600000'" >"$C/c1/procs/ctl"
	[ "$(cat "$C/c1/procs/big/wait")" = "exit 0" ]
	st=$C/c1/procs/big/status
	size=$(field "$st" stdout_bytes)
	dropped=$(field "$st" stdout_dropped)
	[ "$size" -eq "$(seq 1 600000 | wc -c)" ]
	[ "$dropped" -gt 0 ]
	[ "$((size - dropped))" -le $((1024 * 1024 + 65536)) ]
	[ "$(stat -c %s "$C/c1/procs/big/stdout")" -eq "$size" ]
	[ "$(tail -1 "$C/c1/procs/big/stdout")" = 600000 ]
	[ "$(tail -c 1000000 "$C/c1/procs/big/stdout" | md5sum)" = "$(seq 1 600000 | tail -c 1000000 | md5sum)" ]
	# the spool on disk holds about the limit, not the whole output
	used=$(du -k "$STATE/spool/rt/c1/big/stdout" | cut -f1)
	[ "$used" -le 1200 ]
}

@test "head -c and dd skip= read parts of a stream" {
	echo "exec part -- sh -c 'echo abcdefghij'" >"$C/c1/procs/ctl"
	cat "$C/c1/procs/part/wait" >/dev/null
	[ "$(head -c 3 "$C/c1/procs/part/stdout")" = abc ]
	[ "$(dd if="$C/c1/procs/part/stdout" bs=1 skip=4 count=3 status=none)" = efg ]
}
