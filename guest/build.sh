#!/usr/bin/env bash
# guest/build.sh OUTDIR AGENT_BIN
#
# Builds the sandbox guest: OUTDIR/vmlinuz, OUTDIR/initrd.img and
# OUTDIR/kernel-release, plus OUTDIR/vmlinux: the same kernel uncompressed
# (an ELF with a PVH entry note), which QEMU boots directly with
# -kernel vmlinux, about 150 ms sooner under TCG than the bzImage. The
# Makefile calls it as
#
#   CGO_ENABLED=0 go build -o bin/katafs-agent ./cmd/katafs-agent &&
#     guest/build.sh build/guest bin/katafs-agent
#
# The kernel is Debian's linux-image-cloud-amd64 (the real package it
# depends on, linux-image-6.1.0-NN-cloud-amd64), downloaded with apt-get
# into build/cache/ and unpacked there once. The initrd is a newc cpio
# with /init = the agent, a static busybox, the kernel modules listed in
# MODULES below (with their dependencies, per the package's modules.dep)
# and /etc/katafs/modules naming the ones the agent loads.
#
# Only what changed is redone: download and unpack are skipped when
# present, and the initrd is rebuilt only when the agent binary, this
# script, busybox or the module set changed (content hashes in OUTDIR/.stamp).
#
# Environment:
#   KATAFS_GUEST_CACHE   cache dir (default: <repo>/build/cache)
#   KATAFS_INITRD_COMPRESS  none (default) | gzip | lz4 | zstd
#                        Measured under TCG, QEMU start to first Check
#                        answer (mean of 7 warm boots): none 1.80 s, lz4
#                        1.79 s, zstd 1.86 s, gzip 1.93 s. The kernel unpacks
#                        the initrd while it boots, so size hardly matters
#                        and decompression does: none is as fast as lz4
#                        and needs no tool.
# Must run as root (mknod of /dev/console, root-owned files in the cpio).
set -euo pipefail

usage() {
	echo "usage: $0 OUTDIR AGENT_BIN" >&2
	exit 2
}
[[ $# -eq 2 ]] || usage
OUTDIR=$1
AGENT_BIN=$2

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
CACHE=${KATAFS_GUEST_CACHE:-$root/build/cache}
COMPRESS=${KATAFS_INITRD_COMPRESS:-none}
META_PKG=linux-image-cloud-amd64
BUSYBOX=/bin/busybox

# The modules the guest needs; the agent loads them (and their
# dependencies, from modules.dep) in this order. Built-in ones are skipped.
MODULES=(
	virtio_pci virtio_pci_modern_dev virtio_pci_legacy_dev virtio virtio_ring
	virtio_console
	virtio_blk
	virtio_net net_failover failover
	vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport
	overlay
	pvpanic pvpanic_mmio
)

STEPS=5
step() { # n message...
	local n=$1
	shift
	echo "guest: [$n/$STEPS] $*"
}
die() {
	echo "guest: error: $*" >&2
	exit 1
}

for tool in apt-get apt-cache dpkg depmod cpio sha256sum find sort; do
	command -v "$tool" >/dev/null || die "$tool not found: this script needs a Debian host with apt-get, dpkg, kmod (depmod) and cpio"
done
[[ -x $BUSYBOX ]] || die "$BUSYBOX missing: apt-get install busybox-static"
"$BUSYBOX" --list >/dev/null 2>&1 || die "$BUSYBOX is not a working busybox"
[[ -f $AGENT_BIN ]] || die "agent binary $AGENT_BIN missing: build it with CGO_ENABLED=0 go build -o $AGENT_BIN ./cmd/katafs-agent"
[[ $(id -u) -eq 0 ]] || die "must run as root (the initrd has root-owned files and a /dev/console node)"
case $COMPRESS in none | gzip | lz4 | zstd) ;; *) die "KATAFS_INITRD_COMPRESS=$COMPRESS: want none, gzip, lz4 or zstd" ;; esac
if [[ $COMPRESS != none ]]; then command -v "$COMPRESS" >/dev/null || die "$COMPRESS not found"; fi

mkdir -p "$CACHE" "$OUTDIR"

# --- 1. resolve the kernel package -------------------------------------
resolve_kernel_pkg() {
	apt-cache depends "$META_PKG" 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}
KPKG=$(resolve_kernel_pkg || true)
if [[ -z $KPKG ]]; then
	echo "guest: apt-cache does not know $META_PKG; running apt-get update"
	apt-get update -qq || die "apt-get update failed"
	KPKG=$(resolve_kernel_pkg || true)
	[[ -n $KPKG ]] || die "apt-cache depends $META_PKG names no linux-image-<version> package"
