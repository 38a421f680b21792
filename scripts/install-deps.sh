#!/usr/bin/env bash
# Installs the Debian packages katafs needs, only those missing.
# Called by `make deps` (and so by `make run`, `make test`, `make bench`).
set -euo pipefail

pkgs=(
	qemu-system-x86   # the hypervisor
	busybox-static    # guest userland
	e2fsprogs         # mkfs.ext4 for images
	cpio              # the initrd
	kmod xz-utils zstd  # kernel modules for the guest
	iproute2          # ip netns, tap devices
	bats              # shell tests
	protobuf-compiler # make proto
)
need=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -eq 0 ]; then
	echo "deps: all present"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing ${need[*]}; as root: apt-get install ${need[*]}" >&2
	exit 1
fi
echo "deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
