"""Makes a copy of a CPython executable whose _PyRuntime is not what the
walk expects, for t/platform/python_frames.sh:

    py_patch.py IN OUT cookie      one byte of _Py_DebugOffsets' cookie flipped
                                   (the "xdebugpy" at the start of
                                   _PyRuntime's initial data, in .data)
    py_patch.py IN OUT size N      the symbol _PyRuntime says it has N bytes
                                   (its st_size in .dynsym)

Only the file changes; the interpreter runs as before (nothing reads the
cookie or the symbol's size at run time)."""
import os
import struct
import sys


def sections(elf):
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)
    out = []
    for i in range(shnum):
        name, typ, _flags, addr, off, size, link, _info, _align, entsize = \
            struct.unpack_from("<IIQQQQIIQQ", elf, shoff + i * shentsize)
        out.append(dict(name=name, type=typ, addr=addr, off=off, size=size, link=link,
                        entsize=entsize))
    strtab = out[shstrndx]
    for s in out:
        end = elf.index(b"\0", strtab["off"] + s["name"])
        s["name"] = elf[strtab["off"] + s["name"]:end].decode()
    return out


def runtime_symbol(elf, secs):
    """(file offset of the .dynsym entry, st_value, st_size) of _PyRuntime"""
    for s in secs:
        if s["name"] != ".dynsym":
            continue
        strs = secs[s["link"]]
        for off in range(s["off"], s["off"] + s["size"], s["entsize"]):
            name, _info, _other, _shndx, value, size = struct.unpack_from("<IBBHQQ", elf, off)
            end = elf.index(b"\0", strs["off"] + name)
            if elf[strs["off"] + name:end] == b"_PyRuntime":
                return off, value, size
    sys.exit("py_patch: no _PyRuntime in .dynsym")


def main():
    src, dst, what = sys.argv[1:4]
    elf = bytearray(open(src, "rb").read())
    if elf[:4] != b"\x7fELF" or elf[4] != 2:
        sys.exit("py_patch: not a 64-bit ELF file")
    secs = sections(elf)
    entry, value, size = runtime_symbol(elf, secs)
    if what == "cookie":
        data = [s for s in secs if s["addr"] <= value < s["addr"] + s["size"] and s["type"] == 1]
        if not data:
            sys.exit("py_patch: _PyRuntime's initial data is not in the file")
        at = data[0]["off"] + value - data[0]["addr"]
        if elf[at:at + 8] != b"xdebugpy":
            sys.exit("py_patch: _PyRuntime does not start with the cookie")
        elf[at + 1] ^= 0x20     # "xDebugpy"
    elif what == "size":
        struct.pack_into("<Q", elf, entry + 16, int(sys.argv[4]))
    else:
        sys.exit("py_patch: cookie or size N")
    with open(dst, "wb") as f:
        f.write(elf)
    os.chmod(dst, 0o755)
    print("py_patch: %s: _PyRuntime (%d bytes) %s" % (dst, size, what))


main()
