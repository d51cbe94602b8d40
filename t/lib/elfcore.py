"""The program headers of an ELF core, read with struct, so a test can check
a core's layout as strictly as the ELF spec asks (debuggers are lenient)."""
import os
import struct

PT_LOAD = 1
PT_NOTE = 4
PF_W = 2
NT_PRPSINFO = 3
NT_FILE = 0x46494c45
PN_XNUM = 0xFFFF


def segments(path, flags=False):
    """[(p_type, p_offset, p_vaddr, p_filesz, p_memsz, p_align)], with
    p_flags appended when flags is true."""
    with open(path, "rb") as f:
        eh = f.read(64)
        if eh[:4] != b"\x7fELF" or eh[4] != 2:
            raise ValueError("not a 64-bit ELF file")
        phoff, shoff = struct.unpack_from("<QQ", eh, 32)
        phentsize, phnum = struct.unpack_from("<HH", eh, 54)
        if phnum == PN_XNUM:            # the real count is in section 0's sh_info
            f.seek(shoff)
            phnum = struct.unpack_from("<I", f.read(64), 44)[0]
        f.seek(phoff)
        out = []
        for _ in range(phnum):
            p_type, p_flags, off, vaddr, _paddr, filesz, memsz, align = \
                struct.unpack("<IIQQQQQQ", f.read(phentsize))
            out.append((p_type, off, vaddr, filesz, memsz, align) + ((p_flags,) if flags else ()))
    return out


class Memory:
    """The memory a core holds, read by address."""

    def __init__(self, path):
        self.loads = [s for s in segments(path) if s[0] == PT_LOAD]
        self.f = open(path, "rb")

    def read(self, addr, n):
        """n bytes at addr; None when the core does not hold them."""
        for _t, off, vaddr, filesz, _memsz, _align in self.loads:
            if vaddr <= addr and addr + n <= vaddr + filesz:
                self.f.seek(off + addr - vaddr)
                return self.f.read(n)
        return None


def layout_problems(path, page=4096):
    """What breaks the ELF rules for PT_LOAD in this core, or the rule for
    read-only file-backed mappings (partial_file_segments); [] when none."""
    size = os.path.getsize(path)
    bad = []
    for p_type, off, vaddr, filesz, memsz, align in segments(path):
        if p_type != PT_LOAD:
            continue
        where = f"PT_LOAD at {vaddr:#x}"
        if off % page or vaddr % page:
            bad.append(f"{where}: offset {off:#x} or address not page-aligned")
        if filesz % page or memsz % page or filesz > memsz:
            bad.append(f"{where}: sizes {filesz:#x}/{memsz:#x}")
        if off + filesz > size:
            bad.append(f"{where}: runs past the end of the file")
    return bad + partial_file_segments(path, page)


def notes(path):
    """[(name, type, desc bytes)] of every PT_NOTE."""
    out = []
    with open(path, "rb") as f:
        for p_type, off, _vaddr, filesz, _memsz, _align in segments(path):
            if p_type != PT_NOTE:
                continue
            f.seek(off)
            data, i = f.read(filesz), 0
            while i + 12 <= len(data):
                namesz, descsz, n_type = struct.unpack_from("<III", data, i)
                i += 12
                name = data[i:i + namesz].rstrip(b"\0").decode(errors="replace")
                i += (namesz + 3) & ~3
                out.append((name, n_type, data[i:i + descsz]))
                i += (descsz + 3) & ~3
    return out


def file_mappings(path):
    """NT_FILE: [(start, end, file offset, name)]"""
    for name, n_type, desc in notes(path):
        if name == "CORE" and n_type == NT_FILE:
            count, page = struct.unpack_from("<QQ", desc, 0)
            tri = [struct.unpack_from("<QQQ", desc, 16 + 24 * i) for i in range(count)]
            names = desc[16 + 24 * count:].split(b"\0")
            return [(s, e, o * page, names[i].decode(errors="replace"))
                    for i, (s, e, o) in enumerate(tri)]
    return []


def partial_file_segments(path, page=4096):
    """The rule of jhsdb's core reader (the strictest one): a read-only
    file-backed mapping is in the core whole, as its first page only, or not
    at all. What breaks it; [] when nothing does."""
    loads = [s for s in segments(path, flags=True) if s[0] == PT_LOAD]
    bad = []
    for start, end, _off, name in file_mappings(path):
        inside = [s for s in loads if s[2] < end and s[2] + s[4] > start]
        if not inside or any(s[6] & PF_W for s in inside):
            continue
        if len(inside) == 1:
            _t, _o, vaddr, filesz, memsz, _a, _f = inside[0]
            if vaddr == start and memsz == end - start:
                continue                    # whole (filesz stops at the file's end)
            if vaddr == start and memsz == filesz == page:
                continue                    # the first page
        bad.append(f"{name} {start:#x}-{end:#x}: " + ", ".join(
            f"PT_LOAD {s[2]:#x}+{s[4]:#x} (file {s[3]:#x})" for s in inside))
    return bad


def prpsinfo(path):
    """(pid, fname) of the core's NT_PRPSINFO note: whose core it is."""
    for _name, n_type, desc in notes(path):
        if n_type == NT_PRPSINFO:
            pid = struct.unpack_from("<i", desc, 24)[0]
            fname = desc[40:56].split(b"\0")[0].decode(errors="replace")
            return pid, fname
    return None, None
