#!/usr/bin/env bats
# Hotplug on a running sandbox: disks, container roots from images and
# directories, NICs with a tap in the sandbox's netns, guest routes.
# Network traffic stays inside the network namespace the test makes.

load helpers

setup_file() {
	export DAEMON_ARGS="--hotplug-ports 4"
	setup_daemon
	export NS=katafs-t$$
	ip netns add "$NS"
	echo "create hp netns=/var/run/netns/$NS" >"$MNT/ctl"
	echo start >"$MNT/sandboxes/hp/ctl"
	export SB=$MNT/sandboxes/hp
	# a root directory with its own busybox and a file to read back
	export ROOTDIR=$STATE/rootdir
	mkdir -p "$ROOTDIR/bin" "$ROOTDIR/etc"
	cp /bin/busybox "$ROOTDIR/bin/busybox"
	for a in sh cat ls echo; do ln -s busybox "$ROOTDIR/bin/$a"; done
	echo "from the image" >"$ROOTDIR/hello.txt"
	export IMG=$STATE/root.ext4
	mkfs.ext4 -q -d "$ROOTDIR" "$IMG" 32M
}

teardown_file() {
	teardown_daemon
	ip netns del "$NS" 2>/dev/null || true
}

@test "a container root from an ext4 image: the file reads back, writes go to an overlay" {
	before=$(md5sum <"$IMG")
	echo "create ci rootfs=$IMG -- sh -c 'cat /hello.txt; echo new > /written; cat /written'" >"$SB/containers/ctl"
	grep -q "^root-ci kind=block path=$IMG ro=true" "$SB/devices"
	echo start >"$SB/containers/ci/ctl"
	[ "$(cat "$SB/containers/ci/procs/init/wait")" = "exit 0" ]
	[ "$(cat "$SB/containers/ci/procs/init/stdout")" = "$(printf 'from the image\nnew')" ]
	echo delete >"$SB/containers/ci/ctl"
	! grep -q "^root-ci " "$SB/devices" || false
	[ "$(md5sum <"$IMG")" = "$before" ]
}

@test "a container root from a host directory, turned into a cached image" {
	echo "create cd rootfs=$ROOTDIR -- cat /hello.txt" >"$SB/containers/ctl"
	echo start >"$SB/containers/cd/ctl"
	cat "$SB/containers/cd/procs/init/wait"
	[ "$(cat "$SB/containers/cd/procs/init/stdout")" = "from the image" ]
	echo delete >"$SB/containers/cd/ctl"
	[ "$(ls "$STATE/images" | wc -l)" -eq 1 ]
}

@test "hot-add two disks, remove the first, add a third: guest paths as listed" {
	for d in d1 d2 d3; do truncate -s 8M "$STATE/$d.img"; done
	echo "add block $STATE/d1.img id=d1" >"$SB/devices"
	echo "add block $STATE/d2.img ro id=d2" >"$SB/devices"
	g1=$(awk '$1 == "d1" { for (i = 2; i <= NF; i++) if ($i ~ /^guest=/) print substr($i, 7) }' "$SB/devices")
	g2=$(awk '$1 == "d2" { for (i = 2; i <= NF; i++) if ($i ~ /^guest=/) print substr($i, 7) }' "$SB/devices")
	[[ $g1 == /dev/vd* ]] && [[ $g2 == /dev/vd* ]] && [ "$g1" != "$g2" ]
	grep -q "^d2 .*ro=true" "$SB/devices"
	echo "create lister -- sleep 100000" >"$SB/containers/ctl"
	echo start >"$SB/containers/lister/ctl"
	echo "exec l1 -- ls /dev" >"$SB/containers/lister/procs/ctl"
	cat "$SB/containers/lister/procs/l1/wait"
	grep -qx "${g1#/dev/}" "$SB/containers/lister/procs/l1/stdout"
	grep -qx "${g2#/dev/}" "$SB/containers/lister/procs/l1/stdout"
	echo "remove d1" >"$SB/devices"
	! grep -q "^d1 " "$SB/devices" || false
	echo "add block $STATE/d3.img id=d3" >"$SB/devices"
	g3=$(awk '$1 == "d3" { for (i = 2; i <= NF; i++) if ($i ~ /^guest=/) print substr($i, 7) }' "$SB/devices")
	echo "exec l2 -- ls /dev" >"$SB/containers/lister/procs/ctl"
	cat "$SB/containers/lister/procs/l2/wait"
	grep -qx "${g3#/dev/}" "$SB/containers/lister/procs/l2/stdout"
	grep -qx "${g2#/dev/}" "$SB/containers/lister/procs/l2/stdout"
	echo "remove d2" >"$SB/devices"
	echo "remove d3" >"$SB/devices"
}

@test "more disks than ports is ENOSPC" {
	for i in 1 2 3 4 5; do truncate -s 1M "$STATE/p$i.img"; done
	for i in 1 2 3 4; do echo "add block $STATE/p$i.img id=p$i" >"$SB/devices"; done
	fails_with "No space left on device" bash -c "echo 'add block $STATE/p5.img id=p5' > $SB/devices"
	tail -1 "$SB/errors" | grep -q "p5"
	for i in 1 2 3 4; do echo "remove p$i" >"$SB/devices"; done
}

