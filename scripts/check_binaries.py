#!/usr/bin/env python3
"""Checks the binaries the collection ships: each may need glibc 2.17 at most (the oldest
glibc lltune supports: RHEL 7), and each module binary, copied to every host for every task,
must stay within a size budget (1 MiB).

    scripts/check_binaries.py [--max-glibc 2.17] [--max-size 1048576] [--budgets FILE]
                              [--no-size] PATH...

A PATH is a binary, or a folder: every ELF file in it is checked (so a new module is checked
without being named). The glibc a binary needs is read from its ELF version-needed entries
(.gnu.version_r): the highest GLIBC_x.y it names. Exit 0 when every binary passes, 1 otherwise;
one line per binary either way. Python only: no binutils needed.

--budgets FILE names binaries still over the size budget, one `name bytes  # why` a line: each
may not grow past its own number (a ratchet, to be lowered as they shrink); every binary not
named there has --max-size.
"""

import argparse
import os
import struct
import sys

SHT_GNU_VERNEED = 0x6FFFFFFE


def _version(text):
    return tuple(int(p) for p in text.split("."))


def glibc_versions(path):
    """Every GLIBC_x.y version the ELF file at `path` requires (a set of strings)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF":
        raise ValueError("not an ELF file")
    if data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = []
    for i in range(shnum):
        (_name, sh_type, _flags, _addr, offset, size, link, _info, _align, _entsize) = struct.unpack_from(
            "<IIQQQQIIQQ", data, shoff + i * shentsize
        )
        sections.append((sh_type, offset, size, link))
    found = set()
    for sh_type, offset, _size, link in sections:
        if sh_type != SHT_GNU_VERNEED:
            continue
        strtab = sections[link][1]

        def name_at(off):
            end = data.index(b"\0", strtab + off)
            return data[strtab + off : end].decode()

        need = offset
        while True:
            (_ver, cnt, _file, aux, nxt) = struct.unpack_from("<HHIII", data, need)
            a = need + aux
            for _ in range(cnt):
                (_hash, _flags, _other, name, anext) = struct.unpack_from("<IHHII", data, a)
                v = name_at(name)
                if v.startswith("GLIBC_") and v[6:7].isdigit():
                    found.add(v)
                if anext == 0:
                    break
                a += anext
            if nxt == 0:
                break
            need += nxt
    return found


def is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-glibc", default="2.17", help="highest GLIBC_ version allowed (default 2.17)")
    ap.add_argument("--max-size", type=int, default=1 << 20, help="largest size in bytes (default 1 MiB)")
    ap.add_argument("--budgets", help="file of `name bytes` lines: binaries with their own (larger) budget")
    ap.add_argument("--no-size", action="store_true", help="check the glibc version only (e.g. for the CLI)")
    ap.add_argument("paths", nargs="+")
    args = ap.parse_args(argv)
    limit = _version(args.max_glibc)
    budgets = {}
    if args.budgets:
        with open(args.budgets) as f:
            for line in f:
                line = line.split("#", 1)[0].split()
                if line:
                    budgets[line[0]] = int(line[1])

    binaries = []
    for p in args.paths:
        if os.path.isdir(p):
            binaries += sorted(
                os.path.join(p, n) for n in os.listdir(p) if os.path.isfile(os.path.join(p, n)) and is_elf(os.path.join(p, n))
            )
        elif is_elf(p):
            binaries.append(p)
        else:
            print(f"FAIL {p}: not an ELF file", file=sys.stderr)
            return 1
    if not binaries:
        print(f"FAIL no ELF binaries in {' '.join(args.paths)}", file=sys.stderr)
        return 1

    failed = 0
    for b in binaries:
        problems = []
        try:
            versions = glibc_versions(b)
        except (ValueError, struct.error, IndexError) as e:
            print(f"FAIL {b}: {e}")
            failed += 1
            continue
        newest = max(versions, key=lambda v: _version(v[6:]), default=None)
        too_new = sorted((v for v in versions if _version(v[6:]) > limit), key=lambda v: _version(v[6:]))
        if too_new:
            problems.append(f"needs {', '.join(too_new)} (at most GLIBC_{args.max_glibc} allowed)")
        size = os.path.getsize(b)
        budget = budgets.get(os.path.basename(b), args.max_size)
        if not args.no_size and size > budget:
            problems.append(f"over the size budget of {budget} bytes")
        status = "FAIL" if problems else "ok  "
        detail = f"{size:>9} bytes, newest glibc symbol {newest or 'none'}"
        if not args.no_size and budget != args.max_size:
            detail += f" (own budget {budget}: see {args.budgets})"
        print(f"{status} {b}: {detail}" + ("".join(f"; {p}" for p in problems)))
        failed += bool(problems)
    if failed:
        print(f"{failed} of {len(binaries)} binaries fail the check", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
