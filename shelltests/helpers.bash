# Shared harness for the shell tests: one katafs daemon per test file, on a
# temporary mount point and state directory, torn down with every VM it made.

REPO=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
KATAFS=$REPO/bin/katafs

# start_daemon starts katafs on $MNT with state in $STATE and waits for it.
start_daemon() {
	# shellcheck disable=SC2086 # DAEMON_ARGS is a list of flags
	"$KATAFS" mount --state-dir "$STATE" --log-level debug ${DAEMON_ARGS:-} "$MNT" >>"$STATE/daemon.log" 2>&1 &
	echo $! >"$STATE/daemon.pid"
	for _ in $(seq 100); do
		[ -r "$MNT/version" ] && grep -q katafs "$MNT/version" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "katafs did not come up; log:" >&2
	cat "$STATE/daemon.log" >&2
	return 1
}

# stop_daemon sends SIGTERM (release: VMs keep running) and waits.
stop_daemon() {
	local pid
	pid=$(cat "$STATE/daemon.pid" 2>/dev/null) || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	umount -l "$MNT" 2>/dev/null
	return 0
}

setup_daemon() {
	export STATE MNT
	STATE=$(mktemp -d /tmp/katafs-st.XXXXXX)
	MNT=$(mktemp -d /tmp/katafs-mnt.XXXXXX)
	start_daemon
}

# teardown_daemon deletes every sandbox, stops the daemon, and kills any
# QEMU still running from this state directory: no orphan VM, ever.
teardown_daemon() {
	local id
	local leaked=""
	for id in $(ls "$MNT/sandboxes" 2>/dev/null); do
		echo delete >"$MNT/sandboxes/$id/ctl" 2>/dev/null || true
	done
	for _ in $(seq 50); do
		leaked=$(qemu_pids)
		[ -z "$leaked" ] && break
		sleep 0.1
	done
	stop_daemon
	pkill -KILL -f "qemu-system.*$STATE" 2>/dev/null || true
	umount -l "$MNT" 2>/dev/null || true
	if [ -n "${KEEP_STATE:-}" ]; then
		echo "state kept in $STATE" >&3
	else
		rm -rf "$STATE" "$MNT"
	fi
	if [ -n "$leaked" ]; then
		echo "QEMU outlived the delete of every sandbox: $leaked" >&2
		return 1
	fi
}

# field prints the value of KEY in a status file.
field() { awk -v k="$2" '$1 == k { $1 = ""; sub(/^ /, ""); print; exit }' "$1"; }

# qemu_pids prints the pids of this state directory's QEMUs.
qemu_pids() { pgrep -f "qemu-system.*$STATE" || true; }

# fails_with ERRNO-TEXT CMD...: the command must fail with that message.
fails_with() {
	local want=$1
	shift
	run "$@"
	if [ "$status" -eq 0 ]; then
		echo "expected failure ($want), got success: $output" >&2
		return 1
	fi
	if [[ $output != *"$want"* ]]; then
		echo "expected '$want', got: $output" >&2
		return 1
	fi
}

# wait_gone PID: true once the process is gone (generous deadline).
wait_gone() {
	for _ in $(seq 200); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}
