# A compromised worker: code running inside an httpd worker (here a small
# module built with apxs and loaded next to mod_diagproc) holds the
# generation's secret and passes every peer check. It reads the secret out
# of mod_diagproc's memory (the symbol table of the file the exported
# diagproc_module lives in), takes section numbers from mod_diagproc's own
# per-directory configuration of any URL (or forges them), and sends raw
# helper requests (common/proto.h) straight to the helper's socket. The
# helper must refuse everything beyond what the named sections grant, log
# each refusal with the worker's pid and the reason, and serve what they do
# grant (so the test can fail). The same module holds real workers'
# connections to the helper idle: each is dropped after 2 s, and four of
# them do not delay a dump.
import os
import re
import shutil
import subprocess
import tempfile
import time

from tap import ok, is_, like, diag, done_testing
import dphttpd
import procstate
from dphttpd import Httpd, spawn, worker_user, BUILD, IS_ROOT, ROOT

TARGET = os.path.join(BUILD, "targets", "proc_target")
TOKEN = "SECRET_TOKEN"
VALUE = "tok-" + os.urandom(6).hex()

ATTACK = r'''
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "httpd.h"
#include "http_config.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_script.h"
#include "apr_strings.h"
#include "common/proto.h"
#include "httpd/mod_diagproc_config.h"

/* What an attacker's code in the worker does: find a local symbol of the
 * module by reading the symbol table of its file. */
static void *local_symbol(const void *inside, const char *name)
{
    Dl_info info;
    Elf64_Ehdr eh;
    Elf64_Shdr *sh = NULL;
    void *found = NULL;
    int fd, i;

    if (!dladdr(inside, &info) || (fd = open(info.dli_fname, O_RDONLY)) < 0)
        return NULL;
    if (pread(fd, &eh, sizeof(eh), 0) != sizeof(eh) || eh.e_shentsize != sizeof(Elf64_Shdr))
        goto out;
    sh = calloc(eh.e_shnum, sizeof(*sh));
    if (pread(fd, sh, eh.e_shnum * sizeof(*sh), eh.e_shoff) != (ssize_t)(eh.e_shnum * sizeof(*sh)))
        goto out;
    for (i = 0; i < eh.e_shnum && !found; i++) {
        Elf64_Shdr *st = &sh[i], *str;
        Elf64_Sym sym;
        char *names;
        size_t k;
        if (st->sh_type != SHT_SYMTAB || st->sh_link >= eh.e_shnum)
            continue;
        str = &sh[st->sh_link];
        names = malloc(str->sh_size + 1);
        if (pread(fd, names, str->sh_size, str->sh_offset) != (ssize_t)str->sh_size) {
            free(names);
            continue;
        }
        names[str->sh_size] = '\0';
        for (k = 0; k < st->sh_size / sizeof(sym) && !found; k++) {
            if (pread(fd, &sym, sizeof(sym), st->sh_offset + k * sizeof(sym)) != sizeof(sym))
                break;
            if (sym.st_name < str->sh_size && !strcmp(names + sym.st_name, name))
                found = (char *)info.dli_fbase + sym.st_value;
        }
        free(names);
    }
out:
    free(sh);
    close(fd);
    return found;
}

static int read_full(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n) {
        ssize_t k = read(fd, p, n);
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* One frame read with recvmsg, so that a file descriptor passed along
 * with it (the dump ring's memfd) is taken too (*passed, else -1). */
static int frame_fd(int fd, char *payload, uint32_t *len, int *passed)
{
    unsigned char h[5];
    char ctl[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { h, 5 };
    struct msghdr m = { 0 };
    struct cmsghdr *c;

    *passed = -1;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl;
    m.msg_controllen = sizeof(ctl);
    if (recvmsg(fd, &m, MSG_WAITALL) != 5)
        return -1;
    for (c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            memcpy(passed, CMSG_DATA(c), sizeof(int));
    *len = (uint32_t)h[1] | (uint32_t)h[2] << 8 | (uint32_t)h[3] << 16 | (uint32_t)h[4] << 24;
    if (*len > DP_FRAME_MAX || read_full(fd, payload, *len) != 0)
        return -1;
    return h[0];
}

/* Reads one frame into pool memory: its type, or -1 when the helper closed
 * without one; a descriptor passed along is closed. */
static int frame(int fd, apr_pool_t *p, char **payload, uint32_t *len)
{
    int passed, type;

    *payload = apr_palloc(p, DP_FRAME_MAX + 1);
    type = frame_fd(fd, *payload, len, &passed);
    if (passed >= 0)
        close(passed);
    if (type >= 0)
        (*payload)[*len] = '\0';
    return type;
}

/* The watcher: scans the whole ring, over and over, for the needle while
 * the helper fills its slots. */
typedef struct peek {
    const char *ring, *needle;
    size_t size, nlen;
    volatile int stop;
    unsigned long seen, passes;
} peek;

static void *watch_ring(void *arg)
{
    peek *pk = arg;
    while (!pk->stop) {
        if (memmem(pk->ring, pk->size, pk->needle, pk->nlen))
            pk->seen++;
        pk->passes++;
    }
    return NULL;
}

/* A dump relayed by the attacker itself: its ring mapped (read-only, as
 * the worker gets it) and watched by a thread of its own for a value that
 * the dump must not hold; every slot is acknowledged as mod_diagproc does. */
static void peek_dump(request_rec *r, int fd, const char *needle)
{
    char *buf = apr_palloc(r->pool, DP_FRAME_MAX);
    peek pk = { NULL, needle, 0, strlen(needle), 0, 0, 0 };
    pthread_t th;
    size_t slot_size = 0;
    unsigned long slots = 0, in_sent = 0;
    int type, passed, watching = 0;
    uint32_t len;

    while ((type = frame_fd(fd, buf, &len, &passed)) > 0 && type != DP_FR_END) {
        if (type == DP_FR_RING && passed >= 0 && !watching && len >= 8) {
            uint32_t n, size;
            memcpy(&n, buf, 4);
            memcpy(&size, buf + 4, 4);
            slot_size = size;
            pk.size = (size_t)n * size;
            pk.ring = mmap(NULL, pk.size, PROT_READ, MAP_SHARED, passed, 0);
            if (pk.ring != MAP_FAILED)
                watching = pthread_create(&th, NULL, watch_ring, &pk) == 0;
        }
        else if (type == DP_FR_SLOT && watching && len >= 8) {
            uint32_t slot, n;
            memcpy(&slot, buf, 4);
            memcpy(&n, buf + 4, 4);
            slots++;
            if ((size_t)slot * slot_size + n <= pk.size
                && memmem(pk.ring + (size_t)slot * slot_size, n, needle, pk.nlen))
                in_sent++;
            if (send(fd, "k", 1, MSG_NOSIGNAL) != 1)
                break;
        }
        if (passed >= 0)
            close(passed);
    }
    if (watching) {
        pk.stop = 1;
        pthread_join(th, NULL);
    }
    ap_rprintf(r, "peeked slots %lu passes %lu seen %lu sent %lu end %d\n", slots, pk.passes,
               pk.seen, in_sent, type == DP_FR_END);
}

static const char *arg(apr_table_t *t, const char *k, const char *dflt)
{
    const char *v = apr_table_get(t, k);
    return v ? v : dflt;
}

static int attack(request_rec *r)
{
    module *dp = ap_find_linked_module("mod_diagproc.c");
    const unsigned char *secret;
    apr_table_t *q;
    dp_request rq;
    struct sockaddr_un sa;
    struct timeval tv = { 20, 0 };
    int fd, type, allow = -1, scope = -1;
    const char *idle;
    char *pl;
    uint32_t len;

    if (strcmp(r->handler, "dpattack"))
        return DECLINED;
    ap_args_to_table(r, &q);
    ap_set_content_type(r, "text/plain");
    secret = dp ? local_symbol(dp, "generation_secret") : NULL;
    if (!secret) {
        ap_rputs("no secret found\n", r);
        return OK;
    }
    if (apr_table_get(q, "as")) {
        /* the sections mod_diagproc itself would name for that URL */
        request_rec *rr = ap_sub_req_lookup_uri(arg(q, "as", "/"), r, NULL);
        const dp_dir_conf *dc = ap_get_module_config(rr->per_dir_config, dp);
        allow = dc->allow_section;
        scope = dc->scope_section;
    }
    allow = atoi(arg(q, "allow", apr_itoa(r->pool, allow)));
    scope = atoi(arg(q, "scope", apr_itoa(r->pool, scope)));
    memset(&rq, 0, sizeof(rq));
    rq.magic = DP_PROTO_MAGIC;
    rq.version = DP_PROTO_VERSION;
    rq.op = (uint32_t)atoi(arg(q, "op", "1"));
    rq.what = (uint32_t)atoi(arg(q, "what", "0"));
    rq.pid = atoi(arg(q, "pid", "0"));
    rq.dump_type = strtoull(arg(q, "dumpType", "0"), NULL, 0);
    rq.allow_section = allow;
    rq.scope_section = scope;
    if (!apr_table_get(q, "guess"))
        memcpy(rq.secret, secret, DP_SECRET_LEN);
    ap_rprintf(r, "worker %d sections %d %d\n", (int)getpid(), allow, scope);
    idle = apr_table_get(q, "idle");

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    apr_cpystrn(sa.sun_path, ap_runtime_dir_relative(r->pool, apr_psprintf(r->pool,
                "diagproc.%d.sock", (int)getppid())), sizeof(sa.sun_path));
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0
        || (!idle && write(fd, &rq, sizeof(rq)) != sizeof(rq))) {
        ap_rputs("no connection\n", r);
        close(fd);
        return OK;
    }
    if (idle) {
        /* connected, and then only part of the request (idle=N bytes), or none */
        size_t part = (size_t)atoi(idle);
        apr_time_t t0;
        ssize_t n;
        char c;
        if (part && write(fd, &rq, part < sizeof(rq) ? part : sizeof(rq) - 1) < 0)
            part = 0;
        t0 = apr_time_now();
        n = read(fd, &c, 1);
        ap_rprintf(r, "closed after %d ms (read %d)\n",
                   (int)apr_time_as_msec(apr_time_now() - t0), (int)n);
        close(fd);
        return OK;
    }
    type = frame(fd, r->pool, &pl, &len);
    if (type == DP_FR_ERROR && len >= 4) {
        uint32_t status;
        memcpy(&status, pl, 4);
        ap_rprintf(r, "error %u %s\n", status, pl + 4);
    }
    else if (type == DP_FR_OK && rq.op == DP_OP_DUMP && apr_table_get(q, "peek")) {
        ap_rputs("ok\n", r);
        peek_dump(r, fd, apr_table_get(q, "peek"));
    }
    else if (type == DP_FR_OK) {
        ap_rputs("ok\n", r);
        /* the DATA of a read or a kill, up to END; a dump's first frame is enough */
        while (rq.op != DP_OP_DUMP && (type = frame(fd, r->pool, &pl, &len)) == DP_FR_DATA)
            ap_rwrite(pl, (int)len, r);
    }
    else
        ap_rputs("no answer\n", r);
    close(fd);
    return OK;
}

static void hooks(apr_pool_t *p)
{
    ap_hook_handler(attack, NULL, NULL, APR_HOOK_FIRST);
}

AP_DECLARE_MODULE(dpattack) = { STANDARD20_MODULE_STUFF, NULL, NULL, NULL, NULL, NULL, hooks,
                                AP_MODULE_FLAG_NONE };
'''