fi
KVER=${KPKG#linux-image-}
step 1 "kernel package $KPKG"

# --- 2. download and unpack ---------------------------------------------
shopt -s nullglob
debs=("$CACHE/${KPKG}_"*.deb)
if [[ ${#debs[@]} -eq 0 ]]; then
	step 2 "downloading $KPKG ..."
	# apt-get download writes to the current directory; as root it warns
	# that it cannot sandbox to _apt, which is harmless here.
	log=$(cd "$CACHE" && apt-get download "$KPKG" 2>&1) || {
		echo "$log" >&2
		die "apt-get download $KPKG failed"
	}
	debs=("$CACHE/${KPKG}_"*.deb)
	[[ ${#debs[@]} -gt 0 ]] || die "apt-get download left no ${KPKG}_*.deb in $CACHE"
fi
DEB=${debs[-1]}
KROOT=$CACHE/$KPKG
MODDIR=$KROOT/lib/modules/$KVER
if [[ ! -f $KROOT/.unpacked ]]; then
	step 2 "unpacking kernel $KVER ..."
	rm -rf "$KROOT"
	dpkg -x "$DEB" "$KROOT" || die "dpkg -x $DEB failed"
	# Debian generates modules.dep at install time (postinst); make it here.
	depmod -b "$KROOT" "$KVER" || die "depmod failed"
	touch "$KROOT/.unpacked"
else
	step 2 "kernel $KVER already unpacked in $KROOT"
fi
[[ -f $KROOT/boot/vmlinuz-$KVER ]] || die "$DEB has no boot/vmlinuz-$KVER"
[[ -f $MODDIR/modules.dep ]] || die "no modules.dep in $MODDIR"

# --- 3. module set --------------------------------------------------------
# modname PATH: kernel/drivers/virtio/virtio_pci.ko.xz -> virtio_pci
modname() {
	local b=${1##*/}
	b=${b%.xz}
	b=${b%.zst}
	b=${b%.gz}
	b=${b%.ko}
	echo "${b//-/_}"
}
declare -A DEP_LINE=() # path -> deps
declare -A PATH_OF=()  # name -> path
while IFS= read -r line; do
	p=${line%%:*}
	DEP_LINE[$p]=${line#*:}
	PATH_OF[$(modname "$p")]=$p
done <"$MODDIR/modules.dep"

declare -A SHIP=() # path -> 1
WANTED=()
add_closure() { # path
	local p=$1 d
	[[ -n ${SHIP[$p]:-} ]] && return
	SHIP[$p]=1
	for d in ${DEP_LINE[$p]}; do add_closure "$d"; done
}
for m in "${MODULES[@]}"; do
	p=${PATH_OF[$m]:-}
	if [[ -z $p ]]; then
		if grep -qE "/${m//_/[_-]}\.ko$" "$MODDIR/modules.builtin" 2>/dev/null; then
			echo "guest:   $m is built into $KVER, skipped"
		else
			echo "guest:   warning: $m is neither a module nor built into $KVER, skipped" >&2
		fi
		continue
	fi
	WANTED+=("$m")
	add_closure "$p"
done
mapfile -t SHIP_PATHS < <(printf '%s\n' "${!SHIP[@]}" | LC_ALL=C sort)
step 3 "modules: ${#WANTED[@]} wanted, ${#SHIP_PATHS[@]} shipped with dependencies"

# ko PATH: the shipped name, always plain .ko (decompressed at build time)
ko() {
	local p=$1
	p=${p%.xz}
	p=${p%.zst}
	p=${p%.gz}
	echo "$p"
}

# --- 4. up to date? ---------------------------------------------------------
stamp=$(
	echo "kernel $KPKG $(basename "$DEB")"
	echo "compress $COMPRESS"
	echo "modules ${WANTED[*]}"
	echo "shipped ${SHIP_PATHS[*]}"
	sha256sum "$AGENT_BIN" "${BASH_SOURCE[0]}" "$BUSYBOX" | awk '{print $1}'
)
if [[ -f $OUTDIR/.stamp && -f $OUTDIR/initrd.img && -f $OUTDIR/vmlinuz && -f $OUTDIR/kernel-release ]] &&
	[[ $(cat "$OUTDIR/.stamp") == "$stamp" ]]; then
	step 4 "checking inputs"
	echo "guest: up to date"
	exit 0
fi
step 4 "staging initrd"

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/katafs-guest.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
R=$STAGE/root
mkdir -p "$R"/{proc,sys,dev,tmp,run,etc/katafs,bin,sbin,usr/bin,usr/sbin,lib/modules/"$KVER",root}
chmod 1777 "$R/tmp"
mknod -m 600 "$R/dev/console" c 5 1
install -m 0755 "$AGENT_BIN" "$R/init"
install -m 0755 "$BUSYBOX" "$R/bin/busybox"
while IFS= read -r applet; do
	applet=${applet#/}
	case $applet in "" | init | linuxrc | bin/busybox) continue ;; esac
	[[ -e $R/$applet || -L $R/$applet ]] && continue
	mkdir -p "$R/$(dirname "$applet")"
	ln -s /bin/busybox "$R/$applet"
done < <("$BUSYBOX" --list-full 2>/dev/null || "$BUSYBOX" --list | sed 's|^|bin/|')

for p in "${SHIP_PATHS[@]}"; do
	dst=$R/lib/modules/$KVER/$(ko "$p")
	mkdir -p "$(dirname "$dst")"
	case $p in
	*.ko.xz) xz -dc "$MODDIR/$p" >"$dst" ;;
	*.ko.zst) zstd -qdc "$MODDIR/$p" >"$dst" ;;
	*.ko.gz) gzip -dc "$MODDIR/$p" >"$dst" ;;
	*) cp "$MODDIR/$p" "$dst" ;;
	esac
done
# The reduced modules.dep: only what is shipped, with the .ko names used.
for p in "${SHIP_PATHS[@]}"; do
	deps=()
	for d in ${DEP_LINE[$p]}; do deps+=("$(ko "$d")"); done
	echo "$(ko "$p"):${deps[*]:+ ${deps[*]}}"
done >"$R/lib/modules/$KVER/modules.dep"
printf '%s\n' "${WANTED[@]}" >"$R/etc/katafs/modules"
echo "root:x:0:0:root:/root:/bin/sh" >"$R/etc/passwd"
echo "root:x:0:" >"$R/etc/group"
echo "$KVER" >"$R/etc/katafs/kernel-release"

# extract_vmlinux BZIMAGE OUT: the kernel ELF inside a bzImage, found by
# the magic of its compressed payload (as the kernel's
# scripts/extract-vmlinux does).
extract_vmlinux() {
	local in=$1 out=$2 magic tool off
	for pair in '\x02\x21\x4c\x18:lz4 -dc' '\x1f\x8b\x08:gzip -dc' '\xfd\x37\x7a\x58\x5a\x00:xz -dc' '\x28\xb5\x2f\xfd:zstd -qdc'; do
		magic=${pair%%:*}
		tool=${pair#*:}
		command -v "${tool%% *}" >/dev/null || continue
		for off in $(LC_ALL=C grep -obUaP "$magic" "$in" 2>/dev/null | cut -d: -f1 | head -5); do
			tail -c +$((off + 1)) "$in" | $tool >"$out" 2>/dev/null || true
			if [[ -s $out && $(head -c 4 "$out" | od -An -c | tr -d ' ') == '177ELF' ]]; then
				return 0
			fi
		done
	done
	return 1
}

# --- 5. write the outputs ---------------------------------------------------
step 5 "writing initrd ($COMPRESS) and kernel $KVER to $OUTDIR"
compress() {
	case $COMPRESS in
	none) cat ;;
	gzip) gzip -6 -n ;;
	lz4) lz4 -l -9 -q ;; # the kernel wants the legacy lz4 frame
	zstd) zstd -q -19 ;;
	esac
}
(cd "$R" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) |
	compress >"$OUTDIR/initrd.img.tmp"
cp "$KROOT/boot/vmlinuz-$KVER" "$OUTDIR/vmlinuz.tmp"
echo "$KVER" >"$OUTDIR/kernel-release.tmp"
rm -f "$OUTDIR/vmlinux"
if extract_vmlinux "$OUTDIR/vmlinuz.tmp" "$OUTDIR/vmlinux.tmp"; then
	mv -f "$OUTDIR/vmlinux.tmp" "$OUTDIR/vmlinux"
else
	rm -f "$OUTDIR/vmlinux.tmp"
	echo "guest:   warning: could not extract an uncompressed vmlinux from the bzImage; only vmlinuz is built" >&2
fi
mv -f "$OUTDIR/vmlinuz.tmp" "$OUTDIR/vmlinuz"
mv -f "$OUTDIR/initrd.img.tmp" "$OUTDIR/initrd.img"
mv -f "$OUTDIR/kernel-release.tmp" "$OUTDIR/kernel-release"
echo "$stamp" >"$OUTDIR/.stamp"
echo "guest: built $OUTDIR/vmlinuz ($(du -h "$OUTDIR/vmlinuz" | cut -f1)), $OUTDIR/initrd.img ($(du -h "$OUTDIR/initrd.img" | cut -f1)), kernel $KVER"
