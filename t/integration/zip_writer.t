# The zip writer as readers see it: unzip -t and Python's zipfile accept
# small archives, forced ZIP64, more than 65535 entries, an entry of more than
# 4 GiB, and offsets beyond 4 GiB; an archive whose stream failed half-way
# is rejected by both. Archives come from `dpzip --synthetic`.
import os
import shutil
import subprocess
import tempfile
import zipfile

from tap import ok, is_, like, diag, done_testing
from dphttpd import TOOLS

DPZIP = os.path.join(TOOLS, "dpzip")
BIG = 4 * 1024 ** 3 + 64 * 1024 ** 2        # passes 4 GiB by 64 MiB
tmp = tempfile.mkdtemp(prefix="dp-zipw-")


def make(name, *args):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        r = subprocess.run([DPZIP, "--synthetic", *args], stdout=f, stderr=subprocess.PIPE)
    make.stderr = r.stderr.decode(errors="replace")
    return path, r.returncode


def unzip_t(path, *names):
    r = subprocess.run(["unzip", "-t", path, *names], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    return r.returncode, r.stdout.decode(errors="replace")


def read_entry(z, info, check=None):
    """Reads an entry once; ZipExtFile checks the CRC-32 at its end."""
    n = 0
    with z.open(info) as f:
        while True:
            b = f.read(1 << 24)
            if not b:
                break
            if check:
                check(b)
            n += len(b)
    return n


def small_entries_ok(z, count, name):
    good = True
    for i in range(count):
        good &= z.read(f"e/{i}.txt") == f"entry {i} of {count}\n".encode()
    ok(good, f"{name}: contents of the small entries")
    is_(z.read("tail.txt"), b"the end\n", f"{name}: tail entry")


try:
    # a small archive, default level
    path, rc = make("small.zip", "--entries", "5")
    is_(rc, 0, "small: dpzip finished")
    code, out = unzip_t(path)
    is_(code, 0, "small: unzip -t accepts it")
    with zipfile.ZipFile(path) as z:
        is_(z.testzip(), None, "small: zipfile testzip")
        small_entries_ok(z, 5, "small")
        info = z.getinfo("tail.txt")
        is_(info.external_attr >> 16, 0o100600, "small: Unix mode in external attributes")
        is_(info.create_system, 3, "small: made by Unix")
        is_(info.flag_bits & 0x0808, 0x0808, "small: data descriptor and UTF-8 flags")

    # ZIP64 records forced on a small archive
    path, rc = make("z64.zip", "--entries", "3", "--force-zip64", "--level", "9")
    code, out = unzip_t(path)
    is_(code, 0, "forced ZIP64: unzip -t accepts it")
    with zipfile.ZipFile(path) as z:
        is_(z.testzip(), None, "forced ZIP64: zipfile testzip")
        small_entries_ok(z, 3, "forced ZIP64")

    # more entries than the 16-bit count holds
    path, rc = make("many.zip", "--entries", "70000")
    code, out = unzip_t(path)
    is_(code, 0, "70000 entries: unzip -t accepts it")
    with zipfile.ZipFile(path) as z:
        is_(len(z.infolist()), 70001, "70000 entries: zipfile lists them all")
        is_(z.testzip(), None, "70000 entries: zipfile testzip")
        small_entries_ok(z, 70000, "70000 entries")

    # an entry of more than 4 GiB (deflate keeps the file at ~20 MB)
    path, rc = make("big.zip", "--level", "1", "--zero-bytes", str(BIG), "--entries", "2")
    is_(rc, 0, "4 GiB entry: dpzip finished")
    code, out = unzip_t(path)
    is_(code, 0, "4 GiB entry: unzip -t accepts it (inflates and checks every CRC)")
    if code:
        diag(out[-2000:])
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("zeros")
        is_(info.file_size, BIG, "4 GiB entry: ZIP64 uncompressed size")
        nonzero = []
        n = read_entry(z, info, lambda b: nonzero.append(1) if b.count(0) != len(b) else None)
        is_(n, BIG, "4 GiB entry: zipfile reads every byte, CRC checked")
        ok(not nonzero, "4 GiB entry: content is the zeros written")
        small_entries_ok(z, 2, "4 GiB entry")
    os.unlink(path)

    # offsets beyond 4 GiB: level 0 keeps the entry's size, a sparse file
    # keeps the disk use small; readers need the ZIP64 offsets to find the
    # later entries and the directory
    path, rc = make("far.zip", "--level", "0", "--sparse", "--zero-bytes", str(BIG),
                    "--entries", "2")
    is_(rc, 0, "offsets past 4 GiB: dpzip finished")
    ok(os.path.getsize(path) > BIG, "offsets past 4 GiB: the archive is larger than 4 GiB")
    code, out = unzip_t(path, "e/*", "tail.txt")
    is_(code, 0, "offsets past 4 GiB: unzip -t accepts the entries beyond 4 GiB")
    like(out, r"tail\.txt +OK", "offsets past 4 GiB: unzip tested the tail entry")
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("zeros")
        is_(info.compress_size > BIG, True, "offsets past 4 GiB: ZIP64 compressed size")
        ok(z.getinfo("tail.txt").header_offset > 2 ** 32, "offsets past 4 GiB: ZIP64 offset")
        small_entries_ok(z, 2, "offsets past 4 GiB")
    os.unlink(path)

    # the reader goes away half-way: no central directory, rejected
    path, rc = make("cut.zip", "--entries", "20000", "--fail-after", "300000")
    is_(rc, 1, "cut stream: dpzip reports failure")
    like(make.stderr, r"reader went away", "cut stream: the writer says why")
    is_(os.path.getsize(path), 300000, "cut stream: output stops where the sink failed")
    code, out = unzip_t(path)
    ok(code != 0, "cut stream: unzip -t rejects it")
    try:
        zipfile.ZipFile(path).testzip()
        ok(False, "cut stream: zipfile rejects it")
    except zipfile.BadZipFile:
        ok(True, "cut stream: zipfile rejects it")
finally:
    shutil.rmtree(tmp, ignore_errors=True)

done_testing()
