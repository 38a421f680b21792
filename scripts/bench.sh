#!/usr/bin/env bash
# make bench: katafs against its baselines, measured side by side in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/katafs-bench ./cmd/katafs-bench

state=$(mktemp -d /tmp/katafs-bench-st.XXXXXX)
mnt=$(mktemp -d /tmp/katafs-bench-mnt.XXXXXX)
netns=katafs-bench-$$
ip netns add "$netns"
cleanup() {
	ip netns del "$netns" 2>/dev/null || true
	[ -n "${pid:-}" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	pkill -KILL -f "qemu-system.*($state|/tmp/kb)" 2>/dev/null || true
	umount -l "$mnt" 2>/dev/null || true
	rm -rf "$state" "$mnt"
}
trap cleanup EXIT

# The daemon and the bare boot use the very same kernel and initrd.
kernel=build/guest/vmlinux
[ -f "$kernel" ] || kernel=build/guest/vmlinuz
initrd=build/guest/initrd.img
# Every VM gets a second virtio-serial port, bench.raw, for the raw throughput.
bin/katafs mount --state-dir "$state" --kernel "$kernel" --initrd "$initrd" \
	--qemu-arg -chardev --qemu-arg 'socket,id=raw,path={rundir}/raw.sock,server=on,wait=off' \
	--qemu-arg -device --qemu-arg 'virtserialport,bus=vser0.0,chardev=raw,name=bench.raw' \
	"$mnt" >"$state/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -qs katafs "$mnt/version" && break; sleep 0.1; done
# The probe result decides the bare boot's accelerator too.
accel=$(bin/katafs check 2>/dev/null | awk '$2 == "accel" { print $3 }')
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(qemu-system-x86_64 --version | head -1), accel ${accel:-tcg}"
bin/katafs-bench -mnt "$mnt" -kernel "$kernel" -initrd "$initrd" -accel "${accel:-tcg}" -netns "$netns" "$@"

# Time from `katafs mount` to every sandbox served again (FetchSandbox:
# reattach to QEMU, QMP and the agent), for 1 and for 10 running sandboxes.
restart_bench() {
	local n=$1 i t0 t1
	for i in $(seq "$n"); do echo "create rb$i" >"$mnt/ctl"; done
	kill -TERM "$pid"
	wait "$pid" 2>/dev/null || true
	t0=$(date +%s%N)
	bin/katafs mount --state-dir "$state" --kernel "$kernel" --initrd "$initrd" "$mnt" >>"$state/daemon.log" 2>&1 &
	pid=$!
	until grep -qs katafs "$mnt/version"; do sleep 0.005; done
	for i in $(seq "$n"); do
		grep -q "^agent ok" "$mnt/sandboxes/rb$i/status" || { echo "rb$i not served" >&2; exit 1; }
	done
	t1=$(date +%s%N)
	echo "restart          katafs mount until $n live sandbox(es) (VMs running) all served again: $(((t1 - t0) / 1000000)) ms"
	for i in $(seq "$n"); do echo delete >"$mnt/sandboxes/rb$i/ctl"; done
}
restart_bench 1
restart_bench 10
