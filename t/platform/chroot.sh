#!/bin/sh
# Other Debian releases side by side, with debootstrap (as root): a minbase
# system per suite, kept outside the clone and made again when missing, and
# copies of it that a run may change and throws away.
#
#   t/platform/chroot.sh create SUITE      the pristine minbase system of SUITE
#                                          (made when missing); prints its path.
#                                          SUITE-main (e.g. bookworm-main): the
#                                          release as its main suite has it, no
#                                          -updates or -security in its sources
#                                          (a server that has not taken the
#                                          point releases); cached under that name
#   t/platform/chroot.sh enter DIR CMD...  runs CMD as root in the system at DIR,
#                                          with /proc, /sys, /dev/pts, /dev/shm
#                                          mounted for it and unmounted after
#   t/platform/chroot.sh make-run SUITE    `make run` of this tree (HEAD and the
#                                          uncommitted changes of tracked files)
#                                          as root in a fresh copy of SUITE's
#                                          minbase: what it installed, how long
#                                          it took, that it serves; then `make
#                                          stop`, and the copy is removed
#   t/platform/chroot.sh provision SUITE PKG...
#                                          SUITE's minbase with PKG... installed
#                                          (--no-install-recommends), kept as
#                                          SUITE-pkgs-HASH (HASH: of the sorted
#                                          list), made when missing and made
#                                          again when the list changes; prints
#                                          its path
#   t/platform/chroot.sh overlay SYS CMD...
#                                          runs CMD as `enter` does, in a
#                                          throwaway overlay over the system at
#                                          SYS (which stays as it was); DP_SRC=DIR
#                                          puts a copy of DIR at /src first
#   t/platform/chroot.sh cleanup           unmounts whatever a killed run left
#                                          under the cache, removes the copies
#
# DP_CHROOT_CACHE  where the systems live (default /var/cache/diagproc-chroots)
# DP_MIRROR        the Debian archive (default: the one this machine's apt
#                  sources name for its own release)
set -eu
CACHE=${DP_CHROOT_CACHE:-/var/cache/diagproc-chroots}
TOP=$(cd "$(dirname "$0")/../.." && pwd)
# test-only packages that `make run` must not bring, even as dependencies
TEST_ONLY="chromium clang lldb openjdk php python3.11-dbg wrk gdb nodejs npm libcmocka unzip zstd curl"

die() { echo "chroot: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mounts)"
command -v debootstrap >/dev/null || [ "${1:-}" = cleanup ] \
    || die "needs debootstrap (apt-get install debootstrap)"

# Every mount this script makes is undone on the way out, whatever the way:
# the list of them, newest first, and a trap. Under unshare -m (below) they
# never reach the machine's mount table at all.
MOUNTED=""
unmount_all() {
    for m in $MOUNTED; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || echo "chroot: could not unmount $m" >&2
    done
    MOUNTED=""
}
WORK=""
on_exit() {
    rc=$?
    unmount_all
    [ -n "$WORK" ] && rm -rf "$WORK"
    exit $rc
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if [ -z "${DP_CHROOT_NS:-}" ] && [ "${1:-}" != cleanup ] && unshare -m true 2>/dev/null; then
    trap - EXIT
    DP_CHROOT_NS=1 exec unshare -m --propagation private sh "$0" "$@"
fi

mirror() {
    if [ -n "${DP_MIRROR:-}" ]; then echo "$DP_MIRROR"; return; fi
    host=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    m=$(apt-get indextargets --format '$(SITE) $(RELEASE)' 2>/dev/null \
        | awk -v r="$host" '$2 == r { print $1; exit }')
    echo "${m:-http://deb.debian.org/debian}"
}

security_site() {
    host=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    apt-get indextargets --format '$(SITE) $(RELEASE)' 2>/dev/null \
        | awk -v r="$host-security" '$2 == r { print $1; exit }'
}

create() {
    suite=$1
    base="$CACHE/$suite-minbase"
    mkdir -p "$CACHE"
    exec 9>"$CACHE/.lock"
    flock 9
    if [ ! -f "$base/.complete" ]; then
        rm -rf "$base" "$base.new"
        site=$(mirror)
        # SUITE-main: the release from its main suite alone (debootstrap
        # takes nothing else), and no -updates or -security for apt either
        dist=${suite%-main}
        script=""
        case "$dist" in
            bullseye|bookworm|trixie|sid|testing|unstable) ;;
            *) script=/usr/share/debootstrap/scripts/sid ;;   # a newer testing
        esac
        echo "chroot: debootstrap --variant=minbase $dist from $site" >&2
        t0=$(date +%s)
        debootstrap --variant=minbase "$dist" "$base.new" "$site" $script \
            >"$CACHE/$suite-debootstrap.log" 2>&1 \
            || { tail -20 "$CACHE/$suite-debootstrap.log" >&2; die "debootstrap $suite failed"; }
        {
            echo "deb $site $dist main"
            case "$suite" in
                *-main|sid|unstable|testing|forky|duke) ;;
                *)  echo "deb $site $dist-updates main"
                    sec=$(security_site)
                    [ -n "$sec" ] && echo "deb $sec $dist-security main" ;;
            esac
        } >"$base.new/etc/apt/sources.list"
        case "$dist" in
            sid|unstable|testing|forky|duke)
                # the archive's copy carries a Release past its Valid-Until
                echo 'Acquire::Check-Valid-Until "false";' \
                    >"$base.new/etc/apt/apt.conf.d/99diagproc-valid-until" ;;
        esac
        # package installs start no daemons inside (they would share the
        # machine's ports)
        printf '#!/bin/sh\nexit 101\n' >"$base.new/usr/sbin/policy-rc.d"
        chmod 755 "$base.new/usr/sbin/policy-rc.d"
        touch "$base.new/.complete"
        mv "$base.new" "$base"
        echo "chroot: $suite minbase made in $(( $(date +%s) - t0 )) s" >&2
    fi
    flock -u 9
    echo "$base"
}

