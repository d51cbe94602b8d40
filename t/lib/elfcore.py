"""The program headers of an ELF core, read with struct, so a test can check
a core's layout as strictly as the ELF spec asks (debuggers are lenient)."""
import os
import struct

PT_LOAD = 1
PN_XNUM = 0xFFFF


def segments(path):
    """[(p_type, p_offset, p_vaddr, p_filesz, p_memsz, p_align)]"""
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
            p_type, _flags, off, vaddr, _paddr, filesz, memsz, align = \
                struct.unpack("<IIQQQQQQ", f.read(phentsize))
            out.append((p_type, off, vaddr, filesz, memsz, align))
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
    """What breaks the ELF rules for PT_LOAD in this core; [] when none."""
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
    return bad
