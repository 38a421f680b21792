#!/usr/bin/env bats
# The LevelDB metastore: serves like the filesystem one, the choice is
# recorded, the other flag is refused, and katafs store migrate converts.

load helpers

setup_file() {
	export DAEMON_ARGS="--store leveldb"
	setup_daemon
}
teardown_file() { teardown_daemon; }

@test "leveldb: a sandbox survives a restart; --store fs is refused; migrate converts" {
	echo "create lv" >"$MNT/ctl"
	echo start >"$MNT/sandboxes/lv/ctl"
	[ -d "$STATE/meta.leveldb" ]
	[ ! -e "$STATE/meta/sandboxes/lv" ]
	pid=$(field "$MNT/sandboxes/lv/status" pid)
	stop_daemon
	run timeout 20 "$KATAFS" mount --state-dir "$STATE" --store fs "$MNT"
	[ "$status" -ne 0 ]
	[[ $output == *"made with --store leveldb"*"katafs store migrate"* ]]
	run "$KATAFS" store migrate --state-dir "$STATE" --to fs
	[ "$status" -eq 0 ]
	[[ $output == *"migrated"* ]]
	export DAEMON_ARGS="--store fs"
	start_daemon
	[ "$(field "$MNT/sandboxes/lv/status" state)" = running ]
	[ "$(field "$MNT/sandboxes/lv/status" pid)" = "$pid" ]
	[ -f "$STATE/meta/sandboxes/lv/config" ]
	echo delete >"$MNT/sandboxes/lv/ctl"
}