mount_fs() {   # mount_fs TYPE OPTIONS DIR
    mkdir -p "$3"
    mount -t "$1" -o "$2" "$1" "$3"
    MOUNTED="$3 $MOUNTED"
}

enter() {
    dir=$(cd "$1" && pwd)
    shift
    [ -x "$dir/bin/sh" ] || die "$dir is no system"
    cp /etc/resolv.conf "$dir/etc/resolv.conf"
    mount_fs proc nosuid,nodev,noexec "$dir/proc"
    mount_fs sysfs nosuid,nodev,noexec,ro "$dir/sys"
    mount_fs devpts newinstance,ptmxmode=0666,mode=620,gid=5 "$dir/dev/pts"
    mount_fs tmpfs nosuid,nodev,mode=1777 "$dir/dev/shm"
    rc=0
    chroot "$dir" /usr/bin/env -i HOME=/root TERM="${TERM:-dumb}" \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@" || rc=$?
    unmount_all
    return $rc
}

# A system with packages, cached under a key of suite + list: a run with the
# same list reuses it, a changed list makes a new one (and the systems of
# older lists of that suite are removed, so the cache holds one per suite).
provision() {
    suite=$1
    shift
    list=$(printf '%s\n' "$@" | sort -u | tr '\n' ' ')
    key=$(printf '%s' "$list" | sha256sum | cut -c1-12)
    sys="$CACHE/$suite-pkgs-$key"
    if [ ! -f "$sys/.complete" ]; then
        base=$(create "$suite")
        exec 9>"$CACHE/.lock-$suite"
        flock 9
        if [ ! -f "$sys/.complete" ]; then
            rm -rf "$sys.new"
            t0=$(date +%s)
            cp -a "$base" "$sys.new"
            rm -f "$sys.new/.complete"
            printf '%s\n' $list >"$sys.new/.packages"
            echo "chroot: $suite: apt-get install $list" >&2
            # a security archive whose index names files it does not hold
            # (404, seen for bullseye): the release without its security
            # updates rather than no system
            enter "$sys.new" sh -c "export DEBIAN_FRONTEND=noninteractive
                inst() { apt-get update -qq && apt-get install -y -qq --no-install-recommends $list; }
                inst || { echo 'chroot: retrying without the security archive';
                          sed -i '/-security/s/^deb /# deb /' /etc/apt/sources.list; inst; }" \
                >"$CACHE/$suite-pkgs-$key.log" 2>&1 \
                || { tail -20 "$CACHE/$suite-pkgs-$key.log" >&2; rm -rf "$sys.new";
                     die "apt-get install in $suite failed"; }
            enter "$sys.new" apt-get clean >/dev/null 2>&1 || true
            for old in "$CACHE/$suite-pkgs-"*; do
                case "$old" in *.log|"$sys.new") continue ;; esac
                [ -d "$old" ] && rm -rf "$old"
            done
            touch "$sys.new/.complete"
            mv "$sys.new" "$sys"
            echo "chroot: $suite with packages made in $(( $(date +%s) - t0 )) s" >&2
        fi
        flock -u 9
    fi
    echo "$sys"
}

