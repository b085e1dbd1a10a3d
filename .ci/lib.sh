# Shared by the CI scripts that work in debootstrapped Debian roots (.ci/debian13, .ci/test-image).
# Source it after setting $name (the prefix of every message). Needs root on a Debian or Ubuntu machine.

say() { echo "$name: $*" >&2; }
die() {
	say "$*"
	exit 1
}

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, mounts): run \`sudo make $name\`"

# need installs the Debian packages that provide the commands named as COMMAND:PACKAGE, when missing.
need() {
	local missing=() c
	for c in "$@"; do
		command -v "${c%%:*}" >/dev/null || missing+=("${c#*:}")
	done
	[ ${#missing[@]} = 0 ] && return
	command -v apt-get >/dev/null || die "needs ${missing[*]} (a Debian or Ubuntu machine has them in apt)"
	say "installing ${missing[*]}"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# isolated runs a command in new mount and PID namespaces: when it ends, fails or is interrupted, the
# kernel removes its mounts and kills whatever it left running. It runs in the background so that a
# signal to the script is handled at once: the trap kills unshare, whose --kill-child kills the
# namespace's first process, and with it every process in the namespace. The trap uses SIGKILL
# because unshare blocks SIGINT and SIGTERM while its child runs, and the child, a namespace's init,
# ignores them. A background command starts with SIGINT ignored; env --default-signal gives the
# command its default signal handling back.
child=
isolated() {
	unshare --mount --propagation private --pid --fork --kill-child -- env --default-signal "$@" &
	child=$!
	local status=0
	wait "$child" || status=$?
	child=
	return "$status"
}
trap 'if [ -n "$child" ]; then kill -KILL "$child" 2>/dev/null; fi; die "interrupted"' INT TERM HUP

# unmounted fails if anything is mounted under $1, so that rm -rf can never reach through a mount into
# this machine's /dev or Go.
unmounted() {
	if findmnt -rno TARGET | awk -v dir="$1" 'index($0, dir) == 1 { found = 1 } END { exit !found }'; then
		die "something is still mounted under $1: unmount it and re-run"
	fi
}

# debian_root SUITE INCLUDE CACHE builds CACHE/root with `debootstrap --variant=minbase
# --include=INCLUDE SUITE` once, under a lock on CACHE. It is built under a temporary name and renamed
# when complete, with a stamp saying how, so that a half-built or differently built root is never
# used. DEBIAN_MIRROR overrides the Debian archive.
debian_root() {
	local suite=$1 include=$2 cache=$3
	local base=$cache/root mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
	local stamp="suite=$suite variant=minbase include=$include" start=$SECONDS d
	mkdir -p "$cache"
	exec 9>"$cache/lock"
	flock -n 9 || { say "waiting for another run on $cache"; flock 9; }
	[ "$(cat "$base/.vggish-stamp" 2>/dev/null)" = "$stamp" ] && return
	need debootstrap:debootstrap
	say "building the Debian $suite root with debootstrap from $mirror (once)"
	for d in "$base.tmp" "$base"; do
		unmounted "$d"
		rm -rf "$d"
	done
	local log=$cache/debootstrap.log
	if ! isolated debootstrap --variant=minbase --include="$include" "$suite" "$base.tmp" "$mirror" >"$log" 2>&1; then
		tail -20 "$log" >&2
		die "debootstrap failed (log: $log)"
	fi
	echo "$stamp" >"$base.tmp/.vggish-stamp"
	mv "$base.tmp" "$base"
	say "root built in $((SECONDS - start)) s"
}
