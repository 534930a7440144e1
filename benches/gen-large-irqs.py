#!/usr/bin/env python3
"""Writes a synthetic host root the size of a large trading server (256 CPUs, 4,000 IRQs by
default) from a real dump, for `make bench` (benches/scan.sh) to measure scan cost and peak RSS
at that size.

    gen-large-irqs.py SRC DEST [--cpus 256] [--irqs 4000] [--hot 2]

SRC is a real dump with /proc/interrupts and /proc/irq (tests/fixtures/real's
cnto-r640-rt-worker1, unpacked). DEST is replaced. It holds:
  - SRC's /proc/cmdline, /proc/cpuinfo (its blocks repeated to CPUS processors) and meminfo;
  - /sys/devices/system/cpu/cpuN/topology for CPUS CPUs: 2 packages, SMT 2 (thread siblings
    N and N + CPUS/2, as Intel numbers them), and `online`;
  - /proc/interrupts with one count column per CPU: IRQS numbered rows whose tails (chip,
    hwirq, handler names) cycle through SRC's rows, with counts on HOT CPUs per row (2 by
    default; an IRQ that irqbalance moved around has counts on many), then
    SRC's named rows (NMI, LOC, ...) widened to CPUS columns;
  - /proc/irq/<n>/{smp_affinity_list,effective_affinity_list,node} for every IRQ, and
    default_smp_affinity.
The counts are deterministic (no randomness), so two runs give the same tree.
"""

import argparse
import os
import re
import shutil


def parse_interrupts(text):
    lines = text.splitlines()
    ncpu = len(lines[0].split())
    numbered, named = [], []
    for line in lines[1:]:
        name, _, rest = line.partition(":")
        toks = rest.split()
        counts = []
        for t in toks:
            if len(counts) < ncpu and t.isdigit():
                counts.append(t)
            else:
                break
        # The tail as written after the counts (chip, hwirq, actions), spaces kept.
        m = re.match(r"(\s*\d+){%d}" % len(counts), rest)
        tail = rest[m.end():] if m else rest
        (numbered if name.strip().isdigit() else named).append((name.strip(), counts, tail.rstrip()))
    return ncpu, numbered, named


def cpulist(cpus):
    out, start, prev = [], None, None
    for c in sorted(cpus):
        if start is None:
            start = prev = c
        elif c == prev + 1:
            prev = c
        else:
            out.append(f"{start}-{prev}" if prev > start else f"{start}")
            start = prev = c
    if start is not None:
        out.append(f"{start}-{prev}" if prev > start else f"{start}")
    return ",".join(out)


def mask(cpus, ncpu):
    v = 0
    for c in cpus:
        v |= 1 << c
    words = [(v >> (32 * i)) & 0xFFFFFFFF for i in range((ncpu + 31) // 32)]
    return ",".join(f"{w:08x}" for w in reversed(words))


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("dest")
    ap.add_argument("--cpus", type=int, default=256)
    ap.add_argument("--irqs", type=int, default=4000)
    ap.add_argument("--hot", type=int, default=2, help="CPUs with a non-zero count in each numbered row")
    a = ap.parse_args()
    ncpu, nirq = a.cpus, a.irqs
    if ncpu < 4 or ncpu % 2:
        ap.error("--cpus must be even and at least 4")
    if not 2 <= a.hot <= ncpu:
        ap.error("--hot must be between 2 and --cpus")
    shutil.rmtree(a.dest, ignore_errors=True)
    proc = os.path.join(a.dest, "proc")
    cpu_dir = os.path.join(a.dest, "sys/devices/system/cpu")

    for f in ("cmdline", "meminfo"):
        src = os.path.join(a.src, "proc", f)
        if os.path.exists(src):
            os.makedirs(proc, exist_ok=True)
            shutil.copy(src, os.path.join(proc, f))
    with open(os.path.join(a.src, "proc/cpuinfo")) as f:
        blocks = [b for b in f.read().split("\n\n") if b.strip()]
    half = ncpu // 2
    out = []
    for n in range(ncpu):
        b = blocks[n % len(blocks)]
        b = re.sub(r"(?m)^processor\t: \d+", f"processor\t: {n}", b)
        b = re.sub(r"(?m)^physical id\t: \d+", f"physical id\t: {(n % half) * 2 // half}", b)
        b = re.sub(r"(?m)^core id\t\t: \d+", f"core id\t\t: {n % half}", b)
        out.append(b)
    write(os.path.join(proc, "cpuinfo"), "\n\n".join(out) + "\n\n")

    write(os.path.join(cpu_dir, "online"), f"0-{ncpu - 1}\n")
    write(os.path.join(cpu_dir, "possible"), f"0-{ncpu - 1}\n")
    for n in range(ncpu):
        core = n % half
        pkg = core * 2 // half
        sibs = [core, core + half]
        pkg_cpus = [c for c in range(ncpu) if (c % half) * 2 // half == pkg]
        t = os.path.join(cpu_dir, f"cpu{n}/topology")
        write(os.path.join(t, "physical_package_id"), f"{pkg}\n")
        write(os.path.join(t, "core_id"), f"{core}\n")
        write(os.path.join(t, "thread_siblings_list"), cpulist(sibs) + "\n")
        write(os.path.join(t, "thread_siblings"), mask(sibs, ncpu) + "\n")
        write(os.path.join(t, "core_siblings_list"), cpulist(pkg_cpus) + "\n")
        write(os.path.join(t, "core_siblings"), mask(pkg_cpus, ncpu) + "\n")

    with open(os.path.join(a.src, "proc/interrupts")) as f:
        _, numbered, named = parse_interrupts(f.read())
    width = 11
    lines = ["     " + "".join(f"CPU{n}".ljust(width) for n in range(ncpu)).rstrip()]
    zero = "0".rjust(width)
    for i in range(nirq):
        _, _, tail = numbered[i % len(numbered)]
        # A handful of CPUs with counts, the rest 0: the shape of a real server's rows.
        hot = {(i * 7) % ncpu: 1000 + i, (i * 13 + 5) % ncpu: 17 * i}
        for k in range(2, a.hot):
            hot.setdefault((i * 7 + k) % ncpu, 3 * k + i + 1)
        cells = "".join(str(hot[c]).rjust(width) if c in hot else zero for c in range(ncpu))
        lines.append(f"{i:>4}:{cells}{tail}")
    for name, counts, tail in named:
        if len(counts) <= 1:
            lines.append(f"{name:>4}:{(counts[0] if counts else '0').rjust(width)}{tail}")
            continue
        cells = "".join(counts[c % len(counts)].rjust(width) for c in range(ncpu))
        lines.append(f"{name:>4}:{cells}{tail}")
    write(os.path.join(proc, "interrupts"), "\n".join(lines) + "\n")

    irq = os.path.join(proc, "irq")
    write(os.path.join(irq, "default_smp_affinity"), mask(range(ncpu), ncpu) + "\n")
    for i in range(nirq):
        d = os.path.join(irq, str(i))
        aff = f"0-{ncpu - 1}" if i % 3 else str((i * 7) % ncpu)
        write(os.path.join(d, "smp_affinity_list"), aff + "\n")
        write(os.path.join(d, "effective_affinity_list"), f"{(i * 7) % ncpu}\n")
        write(os.path.join(d, "node"), f"{i % 2}\n")
    print(a.dest)


if __name__ == "__main__":
    main()