# A cached system used without being changed: an overlay whose upper layer
# (what a run writes) is thrown away with its mounts.
overlay() {
    sys=$(cd "$1" && pwd)
    shift
    [ -f "$sys/.complete" ] || die "$sys is no complete system"
    mkdir -p "$CACHE/work"
    WORK=$(mktemp -d "$CACHE/work/overlay.XXXXXX")
    mkdir "$WORK/upper" "$WORK/wd" "$WORK/root"
    mount -t overlay overlay -o "lowerdir=$sys,upperdir=$WORK/upper,workdir=$WORK/wd" "$WORK/root"
    MOUNTED="$WORK/root"
    if [ -n "${DP_SRC:-}" ]; then
        mkdir -p "$WORK/root/src"
        cp -a "$DP_SRC/." "$WORK/root/src/"
    fi
    enter "$WORK/root" "$@"
}

copy_of() {   # a throwaway copy of SUITE's minbase
    base=$(create "$1")
    mkdir -p "$CACHE/work"
    WORK=$(mktemp -d "$CACHE/work/$1.XXXXXX")
    cp -a "$base/." "$WORK/"
    echo "$WORK"
}

make_run() {
    suite=$1
    copy_of "$suite" >/dev/null
    # the tree as it is: HEAD plus the uncommitted changes of tracked files
    rev=$(git -C "$TOP" stash create 2>/dev/null || true)
    mkdir -p "$WORK/src/mod_diagproc"
    git -C "$TOP" archive --format=tar "${rev:-HEAD}" | tar -x -C "$WORK/src/mod_diagproc"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cat >"$WORK/src/make-run.sh" <<SCRIPT
set -e
export DEBIAN_FRONTEND=noninteractive
dpkg-query -W -f='\${Package}\n' | sort >/src/before
# minbase has no make: the one package a user installs before \`make run\`
t0=\$(date +%s)
if ! command -v make >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends make >/dev/null
    echo "make-run: apt-get install make (not in minbase) took \$(( \$(date +%s) - t0 )) s"
fi
dpkg-query -W -f='\${Package}\n' | sort >/src/with-make
cd /src/mod_diagproc
t0=\$(date +%s)
PORT=$port make run
echo "make-run: make run took \$(( \$(date +%s) - t0 )) s"
# the list answers (bash's /dev/tcp: minbase has no HTTP client)
bash -c 'exec 3<>/dev/tcp/127.0.0.1/$port
         printf "GET /api/processes HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\n\\r\\n" >&3
         echo "make-run: GET /api/processes: \$(head -1 <&3 | tr -d "\\r")"'
dpkg-query -W -f='\${Package}\n' | sort >/src/after
make stop
SCRIPT
    rc=0
    echo "make-run: $suite minbase, $(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"
    enter "$WORK" sh /src/make-run.sh >"$WORK/src/make-run.log" 2>&1 || rc=1
    cat "$WORK/src/make-run.log"
    grep -q "^make-run: make run took" "$WORK/src/make-run.log" || rc=1
    grep -q "^run: httpd is serving" "$WORK/src/make-run.log" || rc=1
    grep -q "^make-run: GET /api/processes: HTTP/1.1 200" "$WORK/src/make-run.log" || rc=1
    if [ -f "$WORK/src/after" ]; then
        new=$(comm -13 "$WORK/src/with-make" "$WORK/src/after")
        echo "make-run: $(echo "$new" | grep -c .) packages new after make run" \
             "($(grep -c . "$WORK/src/before") in $suite's minbase)"
        bad=""
        for p in $new; do
            for t in $TEST_ONLY; do
                case "$p" in "$t"*) bad="$bad $p" ;; esac
            done
        done
        if [ -n "$bad" ]; then
            echo "make-run: test-only packages installed:$bad"; rc=1
        else
            echo "make-run: no test-only package among them ($TEST_ONLY)"
        fi
        echo "make-run: new:" $new
    else
        rc=1
    fi
    return $rc
}

cleanup() {
    [ -d "$CACHE" ] || return 0
    findmnt -rn -o TARGET | grep "^$CACHE/" | sort -r | while read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m"
        echo "chroot: unmounted $m"
    done
    rm -rf "$CACHE/work"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    create)   [ $# -eq 1 ] || die "usage: $0 create SUITE"; create "$1" ;;
    enter)    [ $# -ge 2 ] || die "usage: $0 enter DIR CMD..."; enter "$@" ;;
    make-run) [ $# -eq 1 ] || die "usage: $0 make-run SUITE"; make_run "$1" ;;
    overlay)  [ $# -ge 2 ] || die "usage: $0 overlay SYS CMD..."; overlay "$@" ;;
    provision) [ $# -ge 2 ] || die "usage: $0 provision SUITE PKG..."; provision "$@" ;;
    cleanup)  cleanup ;;
    *)        sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
