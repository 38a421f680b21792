#!/usr/bin/env bats
# Bad input: each a clear errno, one line in the errors file, and a daemon
# that keeps serving.

load helpers

setup_file() {
	setup_daemon
	echo "create dup" >"$MNT/ctl"
}
teardown_file() { teardown_daemon; }

# errors_grew FILE BEFORE: exactly one new line, naming the command.
errors_grew() {
	local n
	n=$(wc -l <"$1")
	[ "$n" -eq $(($2 + 1)) ] || { echo "errors had $2 lines, now $n" >&2; return 1; }
	tail -1 "$1" | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]+(Z|[+-][0-9:]+) '
}

still_serving() {
	grep -q '^katafs ' "$MNT/version"
	[ "$(field "$MNT/sandboxes/dup/status" state)" = ready ]
}

@test "unknown command is EINVAL" {
	n=$(wc -l <"$MNT/errors")
	fails_with "Invalid argument" bash -c "echo frobnicate x > $MNT/ctl"
	errors_grew "$MNT/errors" "$n"
	tail -1 "$MNT/errors" | grep -q frobnicate
	still_serving
}

@test "bad ids are EINVAL: .., a/b, 100 characters, empty" {
	for id in '..' "'a/b'" "$(printf 'x%.0s' $(seq 100))"; do
		n=$(wc -l <"$MNT/errors")
		fails_with "Invalid argument" bash -c "echo create $id > $MNT/ctl"
		errors_grew "$MNT/errors" "$n"
	done
	fails_with "Invalid argument" bash -c "echo create > $MNT/ctl"
	run ls "$MNT/sandboxes"
	[ "$output" = dup ]
	still_serving
}

@test "a duplicate id is EEXIST" {
	n=$(wc -l <"$MNT/errors")
	fails_with "File exists" bash -c "echo create dup > $MNT/ctl"
	errors_grew "$MNT/errors" "$n"
	tail -1 "$MNT/errors" | grep -q dup
	still_serving
}

@test "bad options are EINVAL" {
	fails_with "Invalid argument" bash -c "echo create o1 memory=lots > $MNT/ctl"
	fails_with "Invalid argument" bash -c "echo create o1 colour=red > $MNT/ctl"
	fails_with "Invalid argument" bash -c "echo create o1 cpus=0 > $MNT/ctl"
	fails_with "Invalid argument" bash -c "echo \"create o1 'unterminated\" > $MNT/ctl"
	[ ! -e "$MNT/sandboxes/o1" ]
	still_serving
}

@test "a 1 MiB line is EINVAL with one errors line" {
	n=$(wc -l <"$MNT/errors")
	fails_with "Invalid argument" bash -c "head -c 1048576 /dev/zero | tr '\\0' a > $MNT/ctl"
	errors_grew "$MNT/errors" "$n"
	still_serving
}

@test "random bytes are EINVAL" {
	n=$(wc -l <"$MNT/errors")
	fails_with "Invalid argument" bash -c "head -c 4096 /dev/urandom > $MNT/ctl"
	[ "$(wc -l <"$MNT/errors")" -gt "$n" ]
	still_serving
}

@test "sandbox ctl: unknown verb is EINVAL, errors line in the sandbox's errors" {
	n=$(wc -l <"$MNT/sandboxes/dup/errors")
	fails_with "Invalid argument" bash -c "echo explode > $MNT/sandboxes/dup/ctl"
	errors_grew "$MNT/sandboxes/dup/errors" "$n"
	fails_with "Device or resource busy" bash -c "echo resume > $MNT/sandboxes/dup/ctl"
	tail -1 "$MNT/sandboxes/dup/errors" | grep -q "resume"
	still_serving
}

@test "a missing sandbox is ENOENT" {
	fails_with "No such file" cat "$MNT/sandboxes/nosuch/status"
	still_serving
}

@test "unsupported factory is EINVAL with the reason" {
	fails_with "Invalid argument" bash -c "echo create f1 factory=template > $MNT/ctl"
	tail -1 "$MNT/errors" | grep -q "factory=template"
	still_serving
}