build = tempfile.mkdtemp(prefix="dp-attack-")
os.chmod(build, 0o755)
with open(os.path.join(build, "mod_dpattack.c"), "w") as f:
    f.write(ATTACK)
r = subprocess.run(["apxs", "-c", "-o", "mod_dpattack.la", "-Wc,-Wall", "-Wc,-Werror",
                    f"-Wc,-I{ROOT}", "-Wc,-std=gnu11", "mod_dpattack.c"],
                   cwd=build, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
if r.returncode:
    diag(r.stdout.decode(errors="replace")[-3000:])
is_(r.returncode, 0, "the attacking module builds with apxs (-Wall -Werror)")
attack_so = os.path.join(build, ".libs", "mod_dpattack.so")

W = worker_user()
# root: the read-only section's scope names root; as an ordinary user, only
# that user exists for the helper
ro_users = f"root {W}" if IS_ROOT else W
h = Httpd(locations={"/ro": f"DiagProcUsers {ro_users}",
                     "/kill": "DiagProcAllow kill",
                     "/dump": f"DiagProcAllow dump\nDiagProcUsers {W}",
                     "/env": "DiagProcAllow environment",
                     "/full": f"DiagProcAllow dump fulldump\nDiagProcUsers {W}",
                     "/fullenv": f"DiagProcAllow dump fulldump environment\nDiagProcUsers {W}"},
          server_conf=f"LoadModule dpattack_module {attack_so}\n"
                      "<Location /attack>\n    SetHandler dpattack\n"
                      "    Require ip 127.0.0.0/8\n</Location>\n")
h.start()
# every forged request below is refused, and the helper logs each refusal
h.expect_log("DP10002", "DP10003", "DP10004", "DP10005")     # the helper's refusals, their counts


def log():
    with open(os.path.join(h.dir, "error.log"), errors="replace") as f:
        return f.read()


def attack(**q):
    """The attacking module's answer: (worker pid, (allow, scope), outcome, data)."""
    r = h.get("/attack?" + "&".join(f"{k}={v}" for k, v in q.items()))
    first, _, rest = r.body.partition(b"\n")
    m = re.match(rb"worker (\d+) sections (-?\d+) (-?\d+)", first)
    if not m:
        return None, None, first.decode(errors="replace"), b""
    outcome, _, data = rest.partition(b"\n")
    return int(m.group(1)), (int(m.group(2)), int(m.group(3))), outcome.decode(errors="replace"), data


def alive(p):
    return p.poll() is None


t = spawn([TARGET], ready="ready", user=W, env={TOKEN: VALUE, "PATH": "/usr/bin:/bin"})
_, ro, _, _ = attack(op=1, what=1, pid=t.pid, **{"as": "/ro"})
_, kill, _, _ = attack(op=1, what=1, pid=t.pid, **{"as": "/kill"})
_, dump, _, _ = attack(op=1, what=1, pid=t.pid, **{"as": "/dump"})
_, env, _, _ = attack(op=1, what=1, pid=t.pid, **{"as": "/env"})
ok(ro and kill and dump and env and len({ro, kill, dump, env}) == 4,
   f"the module found each Location's section numbers in mod_diagproc's configuration "
   f"(ro {ro}, kill {kill}, dump {dump}, env {env})")
S_RO, S_KILL, S_DUMP, S_ENV = ro[1], kill[0], dump[0], env[0]

# ---- what the configuration grants works (the attack really reaches the helper)
wpid, _, out, data = attack(op=1, what=3, pid=t.pid, **{"as": "/env"})
is_(out, "ok", "the environment through the section that allows it: served")
ok(f"{TOKEN}={VALUE}".encode() in data, "…and it holds the target's variable")
ok(wpid in h.workers(), f"…asked by a real worker (pid {wpid}), not a test client")

# ---- the dump ring: the worker maps it (read-only) for the whole dump. A
# worker that watches it while the helper fills it must never see what the
# dump leaves out: without `environment`, the target's variables are
# scrubbed before they reach the ring, not in it. The target holds 64 MiB of
# copies of its variable's value, so every slot of its heap would show one
# for a moment if the scrubber worked in the ring.
HOARD = ("import os, sys, time\n"
         f"v = os.environ['{TOKEN}'].encode()\n"
         "hoard = v * ((64 << 20) // len(v))\n"
         "print('ready', flush=True)\n"
         "time.sleep(3600)\n")
hoarder = spawn(["/usr/bin/python3", "-c", HOARD], ready="ready", user=W,
                env={TOKEN: VALUE, "PATH": "/usr/bin:/bin"})
for loc, shown in (("/full", False), ("/fullenv", True)):
    _, _, out, data = attack(op=3, what=0, pid=hoarder.pid, dumpType=2, peek=VALUE,
                             **{"as": loc})
    m = re.match(rb"peeked slots (\d+) passes (\d+) seen (\d+) sent (\d+) end 1",
                 data.strip())
    ok(out == "ok" and m and int(m.group(1)) > 100 and int(m.group(2)) > 100,
       f"a full dump through {loc} relayed by the attacker, its ring watched by a thread of "
       f"its own ({out}: {data.strip().decode(errors='replace')})")
    if not m:
        continue
    if shown:
        ok(int(m.group(3)) > 0 and int(m.group(4)) > 0,
           "…with environment allowed, the watcher sees the value in the ring (the watch "
           "can fail)")
    else:
        is_(int(m.group(3)), 0, "…without environment, the watcher never sees the value in "
            "the ring, not even while a slot is being filled")
        is_(int(m.group(4)), 0, "…and no slot the helper sends holds it")
dphttpd.kill_quietly(hoarder)


def refused(title, word, **q):
    """A request beyond the configuration: 403 naming word, logged with the worker's pid."""
    before = log()
    wpid, _, out, _ = attack(**q)
    like(out, rf"^error 403 .*{word}", f"{title}: 403 ({out[:150]})")
    time.sleep(0.2)
    new = log()[len(before):]
    secs = f"{q['allow']}/{q['scope']}"
    like(new, rf"refused a request from pid {wpid} uid \d+ gid \d+: \w+ of pid {q['pid']} "
         rf"through sections {secs}: .*{word}",
         "…and the helper logged the worker's pid, the action, the sections and the reason")


# an action the named section does not allow
for name, op, extra, word in (("kill", 2, {}, "'kill'"),
                              ("dump", 3, {}, "'dump'"),
                              ("environment", 1, {"what": 3}, "'environment'"),
                              ("stacks", 4, {}, "'stacks'")):
    refused(f"{name} through the read-only section", word,
            op=op, pid=t.pid, allow=ro[0], scope=S_RO, **extra)
refused("a full dump through a section that allows only minimal dumps", "'fulldump'",
        op=3, pid=t.pid, dumpType=2, allow=S_DUMP, scope=S_DUMP)
refused("kill through the environment section", "'kill'",
        op=2, pid=t.pid, allow=S_ENV, scope=-1)
# the attack's own URL names no section
refused("kill with the sections of the attacker's own URL (none)", "'kill'",
        op=2, pid=t.pid, allow=-1, scope=-1)
# section numbers that do not exist
refused("kill through a section number out of range", "'kill'",
        op=2, pid=t.pid, allow=99, scope=99)
refused("kill through an existing action section and a scope number out of range", "'kill'",
        op=2, pid=t.pid, allow=S_KILL, scope=99)
# a forged scope: the kill section's action over the read-only section's users,
# which no URL has together
refused("kill through the kill section with the read-only section's scope forged in", "'kill'",
        op=2, pid=t.pid, allow=S_KILL, scope=S_RO)
ok(alive(t), "…and the target survived every refused kill")

before = log()
wpid, _, out, _ = attack(op=2, pid=t.pid, allow=-7, scope=-1)
like(out, r"^error 400 ", "a negative section number: malformed, 400")
time.sleep(0.2)
like(log()[len(before):], rf"refused a request from pid {wpid} .*malformed: section numbers",
     "…and logged")

before = log()
wpid, _, out, _ = attack(op=2, pid=t.pid, allow=S_KILL, scope=-1, guess=1)
is_(out, "no answer", "the kill section with a guessed secret: no answer at all")
time.sleep(0.2)
like(log()[len(before):], rf"refused a connection from pid {wpid} .*lacks this httpd generation's secret",
     "…and the helper logged it")
ok(alive(t), "…and the target still runs")

if IS_ROOT:
    root_t = spawn([TARGET], ready="ready")
    # a target outside the named section's scope
    refused("kill of a root process through the kill section (its scope is the workers' user)",
            "outside this location's scope", op=2, pid=root_t.pid, allow=S_KILL, scope=-1)
    refused("kill of a root process through the kill section with the read-only section's "
            "scope (which names root) forged in", "'kill'",
            op=2, pid=root_t.pid, allow=S_KILL, scope=S_RO)
    refused("dump of a root process through the dump section", "outside this location's scope",
            op=3, pid=root_t.pid, allow=S_DUMP, scope=S_DUMP)
    refused("environment of a root process through the environment section",
            "outside this location's scope", op=1, what=3, pid=root_t.pid, allow=S_ENV, scope=-1)
    ok(alive(root_t), "…and the root process still runs")
    # what the read-only section does grant over root: its private /proc reads
    _, _, out, data = attack(op=1, what=2, pid=root_t.pid, allow=-1, scope=S_RO)
    is_(out, "ok", "the executable of a root process through the read-only section that "
        "names root: served, as configured")
    like(data.decode(errors="replace"), r"proc_target$", "…and it names the target's file")
    dphttpd.kill_quietly(root_t)

# ---- a real worker's idle connection (it passes the peer checks) is dropped
# after 2 s, whether it sent nothing or part of a request
for part, what in ((0, "nothing"), (40, "40 bytes of its request")):
    before = log()
    wpid, _, out, _ = attack(op=2, pid=t.pid, allow=S_KILL, scope=-1, idle=part)
    m = re.match(r"closed after (\d+) ms \(read 0\)", out)
    ok(m and 1500 <= int(m.group(1)) < 10000,
       f"a worker's connection that sent {what}: closed by the helper after about 2 s ({out})")
    time.sleep(0.2)
    like(log()[len(before):], rf"refused a connection from pid {wpid} .*no request within 2 seconds",
         "…and logged")
ok(alive(t), "…and nothing was done to the target")

# four of them do not delay a worker's dump
import threading  # noqa: E402


def dump_time():
    t0 = time.time()
    r = h.get(f"/dump/{t.pid}/dump?dumpType=0")
    return time.time() - t0, r.status


base, _ = dump_time()
holding = threading.Event()
holding.set()


def hold_idle():
    """One worker connection to the helper that sends nothing, made again
    each time the helper drops it (after 2 s), until told to stop."""
    while holding.is_set():
        attack(op=2, pid=t.pid, allow=S_KILL, scope=-1, idle=0)


idlers = [threading.Thread(target=hold_idle) for _ in range(4)]
for th in idlers:
    th.start()


def helper_sockets():
    """The helper's listening socket and the connections it accepted."""
    with open("/proc/net/unix") as f:
        return len([l for l in f if l.rstrip().endswith(f"diagproc.{h.parent_pid}.sock")])


ok(procstate.settle(lambda: helper_sockets() >= 5, 20),
   "four workers hold connections to the helper that send nothing")
took, st = dump_time()
held = helper_sockets() - 1
is_(st, 200, "a dump while four workers hold idle connections to the helper")
ok(took - base < 1.0, f"…is not delayed by them ({took:.2f} s vs {base:.2f} s; {held} held at its end)")
holding.clear()
for th in idlers:
    th.join()

# what the configuration grants, from any URL: the union of its sections
wpid, _, out, _ = attack(op=2, pid=t.pid, allow=S_KILL, scope=-1)
is_(out, "ok", "kill through the kill section (from the attacker's URL): served, as the "
    "configuration grants it somewhere")
deadline = time.time() + 10
while alive(t) and time.time() < deadline:
    time.sleep(0.05)
ok(not alive(t), "…and the target is gone")

h.stop()
shutil.rmtree(build, ignore_errors=True)
done_testing()