@test "a NIC: tap in the sandbox's netns, guest pings the host side, removed again" {
	echo "add eth1 addr=192.168.77.2/24 mtu=1400" >"$SB/interfaces"
	line=$(grep "^eth1 " "$SB/interfaces")
	[[ $line == *"addr=192.168.77.2/24"* ]]
	[[ $line == *"mtu=1400"* ]]
	tap=$(echo "$line" | tr ' ' '\n' | sed -n 's/^tap=//p')
	[ -n "$tap" ]
	ip netns exec "$NS" ip link show "$tap"
	ip netns exec "$NS" ip addr add 192.168.77.1/24 dev "$tap"
	ip netns exec "$NS" ip link set "$tap" up
	echo "create net -- sleep 100000" >"$SB/containers/ctl"
	echo start >"$SB/containers/net/ctl"
	echo "exec ping -- ping -c 1 -W 10 192.168.77.1" >"$SB/containers/net/procs/ctl"
	[ "$(cat "$SB/containers/net/procs/ping/wait")" = "exit 0" ]
	grep -q "1 packets received" "$SB/containers/net/procs/ping/stdout"

	echo "add default via=192.168.77.1 dev=eth1" >"$SB/routes"
	grep -q "^default via=192.168.77.1 dev=eth1" "$SB/routes"
	echo "add 10.99.0.0/16 dev=eth1" >"$SB/routes"
	grep -q "^10.99.0.0/16 dev=eth1" "$SB/routes"
	echo "del default" >"$SB/routes"
	! grep -q "^default" "$SB/routes" || false
	echo "del 10.99.0.0/16" >"$SB/routes"

	echo "remove eth1" >"$SB/interfaces"
	! grep -q "^eth1 " "$SB/interfaces" || false
	run ip netns exec "$NS" ip link show "$tap"
	[ "$status" -ne 0 ]
}

@test "hotplug bad input: clear errno and a line in errors" {
	mkdir -p "$STATE/adir"
	fails_with "" bash -c "echo 'add block $STATE/missing.img' > $SB/devices"
	tail -1 "$SB/errors" | grep -q "missing.img"
	fails_with "Invalid argument" bash -c "echo 'add block $STATE/adir' > $SB/devices"
	fails_with "Invalid argument" bash -c "echo 'add eth2 addr=300.1.1.1/24' > $SB/interfaces"
	echo "add eth2 addr=192.168.78.2/24" >"$SB/interfaces"
	fails_with "File exists" bash -c "echo 'add eth2' > $SB/interfaces"
	fails_with "No such file" bash -c "echo 'remove nosuch' > $SB/devices"
	fails_with "No such file" bash -c "echo 'remove nosuch' > $SB/interfaces"
	fails_with "" bash -c "echo 'del 10.55.0.0/16' > $SB/routes"
	echo "remove eth2" >"$SB/interfaces"
	# a sandbox without a netns has no NICs to add
	echo "create nonet" >"$MNT/ctl"
	fails_with "Invalid argument" bash -c "echo 'add eth1' > $MNT/sandboxes/nonet/interfaces"
	tail -1 "$MNT/sandboxes/nonet/errors" | grep -q "netns"
}

@test "an OCI bundle: its config.json's process runs on its root" {
	B=$STATE/bundle
	mkdir -p "$B"
	cp -a "$ROOTDIR" "$B/rootfs"
	cat >"$B/config.json" <<JSON
{"ociVersion": "1.0.2", "process": {"args": ["cat", "/hello.txt"], "cwd": "/", "env": ["PATH=/bin"]},
 "root": {"path": "rootfs"}, "hostname": "bundled"}
JSON
	echo "create cb bundle=$B" >"$SB/containers/ctl"
	grep -q '"bundled"' "$SB/containers/cb/config"
	echo start >"$SB/containers/cb/ctl"
	[ "$(cat "$SB/containers/cb/procs/init/wait")" = "exit 0" ]
	[ "$(cat "$SB/containers/cb/procs/init/stdout")" = "from the image" ]
	echo delete >"$SB/containers/cb/ctl"
	fails_with "Invalid argument" bash -c "echo 'create cx bundle=$STATE/nobundle' > $SB/containers/ctl"
}

@test "after a daemon restart, devices and interfaces still list and remove" {
	truncate -s 4M "$STATE/keep.img"
	echo "add block $STATE/keep.img id=keep" >"$SB/devices"
	echo "add eth5 addr=192.168.79.2/24" >"$SB/interfaces"
	tap=$(grep "^eth5 " "$SB/interfaces" | tr ' ' '\n' | sed -n 's/^tap=//p')
	stop_daemon
	start_daemon
	grep -q "^keep kind=block" "$SB/devices"
	grep -q "^eth5 .*tap=$tap" "$SB/interfaces"
	echo "remove keep" >"$SB/devices"
	! grep -q "^keep " "$SB/devices" || false
	echo "remove eth5" >"$SB/interfaces"
	run ip netns exec "$NS" ip link show "$tap"
	[ "$status" -ne 0 ]
}
