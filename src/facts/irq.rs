//! Interrupts: `/proc/interrupts` (chips, hardware IRQ numbers, handler names, counts) and
//! `/proc/irq/<n>/` (affinity, effective affinity, NUMA node, one subdirectory per handler),
//! summarised per NIC and against the isolated CPUs.
//!
//! The surprising parts:
//! - `/proc/interrupts` has one count column per *online* CPU, named by the header
//!   (`CPU0 CPU2` when CPU1 is offline); `ERR:`/`MIS:` have a single total; arm64's `IPI0:`
//!   runs into its first count (`IPI0:2768808080`); the tail of a numbered row changed form
//!   across kernels (kernel/irq/proc.c, `show_interrupts`): `IR-IO-APIC-edge  i8042` (3.x),
//!   `IR-PCI-MSI 524288-edge  eth0-TxRx-0` (4.x-6.1), `IR-PCI-MSIX-0000:3b:00.0 0-edge
//!   i40e-...` (6.2+, one MSI domain per device), `GICv3  27 Level  arch_timer` (arm64), and
//!   several handlers share a line as `PCIe PME, pciehp` (names may hold spaces).
//! - `/proc/irq/` holds a numbered directory for every allocated IRQ, also those without a
//!   handler that `/proc/interrupts` leaves out, and `default_smp_affinity` among them.
//! - "Managed" IRQs (kernel-spread queues whose affinity cannot be changed) have no flag in
//!   procfs or `/sys/kernel/irq`; writing their `smp_affinity` fails with EIO, which a scan
//!   must not try. Only the debugfs state file `/sys/kernel/debug/irq/irqs/<n>`
//!   (CONFIG_GENERIC_IRQ_DEBUGFS) names `IRQD_AFFINITY_MANAGED`; without it `managed` is null.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Scan, cpu::Cpu, kernel::Kernel, nic::Nic};
use crate::cpulist::{CpuList, CpuListError};

/// The IRQ summary: `irqs` in the facts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Irqs {
    /// Numbered IRQs the host describes: rows of `/proc/interrupts` and directories of
    /// `/proc/irq`, merged (every row has a directory, so on a whole tree this equals `dirs`).
    pub total: usize,
    /// Numbered directories under `/proc/irq` (`default_smp_affinity` is not one).
    pub dirs: usize,
    /// IRQs with a handler: a numbered row in `/proc/interrupts` or an action subdirectory.
    pub active: usize,
    /// `/proc/irq/default_smp_affinity`: the affinity new IRQs start with.
    pub default_affinity: Option<CpuList>,
    /// Active IRQs delivered to an isolated or nohz_full CPU (runtime or command line): by
    /// effective affinity when the kernel reports it, else by affinity.
    pub on_isolated: Vec<IrqOnIsolated>,
    /// Per network device (netdev name, or PCI address when it has none): its IRQs. A NIC
    /// the scan did not find (no PCI folder in a capture) is here by the PCI address its
    /// driver names its IRQs with (mlx4, mlx5, i40e, ice).
    pub nics: BTreeMap<String, NicIrqs>,
    /// CPU number -> how many active IRQs may be delivered there (effective affinity, or
    /// affinity where the kernel has no effective affinity).
    pub by_cpu: BTreeMap<u32, usize>,
    /// Every IRQ, only with `detail`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<IrqList>,
}

/// An IRQ that may interrupt an isolated CPU.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IrqOnIsolated {
    pub irq: u32,
    pub actions: Vec<String>,
    pub affinity: Option<CpuList>,
    pub effective_affinity: Option<CpuList>,
    pub managed: Option<bool>,
}

/// The IRQs of one network device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicIrqs {
    pub count: usize,
    /// Union of the CPUs its IRQs are delivered to (effective affinity, else affinity).
    pub cpus: CpuList,
    /// The device's NUMA node (`nics[].numa_node`).
    pub numa_node: Option<i64>,
}

/// One IRQ, as `/proc/interrupts` and `/proc/irq/<n>/` describe it (`irqs.list[]`). Written
/// field by field as declared (`IrqOut`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Irq {
    pub irq: u32,
    /// Interrupt chip (`IR-PCI-MSI`, `IO-APIC`, `GICv3`, `IR-PCI-MSIX-0000:3b:00.0`).
    pub chip: Option<String>,
    /// Hardware IRQ number inside the chip's domain.
    pub hwirq: Option<u64>,
    /// As `/proc/interrupts` writes it: the flow handler on x86 (`edge`, `fasteoi`),
    /// `Level`/`Edge` where the kernel shows the trigger type (arm64).
    pub trigger: Option<String>,
    /// Handler names (`eth0-TxRx-0`), in registration order.
    pub actions: Vec<String>,
    /// PCI function raising it, from the chip name, a handler name, or a PCI-MSI hwirq.
    pub pci_address: Option<String>,
    /// Sum of the per-CPU counts; null when `/proc/interrupts` has no row for it. In a list
    /// whose counts are read as it is written, the first read's (the second's is written).
    pub count: Option<u64>,
    /// CPU number -> count, non-zero entries only. Empty in a scan's list whose counts are
    /// read as it is written (`IrqList::streamed`): see `IrqList`.
    pub per_cpu: PerCpu,
    /// `smp_affinity_list` (or `smp_affinity`).
    pub affinity: Option<CpuList>,
    /// `effective_affinity_list` (or `effective_affinity`), since Linux 4.15.
    pub effective_affinity: Option<CpuList>,
    /// `affinity_hint`: the driver's suggestion (empty when it gives none).
    pub affinity_hint: Option<CpuList>,
    /// `node`: NUMA node of the IRQ's device; null for -1.
    pub node: Option<i32>,
    /// Kernel-managed affinity (from debugfs); null when unknowable.
    pub managed: Option<bool>,
}

/// `/proc/interrupts`, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interrupts {
    /// CPU number of each count column (online CPUs only).
    pub cpus: Vec<u32>,
    pub rows: Vec<InterruptRow>,
    /// Lines that could not be read, with the reason (line numbers from 1).
    pub bad_lines: Vec<String>,
}

/// One row of `/proc/interrupts`: a numbered IRQ or a named per-CPU source (`NMI`, `LOC`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterruptRow {
    /// Text before the colon: `24`, `NMI`, `IPI0`, `ERR`.
    pub name: String,
    /// The IRQ number for numbered rows.
    pub irq: Option<u32>,
    /// One count per column of `Interrupts::cpus`; a single total for `ERR`/`MIS`.
    pub counts: Vec<u64>,
    pub chip: Option<String>,
    pub hwirq: Option<u64>,
    pub trigger: Option<String>,
    pub actions: Vec<String>,
    /// For named rows: `Local timer interrupts`.
    pub description: Option<String>,
}

impl InterruptRow {
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// The first `max` whitespace-separated tokens with their byte offsets, so the tail of a line
/// can be kept verbatim (handler names hold spaces). The kernel writes ASCII spaces; splitting
/// on ASCII whitespace bytes only keeps every offset on a character boundary.
fn tokens(s: &str, max: usize) -> Vec<(usize, &str)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() && out.len() < max {
        if b[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        out.push((start, &s[start..i]));
    }
    out
}

/// Parses the header of `/proc/interrupts`: the CPU number of each count column.
pub fn parse_interrupts_header(header: &str) -> Result<Vec<u32>, String> {
    let mut cpus = Vec::new();
    for word in header.split_whitespace() {
        let n = word.strip_prefix("CPU").and_then(|n| n.parse::<u32>().ok());
        cpus.push(n.ok_or_else(|| format!("header word {word:?} is not CPUn"))?);
    }
    Ok(cpus)
}

/// One line of `/proc/interrupts` after the header, without its counts: those go to the
/// caller's `count(column, value)` as they are read, so that a 256-column row is never held
/// as a vector unless the caller keeps one.
#[derive(Debug, Default, PartialEq, Eq)]
struct LineHead {
    name: String,
    irq: Option<u32>,
    counts: usize,
    chip: Option<String>,
    hwirq: Option<u64>,
    trigger: Option<String>,
    actions: Vec<String>,
    description: Option<String>,
}

/// The whitespace `str::trim` strips among ASCII bytes (Unicode White_Space: tab, line feed,
/// vertical tab, form feed, carriage return, space).
fn is_trim_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ')
}

/// Whether a line is blank as `str::trim` sees it once decoded (lossily): only a line with a
/// byte that is not ASCII is decoded to tell.
fn is_blank(line: &[u8]) -> bool {
    match line.iter().position(|&b| !is_trim_space(b)) {
        None => true,
        Some(i) if line[i].is_ascii() => false,
        Some(i) => String::from_utf8_lossy(&line[i..]).trim().is_empty(),
    }
}

/// Eight spaces, as one word: the count columns of a wide table are mostly padding.
const SPACES: u64 = u64::from_ne_bytes([b' '; 8]);

/// The counts at the start of `b` (a line after its colon), at most `columns`, each given to
/// `count(column, value)` as it is read; returns how many there were and where the tail after
/// them starts.
fn parse_counts(b: &[u8], columns: usize, mut count: impl FnMut(usize, u64)) -> (usize, usize) {
    let mut counts = 0;
    let mut i = 0;
    let tail_at = loop {
        while let Some(w) = b.get(i..i + 8) {
            if u64::from_ne_bytes(w.try_into().unwrap_or_default()) != SPACES {
                break;
            }
            i += 8;
        }
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == b.len() || counts == columns {
            break i;
        }
        let start = i;
        let mut n: Option<u64> = Some(0);
        while i < b.len() && !b[i].is_ascii_whitespace() {
            let d = b[i].wrapping_sub(b'0');
            n = n.filter(|_| d <= 9).and_then(|n| n.checked_mul(10)?.checked_add(u64::from(d)));
            i += 1;
        }
        match n {
            Some(n) => {
                count(counts, n);
                counts += 1;
            }
            // The first word that is not a count: the tail starts there.
            None => break start,
        }
    };
    (counts, tail_at)
}

/// The IRQ number of a numbered line and the bytes after its colon, as `parse_interrupt_line`
/// reads them, without decoding the rest.
fn numbered_line(line: &[u8]) -> Option<(u32, &[u8])> {
    let colon = line.iter().position(|&b| b == b':')?;
    let irq = String::from_utf8_lossy(&line[..colon]).trim().parse().ok()?;
    Some((irq, &line[colon + 1..]))
}

/// Parses one non-empty line after the header (`columns`: count columns of the header), as
/// bytes: the counts are ASCII and read in place; only the name before the colon and the tail
/// after the counts (chip, handler names, description) are decoded, lossily, as text. The
/// kernel's separators (`:`, ASCII whitespace) are never part of a multi-byte character, so
/// this is what decoding the whole line and then splitting it gave, at a fraction of the cost
/// on a 512-column row. The error is the reason the line cannot be read.
fn parse_interrupt_line(line: &[u8], columns: usize, count: impl FnMut(usize, u64)) -> Result<LineHead, String> {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return Err("no ':'".into());
    };
    let name = String::from_utf8_lossy(&line[..colon]);
    let name = name.trim();
    if name.is_empty() {
        return Err("no IRQ name before ':'".into());
    }
    let b = &line[colon + 1..];
    let (counts, tail_at) = parse_counts(b, columns, count);
    let tail = String::from_utf8_lossy(&b[tail_at..]);
    let mut head = LineHead { name: name.to_string(), counts, ..LineHead::default() };
    if let Ok(irq) = name.parse::<u32>() {
        head.irq = Some(irq);
        let d = parse_descriptor(&tail);
        (head.chip, head.hwirq, head.trigger, head.actions) = (d.chip, d.hwirq, d.trigger, d.actions);
    } else {
        let d = tail.trim();
        head.description = (!d.is_empty()).then(|| d.to_string());
    }
    Ok(head)
}

/// The message for a numbered row whose count columns do not match the header.
fn short_row(line_no: usize, head: &LineHead, columns: usize) -> Option<String> {
    let irq = head.irq?;
    (head.counts != columns).then(|| format!("line {line_no}: IRQ {irq} has {} counts for {columns} CPUs", head.counts))
}

/// Parses `/proc/interrupts`. Fails only without a `CPUn` header; a line it cannot read is
/// recorded in `bad_lines`.
pub fn parse_interrupts(text: &str) -> Result<Interrupts, String> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !is_blank(l.as_bytes()));
    let (_, header) = lines.next().ok_or("empty file")?;
    let mut out = Interrupts { cpus: parse_interrupts_header(header)?, ..Interrupts::default() };
    let columns = out.cpus.len();
    for (i, line) in lines {
        let mut counts = Vec::new();
        let head = match parse_interrupt_line(line.as_bytes(), columns, |_, n| counts.push(n)) {
            Ok(h) => h,
            Err(e) => {
                out.bad_lines.push(format!("line {}: {e}", i + 1));
                continue;
            }
        };
        if let Some(bad) = short_row(i + 1, &head, columns) {
            out.bad_lines.push(bad);
        }
        out.rows.push(InterruptRow {
            name: head.name,
            irq: head.irq,
            counts,
            chip: head.chip,
            hwirq: head.hwirq,
            trigger: head.trigger,
            actions: head.actions,
            description: head.description,
        });
    }
    Ok(out)
}

/// An IRQ's counts per CPU (CPU number -> count, non-zero only), as `irqs.list[].per_cpu`
/// shows them: a map, in CPU order. Held packed, each entry as two LEB128 numbers (the CPU's
/// distance from the previous entry's, then the count), some 3-6 bytes an entry: an IRQ that
/// irqbalance moved around has a count on most CPUs, and 8,000 such IRQs on 512 CPUs are 4
/// million entries, about 100 MB as a tree map per IRQ.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PerCpu(Box<[u8]>);

/// Builds a `PerCpu` in one pass; entries in any CPU order (a later count for the same CPU
/// replaces the earlier, as a map's insert does).
#[derive(Debug, Default)]
struct PerCpuWriter {
    bytes: Vec<u8>,
    last: Option<u32>,
    /// Entries that came out of CPU order: sorted at `finish` (no kernel writes a header
    /// out of order, but a capture can hold anything).
    unordered: Option<BTreeMap<u32, u64>>,
}

fn push_leb128(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// The LEB128 number at the start of `b`, and the bytes after it.
fn read_leb128(b: &[u8]) -> Option<(u64, &[u8])> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, &b[i + 1..]));
        }
    }
    None
}

impl PerCpuWriter {
    fn push(&mut self, cpu: u32, count: u64) {
        if let Some(m) = &mut self.unordered {
            m.insert(cpu, count);
            return;
        }
        match self.last {
            Some(last) if cpu <= last => {
                let mut m: BTreeMap<u32, u64> = PerCpu(std::mem::take(&mut self.bytes).into()).iter().collect();
                m.insert(cpu, count);
                self.unordered = Some(m);
            }
            _ => {
                push_leb128(&mut self.bytes, u64::from(cpu - self.last.map_or(0, |l| l + 1)));
                push_leb128(&mut self.bytes, count);
                self.last = Some(cpu);
            }
        }
    }

    fn finish(self) -> PerCpu {
        match self.unordered {
            Some(m) => m.into_iter().collect(),
            None => PerCpu(self.bytes.into_boxed_slice()),
        }
    }
}

impl PerCpu {
    /// (CPU, count) in CPU order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        let mut rest = &self.0[..];
        let mut next_cpu = 0u64;
        std::iter::from_fn(move || {
            let (gap, r) = read_leb128(rest)?;
            let (count, r) = read_leb128(r)?;
            rest = r;
            let cpu = u32::try_from(next_cpu + gap).ok()?;
            next_cpu = u64::from(cpu) + 1;
            Some((cpu, count))
        })
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, cpu: u32) -> Option<u64> {
        self.iter().find(|&(c, _)| c == cpu).map(|(_, n)| n)
    }
}

impl FromIterator<(u32, u64)> for PerCpu {
    fn from_iter<I: IntoIterator<Item = (u32, u64)>>(it: I) -> PerCpu {
        let mut w = PerCpuWriter::default();
        for (cpu, count) in it {
            w.push(cpu, count);
        }
        w.finish()
    }
}

impl Serialize for PerCpu {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for PerCpu {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<PerCpu, D::Error> {
        Ok(BTreeMap::<u32, u64>::deserialize(d)?.into_iter().collect())
    }
}

/// What is kept of one numbered row of `/proc/interrupts` (by the facts, and by
/// `lltune_irq`'s table).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RowFacts {
    pub chip: Option<String>,
    pub hwirq: Option<u64>,
    pub trigger: Option<String>,
    pub actions: Vec<String>,
    pub total: u64,
    /// CPU -> count, non-zero only; filled only for `per_cpu`.
    pub per_cpu: PerCpu,
}

/// The longest line of `/proc/interrupts` read; a longer one is a bad line.
const MAX_LINE: u64 = 1 << 20;

/// Consumes the rest of the current line (through its newline, or to the end).
fn skip_line(reader: &mut impl std::io::BufRead) -> std::io::Result<()> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
}

/// A line without the newline (and carriage returns) it ends with.
fn without_newline(mut line: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r'] = line {
        line = rest;
    }
    line
}

/// The CPU of each count column of `/proc/interrupts`, from its header alone (the first line
/// that is not blank): the rest of the table, tens of MB on a large server, is not read.
pub fn read_interrupts_header(input: impl std::io::Read) -> Result<Vec<u32>, String> {
    use std::io::{BufRead, Read};
    let mut reader = std::io::BufReader::new(input);
    let mut raw = Vec::new();
    loop {
        raw.clear();
        if (&mut reader).take(MAX_LINE).read_until(b'\n', &mut raw).map_err(|e| e.to_string())? == 0 {
            return Err("empty file".into());
        }
        if raw.len() as u64 == MAX_LINE && raw.last() != Some(&b'\n') {
            return Err(format!("header longer than {MAX_LINE} bytes"));
        }
        let line = without_newline(&raw);
        if !is_blank(line) {
            return parse_interrupts_header(&String::from_utf8_lossy(line));
        }
    }
}

/// `/proc/interrupts` read as a stream, one line in memory at a time.
struct Lines<R> {
    reader: std::io::BufReader<R>,
    raw: Vec<u8>,
    /// The number of the line last read, from 1 (blank lines count).
    line_no: usize,
}

/// One line that is not blank: its bytes without the newline, or a line too long to read,
/// whose bytes were skipped.
enum Line<'a> {
    Text(&'a [u8]),
    TooLong,
}

impl<R: std::io::Read> Lines<R> {
    /// The table's lines after its header (the first line that is not blank), and the CPU
    /// number of each count column the header names.
    fn open(input: R) -> Result<(Lines<R>, Vec<u32>), String> {
        let mut lines =
            Lines { reader: std::io::BufReader::with_capacity(64 << 10, input), raw: Vec::new(), line_no: 0 };
        let cpus = match lines.next()? {
            None => return Err("empty file".into()),
            Some((n, Line::TooLong)) => return Err(format!("line {n}: header longer than {MAX_LINE} bytes")),
            Some((_, Line::Text(header))) => parse_interrupts_header(&String::from_utf8_lossy(header))?,
        };
        Ok((lines, cpus))
    }

    /// The next line that is not blank, with its number; `None` at the end.
    fn next(&mut self) -> Result<Option<(usize, Line<'_>)>, String> {
        use std::io::{BufRead, Read};
        loop {
            self.raw.clear();
            if (&mut self.reader).take(MAX_LINE).read_until(b'\n', &mut self.raw).map_err(|e| e.to_string())? == 0 {
                return Ok(None);
            }
            self.line_no += 1;
            if self.raw.len() as u64 == MAX_LINE && self.raw.last() != Some(&b'\n') {
                // Not a table the kernel writes (8,192 CPUs make a row of about 100 KB): the
                // rest of the line is skipped, never held.
                skip_line(&mut self.reader).map_err(|e| e.to_string())?;
                return Ok(Some((self.line_no, Line::TooLong)));
            }
            if !is_blank(without_newline(&self.raw)) {
                return Ok(Some((self.line_no, Line::Text(without_newline(&self.raw)))));
            }
        }
    }
}

/// One numbered row's counts: their sum (wrapping, as the facts add them) and the non-zero
/// ones per CPU when `per_cpu`, then the rest of the line. The error is why the line cannot
/// be read.
fn read_row(line: &[u8], cpus: &[u32], per_cpu: bool) -> (u64, PerCpu, Result<LineHead, String>) {
    let mut total = 0u64;
    let mut counts = PerCpuWriter::default();
    let head = parse_interrupt_line(line, cpus.len(), |col, n| {
        total = total.wrapping_add(n);
        if per_cpu && n > 0 {
            counts.push(cpus[col], n);
        }
    });
    (total, counts.finish(), head)
}

/// The numbered rows of `/proc/interrupts` as `read_interrupt_rows` returns them, and whether
/// their IRQ numbers rise strictly from row to row (as every kernel writes them: the per-CPU
/// counts can then be read again, in step with the IRQs, when the facts are written).
type RowsRead = (BTreeMap<u32, RowFacts>, Vec<String>, bool);

fn read_rows(input: impl std::io::Read, per_cpu: bool) -> Result<RowsRead, String> {
    let (mut lines, cpus) = Lines::open(input)?;
    let mut rows = BTreeMap::new();
    let mut bad = Vec::new();
    let mut rising = true;
    let mut last: Option<u32> = None;
    while let Some((line_no, line)) = lines.next()? {
        let Line::Text(line) = line else {
            bad.push(format!("line {line_no}: longer than {MAX_LINE} bytes; not read"));
            continue;
        };
        let (total, counts, head) = read_row(line, &cpus, per_cpu);
        let head = match head {
            Ok(h) => h,
            Err(e) => {
                bad.push(format!("line {line_no}: {e}"));
                continue;
            }
        };
        if let Some(b) = short_row(line_no, &head, cpus.len()) {
            bad.push(b);
        }
        let Some(irq) = head.irq else { continue };
        rising &= last.is_none_or(|l| irq > l);
        last = Some(irq);
        let row = RowFacts {
            chip: head.chip,
            hwirq: head.hwirq,
            trigger: head.trigger,
            actions: head.actions,
            total,
            per_cpu: counts,
        };
        rows.insert(irq, row);
    }
    Ok((rows, bad, rising))
}

/// The numbered rows of `/proc/interrupts`, read as a stream: one line in memory at a time,
/// and per row only what the facts report (no per-CPU counts unless `per_cpu`). A 256-CPU,
/// 4,000-IRQ table is 12 MB of text; held whole, with a count vector per row, it was most of
/// a scan's memory. Returns the rows and the lines that could not be read.
pub fn read_interrupt_rows(
    input: impl std::io::Read,
    per_cpu: bool,
) -> Result<(BTreeMap<u32, RowFacts>, Vec<String>), String> {
    read_rows(input, per_cpu).map(|(rows, bad, _)| (rows, bad))
}

/// `/proc/interrupts` held open by a detail scan, whose per-CPU counts (`irqs.list[].count`
/// and `per_cpu`) are read again, from the start, each time the list is written, instead of
/// being held: 8,000 IRQs with counts on 512 CPUs are 4 million entries. Read with `pread`
/// at offsets of its own, so that copies of the facts written one after the other never share
/// a file position.
#[derive(Clone)]
pub struct CountsSource {
    file: std::sync::Arc<std::fs::File>,
    /// Bytes read at most, as for the first read (`Host::open_stream`).
    limit: u64,
}

impl std::fmt::Debug for CountsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CountsSource(/proc/interrupts)")
    }
}

/// The file of a `CountsSource` from its start, read with `pread`.
struct ReadAt<'a> {
    file: &'a std::fs::File,
    at: u64,
    end: u64,
}

impl std::io::Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = buf.len().min(usize::try_from(self.end - self.at).unwrap_or(usize::MAX));
        if n == 0 {
            return Ok(0);
        }
        let got = self.file.read_at(&mut buf[..n], self.at)?;
        self.at += got as u64;
        Ok(got)
    }
}

impl CountsSource {
    /// The source for `file` (the first read's, `/proc/interrupts` under the scan's root),
    /// when it can be read again from its start: a file that refuses `pread` is not one.
    fn new(file: std::fs::File, limit: u64) -> Option<CountsSource> {
        use std::os::unix::fs::FileExt;
        file.read_at(&mut [0u8; 1], 0).ok()?;
        Some(CountsSource { file: std::sync::Arc::new(file), limit })
    }

    /// A pass over the table from its start.
    fn pass(&self) -> CountsPass<ReadAt<'_>> {
        CountsPass::new(Lines::open(ReadAt { file: &self.file, at: 0, end: self.limit }).ok())
    }
}

/// One pass over `/proc/interrupts` for the counts of IRQs asked for in rising order.
struct CountsPass<R> {
    /// The lines after the header and the header's CPUs; `None` once the table ended or
    /// could not be read.
    table: Option<(Lines<R>, Vec<u32>)>,
    /// Whether the header's CPUs rise (as the kernel writes them): the per-CPU counts are
    /// then in CPU order as read; else they are put in order as `PerCpu` does.
    cpus_rise: bool,
    /// The IRQ of the row read last, not yet asked for.
    ahead: Option<u32>,
    /// That row's sum and non-zero counts per CPU.
    total: u64,
    per_cpu: Vec<(u32, u64)>,
}

impl<R: std::io::Read> CountsPass<R> {
    fn new(table: Option<(Lines<R>, Vec<u32>)>) -> CountsPass<R> {
        let cpus_rise = table.as_ref().is_some_and(|(_, cpus)| cpus.windows(2).all(|w| w[0] < w[1]));
        CountsPass { table, cpus_rise, ahead: None, total: 0, per_cpu: Vec::new() }
    }

    /// The sum and per-CPU counts (non-zero, in CPU order) of IRQ `irq`'s row, matched by
    /// number; `None` when the table has no row for it (at or after the row of the IRQ asked
    /// for before). IRQs must be asked for in rising order; a row that comes after a higher
    /// one is passed over.
    fn counts(&mut self, irq: u32) -> Option<(u64, &[(u32, u64)])> {
        loop {
            match self.ahead.map(|n| n.cmp(&irq)) {
                Some(std::cmp::Ordering::Greater) => return None,
                Some(std::cmp::Ordering::Equal) => {
                    self.ahead = None;
                    return Some((self.total, &self.per_cpu));
                }
                _ => self.ahead = None,
            }
            let (lines, cpus) = self.table.as_mut()?;
            let line = match lines.next() {
                Ok(Some((_, Line::Text(line)))) => line,
                Ok(Some((_, Line::TooLong))) => continue,
                Ok(None) | Err(_) => {
                    self.table = None;
                    return None;
                }
            };
            let Some((n, rest)) = numbered_line(line) else { continue };
            self.total = 0;
            self.per_cpu.clear();
            let (total, per_cpu) = (&mut self.total, &mut self.per_cpu);
            parse_counts(rest, cpus.len(), |col, c| {
                *total = total.wrapping_add(c);
                if c > 0 {
                    per_cpu.push((cpus[col], c));
                }
            });
            if !self.cpus_rise {
                let ordered: PerCpu = self.per_cpu.drain(..).collect();
                self.per_cpu.extend(ordered.iter());
            }
            self.ahead = Some(n);
        }
    }
}

/// `irqs.list`: every IRQ, with `detail`. Written as a list of `Irq`; when the scan holds
/// `/proc/interrupts` open (`CountsSource`), each IRQ's `count` and `per_cpu` are read from
/// it as the list is written, and those of `irqs` are not used.
#[derive(Debug, Clone, Default)]
pub struct IrqList {
    pub irqs: Vec<Irq>,
    counts: Option<CountsSource>,
}

impl IrqList {
    /// A list whose counts are those held in `irqs`.
    pub fn held(irqs: Vec<Irq>) -> IrqList {
        IrqList { irqs, counts: None }
    }

    /// Whether the per-CPU counts are read as the list is written.
    pub fn streamed(&self) -> bool {
        self.counts.is_some()
    }
}

impl Serialize for IrqList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.irqs.len()))?;
        let Some(source) = &self.counts else {
            for irq in &self.irqs {
                seq.serialize_element(irq)?;
            }
            return seq.end();
        };
        let mut pass = source.pass();
        for irq in &self.irqs {
            let (count, per_cpu) = match pass.counts(irq.irq) {
                Some((total, per_cpu)) => (Some(total), CountsOut::Read(per_cpu)),
                None => (None, CountsOut::Read(&[])),
            };
            seq.serialize_element(&IrqOut { irq, count, per_cpu })?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for IrqList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<IrqList, D::Error> {
        Vec::<Irq>::deserialize(d).map(IrqList::held)
    }
}

/// An IRQ as written, with the counts given: its own, or those read as the list is written.
struct IrqOut<'a> {
    irq: &'a Irq,
    count: Option<u64>,
    per_cpu: CountsOut<'a>,
}

/// Per-CPU counts as written: held, or read as the list is written (in CPU order, non-zero).
enum CountsOut<'a> {
    Held(&'a PerCpu),
    Read(&'a [(u32, u64)]),
}

impl Serialize for CountsOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CountsOut::Held(p) => p.serialize(s),
            // As `PerCpu` writes itself: a map of unknown length.
            CountsOut::Read(entries) => {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(None)?;
                for (cpu, count) in entries.iter() {
                    m.serialize_entry(cpu, count)?;
                }
                m.end()
            }
        }
    }
}

impl Serialize for IrqOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let i = self.irq;
        let mut st = s.serialize_struct("Irq", 13)?;
        st.serialize_field("irq", &i.irq)?;
        st.serialize_field("chip", &i.chip)?;
        st.serialize_field("hwirq", &i.hwirq)?;
        st.serialize_field("trigger", &i.trigger)?;
        st.serialize_field("actions", &i.actions)?;
        st.serialize_field("pci_address", &i.pci_address)?;
        st.serialize_field("count", &self.count)?;
        st.serialize_field("per_cpu", &self.per_cpu)?;
        st.serialize_field("affinity", &i.affinity)?;
        st.serialize_field("effective_affinity", &i.effective_affinity)?;
        st.serialize_field("affinity_hint", &i.affinity_hint)?;
        st.serialize_field("node", &i.node)?;
        st.serialize_field("managed", &i.managed)?;
        st.end()
    }
}

impl Serialize for Irq {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        IrqOut { irq: self, count: self.count, per_cpu: CountsOut::Held(&self.per_cpu) }.serialize(s)
    }
}

/// Flow handler names the kernel appends to a chip name (`irq_set_chip_and_handler_name`),
/// as in 3.x's `IR-IO-APIC-edge`.
const HANDLER_NAMES: &[&str] = &["edge", "level", "fasteoi", "simple", "percpu", "percpu_devid"];

#[derive(Debug, Default, PartialEq, Eq)]
struct Descriptor {
    chip: Option<String>,
    hwirq: Option<u64>,
    trigger: Option<String>,
    actions: Vec<String>,
}

/// The tail of a numbered row after the counts: chip, hwirq, trigger or handler, actions.
fn parse_descriptor(tail: &str) -> Descriptor {
    // Chip, hwirq, trigger, a flow handler, then the first action: at most five tokens.
    let toks = tokens(tail, 5);
    let mut d = Descriptor::default();
    let Some(&(_, chip)) = toks.first() else {
        return d;
    };
    let is_hwirq_token = |t: &str| t.starts_with('-') || t.starts_with(|c: char| c.is_ascii_digit());
    let mut next = 1;
    match toks.get(1).map(|&(_, t)| t) {
        Some(t) if is_hwirq_token(t) => {
            d.chip = Some(chip.to_string());
            // `524288-edge`, `27` (then `Level`), `-edge` (no irq domain), `0-edge`.
            let (num, handler) = match t.split_once('-') {
                Some((n, h)) => (n, Some(h)),
                None => (t, None),
            };
            d.hwirq = num.parse().ok();
            d.trigger = handler.filter(|h| !h.is_empty()).map(str::to_string);
            next = 2;
            if d.trigger.is_none() {
                if let Some(&(_, t)) = toks.get(2) {
                    if t == "Level" || t == "Edge" {
                        d.trigger = Some(t.to_string());
                        next = 3;
                    }
                }
            }
            // GENERIC_IRQ_SHOW_LEVEL with a handler name: `Level   -fasteoi`.
            if let Some(&(_, t)) = toks.get(next) {
                if t.starts_with('-') && t.len() > 1 {
                    next += 1;
                }
            }
        }
        _ => {
            // 3.x: `IR-IO-APIC-edge`, chip and handler in one word, no hwirq.
            match chip.rsplit_once('-') {
                Some((c, h)) if HANDLER_NAMES.contains(&h) && !c.is_empty() => {
                    d.chip = Some(c.to_string());
                    d.trigger = Some(h.to_string());
                }
                _ => d.chip = Some(chip.to_string()),
            }
        }
    }
    if let Some(&(at, _)) = toks.get(next) {
        d.actions = tail[at..].split(", ").map(str::trim).filter(|a| !a.is_empty()).map(str::to_string).collect();
    }
    d
}

/// The first PCI address (`0000:3b:00.0`: 4 hex digits, `:`, 2, `:`, 2, `.`, 0-7) inside `s`,
/// lowercased. A hand-written scan rather than a regex: the regex engine would add about
/// 490 KiB to every binary that scans IRQs, and Ansible copies lltune_facts to every host
/// on every task.
pub fn pci_address_in(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let hex = |c: u8| c.is_ascii_hexdigit();
    (0..b.len().saturating_sub(11)).find_map(|i| {
        let w = &b[i..i + 12];
        let ok = w[..4].iter().all(|c| hex(*c))
            && w[4] == b':'
            && hex(w[5])
            && hex(w[6])
            && w[7] == b':'
            && hex(w[8])
            && hex(w[9])
            && w[10] == b'.'
            && (b'0'..=b'7').contains(&w[11]);
        // Every byte of `w` is ASCII here.
        ok.then(|| String::from_utf8_lossy(w).to_ascii_lowercase())
    })
}

/// The PCI function behind an IRQ: named in the chip (`IR-PCI-MSIX-0000:3b:00.0`, 6.2+),
/// in a handler name (`mlx5_comp0@pci:0000:3b:00.0`, `ahci[0000:00:11.5]`), or encoded in
/// the hwirq of the shared PCI-MSI domain of older kernels.
pub fn irq_pci_address(chip: Option<&str>, hwirq: Option<u64>, actions: &[String]) -> Option<String> {
    let found = chip.and_then(pci_address_in).or_else(|| actions.iter().find_map(|a| pci_address_in(a)));
    if found.is_some() {
        return found;
    }
    // drivers/pci/msi/irqdomain.c, pci_msi_domain_calc_hwirq: msi_index | requester id
    // (bus << 8 | devfn) << 11 | domain << 27. Only the shared domains (`PCI-MSI`,
    // `IR-PCI-MSI`, arm64 `ITS-MSI`) number this way; per-device domains count from 0.
    let chip = chip?;
    if chip.ends_with("PCI-MSI") || chip == "ITS-MSI" {
        let h = hwirq?;
        let domain = h >> 27;
        let bus = (h >> 19) & 0xff;
        let dev = (h >> 14) & 0x1f;
        let func = (h >> 11) & 0x7;
        return Some(format!("{domain:04x}:{bus:02x}:{dev:02x}.{func:x}"));
    }
    None
}

/// A network device as the IRQ matching needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NicKey {
    /// Key in `irqs.nics`: the netdev name, or the PCI address when there is none.
    pub key: String,
    pub name: Option<String>,
    pub pci_address: Option<String>,
    /// Basename of `/sys/class/net/<name>/device` when it is not PCI (`virtio1`), whose
    /// handlers are named after it (`virtio1-input.0`).
    pub device: Option<String>,
    pub numa_node: Option<i64>,
}

/// True when `action` is `prefix` or starts with it followed by a non-alphanumeric
/// character (`eth1-TxRx-0` is eth1's, `eth10-TxRx-0` is not).
fn action_belongs_to(action: &str, prefix: &str) -> bool {
    match action.strip_prefix(prefix) {
        Some(rest) => rest.chars().next().is_none_or(|c| !c.is_ascii_alphanumeric()),
        None => false,
    }
}

/// Which NIC raises this IRQ: by PCI address first, then by handler name (the longest
/// netdev or device name that prefixes one).
pub fn match_nic<'a>(nics: &'a [NicKey], pci_address: Option<&str>, actions: &[String]) -> Option<&'a NicKey> {
    if let Some(addr) = pci_address {
        if let Some(n) = nics.iter().find(|n| n.pci_address.as_deref() == Some(addr)) {
            return Some(n);
        }
    }
    let mut best: Option<(&NicKey, usize)> = None;
    for n in nics {
        for prefix in [n.name.as_deref(), n.device.as_deref()].into_iter().flatten() {
            if actions.iter().any(|a| action_belongs_to(a, prefix)) && best.is_none_or(|(_, l)| prefix.len() > l) {
                best = Some((n, prefix.len()));
            }
        }
    }
    best.map(|(n, _)| n)
}

/// Files of `/proc/irq/<n>/`; every other entry is a handler's directory.
pub const IRQ_FILES: &[&str] = &[
    "smp_affinity",
    "smp_affinity_list",
    "effective_affinity",
    "effective_affinity_list",
    "affinity_hint",
    "node",
    "spurious",
];

/// The CPU sets of `/proc/irq/<n>/`, by what they say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrqCpus {
    /// `smp_affinity_list` (mask twin `smp_affinity`): where the IRQ may be delivered.
    Affinity,
    /// `effective_affinity_list` (mask twin `effective_affinity`, Linux 4.15+): where it is.
    Effective,
}

impl IrqCpus {
    /// The list file's name (`smp_affinity_list`).
    pub fn list_file(self) -> &'static str {
        match self {
            IrqCpus::Affinity => "smp_affinity_list",
            IrqCpus::Effective => "effective_affinity_list",
        }
    }

    /// The mask twin's name (`smp_affinity`).
    pub fn mask_file(self) -> &'static str {
        match self {
            IrqCpus::Affinity => "smp_affinity",
            IrqCpus::Effective => "effective_affinity",
        }
    }
}

/// What one CPU-set file of an IRQ holds: the file read, and its CPUs or why they could not
/// be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IrqCpusFile {
    pub path: String,
    pub cpus: Result<CpuList, String>,
}

/// Reads one CPU set of IRQ `n`: the list file, else (with `twin`) its mask twin. `Ok(None)`
/// when the file is absent; the host's error when it is there but cannot be read (not a
/// regular file, outside root). The one reader of these files for discovery and `lltune_irq`.
pub fn read_irq_cpus(
    host: &crate::host::Host,
    n: u32,
    which: IrqCpus,
    twin: bool,
) -> Result<Option<IrqCpusFile>, crate::host::HostError> {
    // Trimmed as every attribute is (`Host::attr`): the kernel ends the value with a newline.
    let value = |t: String| t.trim_matches(|c: char| c.is_whitespace() || c == '\0').to_string();
    let list = format!("/proc/irq/{n}/{}", which.list_file());
    if let Some(t) = host.read_opt(&list)? {
        return Ok(Some(IrqCpusFile { cpus: CpuList::parse(&value(t)).map_err(|e| e.to_string()), path: list }));
    }
    if !twin {
        return Ok(None);
    }
    let mask = format!("/proc/irq/{n}/{}", which.mask_file());
    Ok(host
        .read_opt(&mask)?
        .map(|t| IrqCpusFile { cpus: CpuList::parse_mask(&value(t)).map_err(|e| e.to_string()), path: mask }))
}

/// A CPU set of IRQ `n` for the facts: a file that does not parse is a warning naming it; one
/// that cannot be read is unknown, as any unreadable attribute.
fn read_cpus(scan: &mut Scan, n: u32, which: IrqCpus) -> Option<CpuList> {
    let f = read_irq_cpus(scan.host, n, which, true).ok().flatten()?;
    match f.cpus {
        Ok(c) => Some(c),
        Err(e) => {
            scan.warn(format!("{}: {e}", f.path));
            None
        }
    }
}

/// The affinity new IRQs start with, a hex mask.
pub const DEFAULT_AFFINITY_FILE: &str = "/proc/irq/default_smp_affinity";

/// `DEFAULT_AFFINITY_FILE` as the kernel prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultAffinity {
    /// The mask, trimmed (`ffff,ffffffff`).
    pub text: String,
    /// The CPUs it names, or why it is not a mask.
    pub cpus: Result<CpuList, CpuListError>,
}

impl DefaultAffinity {
    /// Bits the kernel prints in the mask (`ffff,ffffffff` is 48): the width of its masks.
    pub fn width(&self) -> u32 {
        mask_width(&self.text)
    }
}

/// Bits of a mask as the kernel prints it (`ffff,ffffffff` is 48).
pub fn mask_width(text: &str) -> u32 {
    let t = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    let words: Vec<&str> = t.split(',').collect();
    let lead = words.first().map_or(0, |w| w.len() as u32);
    lead * 4 + 32 * (words.len() as u32).saturating_sub(1)
}

/// Reads `DEFAULT_AFFINITY_FILE`, for the scan and `lltune_irq` alike; `Ok(None)` when the
/// host has none.
pub fn read_default_affinity(host: &crate::host::Host) -> Result<Option<DefaultAffinity>, crate::host::HostError> {
    Ok(host.read_opt(DEFAULT_AFFINITY_FILE)?.map(|t| {
        let text = t.trim_matches(|c: char| c.is_whitespace() || c == '\0').to_string();
        let cpus = CpuList::parse_mask(&text);
        DefaultAffinity { text, cpus }
    }))
}

/// Where debugfs lists one state file per IRQ (CONFIG_GENERIC_IRQ_DEBUGFS).
pub const DEBUGFS_IRQS: &str = "/sys/kernel/debug/irq/irqs";

/// What debugfs says about an IRQ (kernel/irq/debugfs.c prints the `IRQD_*` bits of
/// `dstate` one per line).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DebugFlags {
    /// `IRQD_AFFINITY_MANAGED`: the kernel manages the affinity; writes fail with EIO.
    pub managed: bool,
    /// `IRQD_PER_CPU`.
    pub per_cpu: bool,
    /// `IRQD_NO_BALANCING`.
    pub no_balancing: bool,
}

/// Parses a debugfs IRQ state file.
pub fn parse_debugfs_flags(text: &str) -> DebugFlags {
    let mut f = DebugFlags::default();
    for l in text.lines().map(str::trim) {
        match l {
            "IRQD_AFFINITY_MANAGED" => f.managed = true,
            "IRQD_PER_CPU" => f.per_cpu = true,
            "IRQD_NO_BALANCING" => f.no_balancing = true,
            _ => {}
        }
    }
    f
}

/// Whether debugfs's IRQ folder is there (mounted, and the kernel built with it).
pub fn debugfs_irqs(host: &crate::host::Host) -> bool {
    host.is_dir(DEBUGFS_IRQS)
}

/// The debugfs flags of IRQ `n`; `None` when its state file is absent or unreadable.
pub fn read_debugfs_flags(host: &crate::host::Host, n: u32) -> Option<DebugFlags> {
    host.read_opt(&format!("{DEBUGFS_IRQS}/{n}")).ok().flatten().map(|t| parse_debugfs_flags(&t))
}

/// NIC drivers that name IRQs with their device's PCI address (`mlx5_comp0@pci:0000:3b:00.0`,
/// `mlx4-comp-0@pci:...`, `i40e-0000:3b:00.0:misc`, `ice-0000:3b:00.0:misc`).
const NIC_IRQ_PREFIXES: &[&str] = &["mlx5_", "mlx4-", "i40e-", "ice-"];

/// The PCI address a NIC driver's IRQ names, or `None` for any other IRQ.
pub fn nic_named_irq(actions: &[String]) -> Option<String> {
    actions.iter().filter(|a| NIC_IRQ_PREFIXES.iter().any(|p| a.starts_with(p))).find_map(|a| pci_address_in(a))
}

/// Matching keys of the physical NICs (virtual ones raise no IRQs of their own).
fn nic_keys(scan: &mut Scan, nics: &[Nic]) -> Vec<NicKey> {
    let mut out = Vec::new();
    for nic in nics.iter().filter(|n| !n.r#virtual) {
        let Some(key) = nic.name.clone().or_else(|| nic.pci_address.clone()) else { continue };
        // virtio-net handlers are named after the virtio device (`virtio1-input.0`), which
        // only the netdev's `device` link names.
        let device = nic
            .name
            .as_ref()
            .and_then(|n| scan.host.link_name(&format!("/sys/class/net/{n}/device")))
            .filter(|d| pci_address_in(d).is_none());
        out.push(NicKey {
            key,
            name: nic.name.clone(),
            pci_address: nic.pci_address.clone(),
            device,
            numa_node: nic.numa_node.filter(|&n| n >= 0),
        });
    }
    out
}

/// Reads `/proc/interrupts` and `/proc/irq`.
///
/// What is read per IRQ depends on the mode. With `detail`, every file of `/proc/irq/<n>/`
/// the list reports. Compact, only what the summary needs: nothing for an IRQ without a
/// handler; for an active one its effective affinity, its affinity only when the effective
/// one is empty or absent (or when the IRQ lands on an isolated CPU, whose entry shows
/// both), and its debugfs state only for an IRQ on an isolated CPU. On a large server that
/// is one small file per IRQ instead of three.
pub fn read(scan: &mut Scan, cpu: &Cpu, kernel: &Kernel, nics: &[Nic]) -> Irqs {
    read_with(scan, cpu, kernel, nics, true)
}

/// `/proc/interrupts`' numbered rows and unreadable lines, and with `stream` (a detail scan)
/// the file held open for the per-CPU counts, read again as the list is written. The counts
/// are held instead (read now, in the rows) when the rows do not rise by IRQ number (a capture
/// edited by hand: no kernel writes one) or the file cannot be read again from its start.
fn read_table(scan: &mut Scan, stream: bool) -> (BTreeMap<u32, RowFacts>, Vec<String>, Option<CountsSource>) {
    let detail = scan.options.detail;
    let mut first = true;
    loop {
        let hold = detail && !(stream && first);
        let read = scan.host.open_stream("/proc/interrupts").map(|mut f| {
            let limit = f.limit();
            (read_rows(&mut f, hold), f.into_inner(), limit)
        });
        let (rows, file, limit) = match read {
            Ok(r) => r,
            Err(e) if e.is_not_found() => {
                scan.warn("/proc/interrupts: absent");
                return Default::default();
            }
            Err(e) => {
                scan.warn(e.to_string());
                return Default::default();
            }
        };
        let (rows, bad, rising) = match rows {
            Ok(r) => r,
            Err(e) => {
                scan.warn(format!("/proc/interrupts: {e}"));
                return Default::default();
            }
        };
        if !detail || hold {
            return (rows, bad, None);
        }
        if let Some(source) = rising.then(|| CountsSource::new(file, limit)).flatten() {
            return (rows, bad, Some(source));
        }
        first = false;
    }
}

/// `read`, with the per-CPU counts of a detail scan held rather than read again as the list
/// is written when `stream` is false (the tests compare the two).
fn read_with(scan: &mut Scan, cpu: &Cpu, kernel: &Kernel, nics: &[Nic], stream: bool) -> Irqs {
    let detail = scan.options.detail;
    let (mut rows, bad_lines, counts) = read_table(scan, stream);
    if let Some(first) = bad_lines.first() {
        scan.warn(format!("/proc/interrupts: {} unreadable line(s), first {first}", bad_lines.len()));
    }
    let dirs: BTreeSet<u32> = scan.host.list_or_empty("/proc/irq").iter().filter_map(|n| n.parse().ok()).collect();
    let numbers: BTreeSet<u32> = rows.keys().copied().chain(dirs.iter().copied()).collect();

    let default_affinity = read_default_affinity(scan.host).ok().flatten().and_then(|d| match d.cpus {
        Ok(c) => Some(c),
        Err(e) => {
            scan.warn(format!("{DEFAULT_AFFINITY_FILE}: {e}"));
            None
        }
    });
    let debugfs = debugfs_irqs(scan.host);
    let managed = |scan: &mut Scan, n: u32| read_debugfs_flags(scan.host, n).map(|f| f.managed);
    // The CPUs IRQs should stay off: runtime `isolated` and `nohz_full`, and what the
    // command line asks for (captures often lack the runtime files; the cmdline says the
    // intent either way).
    let mut isolated = CpuList::new();
    for known in [&cpu.isolated, &cpu.nohz_full].into_iter().flatten() {
        isolated = isolated.union(known);
    }
    if let Some(i) = &kernel.isolcpus {
        isolated = isolated.union(&i.cpus);
    }
    if let Some(n) = &kernel.nohz_full {
        isolated = isolated.union(n);
    }
    let nic_keys = nic_keys(scan, nics);

    let mut out = Irqs { total: numbers.len(), dirs: dirs.len(), default_affinity, ..Irqs::default() };
    let mut list = Vec::new();
    for n in numbers {
        let row = rows.remove(&n);
        let has_row = row.is_some();
        let mut irq = Irq { irq: n, ..Irq::default() };
        if let Some(r) = row {
            (irq.chip, irq.hwirq, irq.trigger, irq.actions) = (r.chip, r.hwirq, r.trigger, r.actions);
            irq.count = Some(r.total);
            irq.per_cpu = r.per_cpu;
        }
        let d = format!("/proc/irq/{n}");
        let has_dir = dirs.contains(&n);
        let affinity = |scan: &mut Scan| read_cpus(scan, n, IrqCpus::Affinity);
        let effective = |scan: &mut Scan| read_cpus(scan, n, IrqCpus::Effective);
        let mut affinity_read = false;
        if has_dir && detail {
            irq.affinity = affinity(scan);
            irq.effective_affinity = effective(scan);
            affinity_read = true;
            irq.node = scan.host.attr_parse::<i32>(&format!("{d}/node")).filter(|&v| v >= 0);
            irq.affinity_hint =
                scan.host.attr(&format!("{d}/affinity_hint")).and_then(|t| CpuList::parse_mask(&t).ok());
        }
        if has_dir && !has_row {
            // No row: no handler, or a kernel that hides it; the subdirectories say.
            for e in scan.host.list_or_empty(&d) {
                if !IRQ_FILES.contains(&e.as_str()) && scan.host.is_dir(&format!("{d}/{e}")) {
                    irq.actions.push(e);
                }
            }
        }
        if debugfs && detail {
            irq.managed = managed(scan, n);
        }
        irq.pci_address = irq_pci_address(irq.chip.as_deref(), irq.hwirq, &irq.actions);

        let active = has_row || !irq.actions.is_empty();
        if active {
            out.active += 1;
            if has_dir && !detail {
                irq.effective_affinity = effective(scan);
                if irq.effective_affinity.as_ref().is_none_or(|c| c.is_empty()) {
                    irq.affinity = affinity(scan);
                    affinity_read = true;
                }
            }
            let route = irq.effective_affinity.clone().filter(|c| !c.is_empty()).or_else(|| irq.affinity.clone());
            if let Some(route) = &route {
                for c in route.iter() {
                    *out.by_cpu.entry(c).or_default() += 1;
                }
            }
            // Where the IRQ is delivered: the effective affinity when the kernel reports
            // one (an affinity of 0-79 delivered to CPU 0 does not disturb CPU 5).
            if route.as_ref().is_some_and(|c| !c.is_disjoint(&isolated)) {
                if has_dir && !affinity_read {
                    irq.affinity = affinity(scan);
                }
                if debugfs && !detail {
                    irq.managed = managed(scan, n);
                }
                out.on_isolated.push(IrqOnIsolated {
                    irq: n,
                    actions: irq.actions.clone(),
                    affinity: irq.affinity.clone(),
                    effective_affinity: irq.effective_affinity.clone(),
                    managed: irq.managed,
                });
            }
            let nic = match match_nic(&nic_keys, irq.pci_address.as_deref(), &irq.actions) {
                Some(nic) => Some((nic.key.clone(), nic.numa_node)),
                // A NIC the scan did not find (a capture whose PCI folders are missing):
                // its driver names its IRQs with its PCI address.
                None => nic_named_irq(&irq.actions).map(|a| {
                    let node =
                        scan.host.attr_parse::<i64>(&format!("/sys/bus/pci/devices/{a}/numa_node")).filter(|&n| n >= 0);
                    (a, node)
                }),
            };
            if let Some((key, numa_node)) = nic {
                let e = out.nics.entry(key).or_insert_with(|| NicIrqs { numa_node, ..NicIrqs::default() });
                e.count += 1;
                if let Some(route) = &route {
                    e.cpus = e.cpus.union(route);
                }
            }
        }
        if detail {
            list.push(irq);
        }
    }
    if detail {
        out.list = Some(IrqList { irqs: list, counts });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parser of `/proc/interrupts` before it read bytes: each line decoded (lossily) as a
    /// whole, then split. The byte parser must give exactly what this gave.
    mod text_parser {
        use super::super::*;

        /// Parses one non-empty line after the header (`columns`: count columns of the header).
        /// The error is the reason the line cannot be read.
        fn parse_interrupt_line(
            line: &str,
            columns: usize,
            mut count: impl FnMut(usize, u64),
        ) -> Result<LineHead, String> {
            let Some((name, rest)) = line.split_once(':') else {
                return Err("no ':'".into());
            };
            let name = name.trim();
            if name.is_empty() {
                return Err("no IRQ name before ':'".into());
            }
            // The counts, read as bytes: a 256-CPU row is 256 numbers, and every IRQ has a row.
            let b = rest.as_bytes();
            let mut counts = 0;
            let mut i = 0;
            let tail_at = loop {
                while i < b.len() && b[i].is_ascii_whitespace() {
                    i += 1;
                }
                if i == b.len() || counts == columns {
                    break i;
                }
                let start = i;
                let mut n: Option<u64> = Some(0);
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    let d = b[i].wrapping_sub(b'0');
                    n = n.filter(|_| d <= 9).and_then(|n| n.checked_mul(10)?.checked_add(u64::from(d)));
                    i += 1;
                }
                match n {
                    Some(n) => {
                        count(counts, n);
                        counts += 1;
                    }
                    // The first word that is not a count: the tail starts there.
                    None => break start,
                }
            };
            let tail = &rest[tail_at..];
            let mut head = LineHead { name: name.to_string(), counts, ..LineHead::default() };
            if let Ok(irq) = name.parse::<u32>() {
                head.irq = Some(irq);
                let d = parse_descriptor(tail);
                (head.chip, head.hwirq, head.trigger, head.actions) = (d.chip, d.hwirq, d.trigger, d.actions);
            } else {
                let d = tail.trim();
                head.description = (!d.is_empty()).then(|| d.to_string());
            }
            Ok(head)
        }

        /// Parses `/proc/interrupts`. Fails only without a `CPUn` header; a line it cannot read is
        /// recorded in `bad_lines`.
        pub(super) fn parse_interrupts(text: &str) -> Result<Interrupts, String> {
            let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
            let (_, header) = lines.next().ok_or("empty file")?;
            let mut out = Interrupts { cpus: parse_interrupts_header(header)?, ..Interrupts::default() };
            let columns = out.cpus.len();
            for (i, line) in lines {
                let mut counts = Vec::new();
                let head = match parse_interrupt_line(line, columns, |_, n| counts.push(n)) {
                    Ok(h) => h,
                    Err(e) => {
                        out.bad_lines.push(format!("line {}: {e}", i + 1));
                        continue;
                    }
                };
                if let Some(bad) = short_row(i + 1, &head, columns) {
                    out.bad_lines.push(bad);
                }
                out.rows.push(InterruptRow {
                    name: head.name,
                    irq: head.irq,
                    counts,
                    chip: head.chip,
                    hwirq: head.hwirq,
                    trigger: head.trigger,
                    actions: head.actions,
                    description: head.description,
                });
            }
            Ok(out)
        }

        /// The numbered rows of `/proc/interrupts`, read as a stream: one line in memory at a time,
        /// and per row only what the facts report (no per-CPU counts unless `per_cpu`). A 256-CPU,
        /// 4,000-IRQ table is 12 MB of text; held whole, with a count vector per row, it was most of
        /// a scan's memory. Returns the rows and the lines that could not be read.
        pub(super) fn read_interrupt_rows(
            input: impl std::io::Read,
            per_cpu: bool,
        ) -> Result<(BTreeMap<u32, RowFacts>, Vec<String>), String> {
            use std::io::{BufRead, Read};
            let mut reader = std::io::BufReader::with_capacity(64 << 10, input);
            let mut raw = Vec::new();
            let mut line_no = 0usize;
            let mut cpus: Option<Vec<u32>> = None;
            let mut rows = BTreeMap::new();
            let mut bad = Vec::new();
            loop {
                raw.clear();
                if (&mut reader).take(MAX_LINE).read_until(b'\n', &mut raw).map_err(|e| e.to_string())? == 0 {
                    break;
                }
                line_no += 1;
                if raw.len() as u64 == MAX_LINE && raw.last() != Some(&b'\n') {
                    // Not a table the kernel writes (8,192 CPUs make a row of about 100 KB): the rest
                    // of the line is skipped, never held.
                    skip_line(&mut reader).map_err(|e| e.to_string())?;
                    if cpus.is_none() {
                        return Err(format!("line {line_no}: header longer than {MAX_LINE} bytes"));
                    }
                    bad.push(format!("line {line_no}: longer than {MAX_LINE} bytes; not read"));
                    continue;
                }
                let text = String::from_utf8_lossy(&raw);
                let line = text.trim_end_matches(['\n', '\r']);
                if line.trim().is_empty() {
                    continue;
                }
                let Some(cpus) = &cpus else {
                    cpus = Some(parse_interrupts_header(line)?);
                    continue;
                };
                let mut row = RowFacts::default();
                // The counts as the map they were, then held as today's type.
                let mut per_cpu_map = BTreeMap::new();
                let head = parse_interrupt_line(line, cpus.len(), |col, n| {
                    row.total = row.total.wrapping_add(n);
                    if per_cpu && n > 0 {
                        per_cpu_map.insert(cpus[col], n);
                    }
                });
                row.per_cpu = per_cpu_map.into_iter().collect();
                let head = match head {
                    Ok(h) => h,
                    Err(e) => {
                        bad.push(format!("line {line_no}: {e}"));
                        continue;
                    }
                };
                if let Some(b) = short_row(line_no, &head, cpus.len()) {
                    bad.push(b);
                }
                let Some(irq) = head.irq else { continue };
                (row.chip, row.hwirq, row.trigger, row.actions) = (head.chip, head.hwirq, head.trigger, head.actions);
                rows.insert(irq, row);
            }
            if cpus.is_none() {
                return Err("empty file".into());
            }
            Ok((rows, bad))
        }
    }

    /// Every `/proc/interrupts` of the fixtures: the parser samples, the host trees and the
    /// real dumps (read from their archives), as (name, bytes).
    fn fixture_tables() -> Vec<(String, Vec<u8>)> {
        use std::io::Read;
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut out = Vec::new();
        for e in std::fs::read_dir(fixtures.join("parsers")).unwrap() {
            let p = e.unwrap().path();
            if p.file_name().unwrap().to_string_lossy().starts_with("interrupts") {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
        for e in std::fs::read_dir(fixtures.join("hosts")).unwrap() {
            let p = e.unwrap().path().join("proc/interrupts");
            if p.is_file() {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
        for e in std::fs::read_dir(fixtures.join("real")).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_none_or(|x| x != "tgz") {
                continue;
            }
            let gz = flate2::read::GzDecoder::new(std::fs::File::open(&p).unwrap());
            for entry in tar::Archive::new(gz).entries().unwrap() {
                let mut entry = entry.unwrap();
                if entry.path().unwrap().ends_with("proc/interrupts") {
                    let mut bytes = Vec::new();
                    entry.read_to_end(&mut bytes).unwrap();
                    out.push((p.display().to_string(), bytes));
                }
            }
        }
        out
    }

    /// The byte parser against the text parser on one table: the stream reader with and
    /// without per-CPU counts, and the whole-text parser on the table as decoded text.
    fn assert_same_as_text_parser(what: &str, bytes: &[u8]) {
        for per_cpu in [false, true] {
            assert_eq!(
                read_interrupt_rows(bytes, per_cpu),
                text_parser::read_interrupt_rows(bytes, per_cpu),
                "{what} (per_cpu {per_cpu}): {:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        let text = String::from_utf8_lossy(bytes);
        assert_eq!(parse_interrupts(&text), text_parser::parse_interrupts(&text), "{what}: {text:?}");
    }

    #[test]
    fn the_byte_parser_reads_every_fixture_as_the_text_parser_did() {
        let tables = fixture_tables();
        // 2 parser samples, 3 host trees, 3 real dumps: a fixture that went missing fails here.
        assert!(tables.len() >= 8, "{:?}", tables.iter().map(|t| &t.0).collect::<Vec<_>>());
        for (name, bytes) in &tables {
            let (rows, _) = read_interrupt_rows(&bytes[..], true).unwrap();
            assert!(!rows.is_empty(), "{name}: no numbered rows");
            assert_same_as_text_parser(name, bytes);
        }
    }

    /// One generated `/proc/interrupts`: random column counts, rows with missing, extra,
    /// huge or overflowing counters, named rows (`ERR`/`MIS` with one total, `IPI0:` touching
    /// its count), names and tails that are not UTF-8 or hold Unicode spaces, short lines,
    /// blank lines, CRLF endings and a last line without its newline.
    /// With `rising`, the numbered rows rise by IRQ number, as a kernel writes them.
    fn generated_table(rng: &mut crate::test_rng::Rng, rising: bool) -> Vec<u8> {
        const COUNTS: &[&str] = &[
            "0",
            "7",
            "4294967296",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999999",
            "0x1",
            "12a",
        ];
        const GAPS: &[&str] = &[" ", "          ", "           ", "\t", "  \t ", "\x0b", "\x0c "];
        const TAILS: &[&[u8]] = &[
            b"",
            b"   IR-PCI-MSI 524288-edge      eth0-TxRx-0",
            b"  IO-APIC   2-edge      timer",
            b"     GICv3  27 Level     arch_timer",
            b"  IR-IO-APIC-edge  i8042",
            b"  IR-PCI-MSIX-0000:3b:00.0    1-edge      mlx5_comp0@pci:0000:3b:00.0",
            b"  IR-PCI-MSI 458752-edge      PCIe PME, pciehp",
            b"   Non-maskable interrupts",
            b"  GICv3  30 Level   -fasteoi  foo",
            b"  IR-PCI-MSI 1-edge  eth\xff-rx-\xc3",
            b"  chip\xe2\x80 1-edge  na\xc3\xa9me, \xf0\x9f",
            b"  IO-APIC 2-edge  x\xc2\xa0y\xe3\x80\x80",
            b"\xff\xfe",
            b"  \xc2\xa0",
            b" 9-edge",
        ];
        const NAMES: &[&[u8]] = &[
            b"NMI",
            b"LOC",
            b"ERR",
            b"MIS",
            b"IPI0",
            b"Err",
            b"I/O dev",
            b"",
            b"  ",
            b"\xffx",
            b"\xc2\xa0",
            b"4294967296",
            b"-1",
        ];
        let cols = rng.below(6);
        let mut t = Vec::new();
        let mut irq = 0;
        for _ in 0..rng.below(3) {
            t.extend_from_slice(rng.pick(&["\n", "   \n", "\x0b\n", "\u{a0}\n", "\u{3000}\r\n"]).as_bytes());
        }
        if rng.below(30) == 0 {
            t.extend_from_slice(b"CPU0 CPUx");
        } else {
            for c in 0..cols {
                t.extend_from_slice(format!("{:>11}", format!("CPU{}", c * 2)).as_bytes());
            }
        }
        t.push(b'\n');
        for _ in 0..rng.below(12) {
            match rng.below(12) {
                0 => {
                    const SHORT: &[&[u8]] = &[
                        b"",
                        b" ",
                        "\u{a0}".as_bytes(),
                        b"\x0b",
                        " \u{2028} ".as_bytes(),
                        b"rubbish",
                        b":",
                        b"5:",
                        b" \xc3",
                    ];
                    t.extend_from_slice(SHORT[rng.below(SHORT.len())]);
                }
                1 => t.extend_from_slice(b"\xff \xfe"),
                _ => {
                    if rng.below(3) == 0 {
                        t.extend_from_slice(NAMES[rng.below(NAMES.len())]);
                    } else if rising {
                        irq += 1 + rng.below(3);
                        t.extend_from_slice(format!("{irq:>4}").as_bytes());
                    } else {
                        t.extend_from_slice(format!("{:>4}", rng.below(300)).as_bytes());
                    }
                    if rng.below(15) != 0 {
                        t.push(b':');
                    }
                    let n = if rng.below(3) == 0 { rng.below(cols + 3) } else { cols };
                    for k in 0..n {
                        if k > 0 || rng.below(4) != 0 {
                            t.extend_from_slice(rng.pick(GAPS).as_bytes());
                        }
                        let c = if rng.below(2) == 0 {
                            rng.pick(COUNTS).to_string()
                        } else {
                            rng.below(1 << 20).to_string()
                        };
                        t.extend_from_slice(c.as_bytes());
                    }
                    t.extend_from_slice(TAILS[rng.below(TAILS.len())]);
                    t.extend_from_slice(rng.pick(&["", " ", "  \t", "\u{a0}"]).as_bytes());
                }
            }
            t.extend_from_slice(rng.pick(&["\n", "\n", "\n", "\r\n", "\n\n", "\r\r\n"]).as_bytes());
        }
        if rng.below(4) == 0 {
            while t.last() == Some(&b'\n') {
                t.pop();
            }
        }
        t
    }

    #[test]
    fn the_byte_parser_reads_generated_tables_as_the_text_parser_did() {
        let mut rng = crate::test_rng::Rng(0x1f2e_3d4c_5b6a_7988);
        // What the cases covered, so a generator that stopped producing them fails.
        let (mut rows, mut bad, mut lossy_actions, mut errors, mut per_cpu_rows) = (0, 0, 0, 0, 0);
        for case in 0..3000 {
            let bytes = generated_table(&mut rng, false);
            assert_same_as_text_parser(&format!("case {case}"), &bytes);
            match read_interrupt_rows(&bytes[..], true) {
                Ok((r, b)) => {
                    rows += r.len();
                    bad += b.len();
                    lossy_actions += r.values().filter(|r| r.actions.iter().any(|a| a.contains('\u{fffd}'))).count();
                    per_cpu_rows += r.values().filter(|r| r.per_cpu.len() > 1).count();
                }
                Err(_) => errors += 1,
            }
        }
        assert!(
            rows > 3000 && bad > 1000 && lossy_actions > 100 && errors > 50 && per_cpu_rows > 500,
            "rows {rows}, bad lines {bad}, lossy actions {lossy_actions}, header errors {errors}, multi-CPU rows {per_cpu_rows}"
        );
    }

    /// `PerCpu` is a map of CPU -> count in all but its memory: the same entries (in any
    /// insertion order, a repeated CPU keeping its last count), the same JSON and YAML, and
    /// read back from either.
    #[test]
    fn per_cpu_counts_hold_and_write_what_a_map_would() {
        let mut rng = crate::test_rng::Rng(0x5eed_f0c0);
        for case in 0..2000 {
            let mut map = BTreeMap::new();
            let mut pairs = Vec::new();
            let ordered = rng.below(2) == 0;
            let mut cpu = 0u32;
            for _ in 0..rng.below(40) {
                cpu = match rng.below(20) {
                    0 => u32::MAX - rng.below(3) as u32,
                    1 if !ordered => rng.below(8) as u32,
                    _ => {
                        let spread = if rng.below(4) == 0 { 100_000 } else { 3 };
                        cpu.saturating_add(1 + rng.below(spread) as u32)
                    }
                };
                let count = match rng.below(6) {
                    0 => u64::MAX - rng.below(2) as u64,
                    1 => 1 << (7 * (1 + rng.below(9))),
                    _ => rng.below(1 << 20) as u64 + 1,
                };
                pairs.push((cpu, count));
                map.insert(cpu, count);
            }
            let packed: PerCpu = pairs.iter().copied().collect();
            let what = format!("case {case}: {pairs:?}");
            assert_eq!(
                packed.iter().collect::<Vec<_>>(),
                map.iter().map(|(&c, &n)| (c, n)).collect::<Vec<_>>(),
                "{what}"
            );
            assert_eq!((packed.len(), packed.is_empty()), (map.len(), map.is_empty()), "{what}");
            if let Some((&c, &n)) = map.iter().next() {
                assert_eq!(packed.get(c), Some(n), "{what}");
            }
            let json = serde_json::to_string(&packed).unwrap();
            assert_eq!(json, serde_json::to_string(&map).unwrap(), "{what}");
            let yaml = serde_yaml::to_string(&packed).unwrap();
            assert_eq!(yaml, serde_yaml::to_string(&map).unwrap(), "{what}");
            assert_eq!(serde_json::from_str::<PerCpu>(&json).unwrap(), packed, "{what}");
            assert_eq!(serde_yaml::from_str::<PerCpu>(&yaml).unwrap(), packed, "{what}");
        }
        assert!(serde_json::from_str::<PerCpu>(r#"{"x": 1}"#).is_err());
        assert!(serde_json::from_str::<PerCpu>(r#"{"1": -1}"#).is_err());
    }

    /// The IRQ facts of the tree at `root`, with detail, the per-CPU counts read as the list is
    /// written (`stream`) or held: as JSON, as YAML, whether the counts streamed, the warnings.
    /// `real`: discovery's own CPU, kernel and NIC facts; else none.
    fn detail_irqs(root: &std::path::Path, stream: bool, real: bool) -> (String, String, bool, Vec<String>) {
        let host = crate::host::Host::new(root).unwrap();
        let mut scan = Scan::new(&host, super::super::ScanOptions { detail: true });
        let (cpu, kernel, nics) = if real {
            let cpu = super::super::cpu::read(&mut scan);
            let kernel = super::super::kernel::read(&mut scan);
            (cpu, kernel, super::super::nic::read(&mut scan))
        } else {
            Default::default()
        };
        let irqs = read_with(&mut scan, &cpu, &kernel, &nics, stream);
        let streamed = irqs.list.as_ref().is_some_and(IrqList::streamed);
        let json = serde_json::to_string(&irqs).unwrap();
        // Written twice, and from a copy: each writing reads the counts again from the start.
        assert_eq!(serde_json::to_string(&irqs.clone()).unwrap(), json);
        (json, serde_yaml::to_string(&irqs).unwrap(), streamed, scan.warnings().to_vec())
    }

    /// A detail scan's IRQ facts with the per-CPU counts read again as the list is written are
    /// byte for byte those with the counts held, in JSON and YAML, on every fixture tree (the
    /// host trees and the real dumps) and on generated tables; a table whose rows do not rise
    /// by IRQ number has its counts held.
    #[test]
    fn streamed_counts_are_written_as_the_held_ones() {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let unpacked = tempfile::tempdir().unwrap();
        let mut roots = Vec::new();
        for e in std::fs::read_dir(fixtures.join("hosts")).unwrap() {
            let p = e.unwrap().path();
            if p.join("proc/interrupts").is_file() {
                roots.push(p);
            }
        }
        for e in std::fs::read_dir(fixtures.join("real")).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "tgz") {
                let dest = unpacked.path().join(p.file_stem().unwrap());
                let gz = flate2::read::GzDecoder::new(std::fs::File::open(&p).unwrap());
                tar::Archive::new(gz).unpack(&dest).unwrap();
                roots.push(dest);
            }
        }
        // 3 host trees and 3 real dumps with a /proc/interrupts: one that went missing fails here.
        assert!(roots.len() >= 6, "{roots:?}");
        let mut per_cpu_entries = 0;
        for root in &roots {
            let streamed = detail_irqs(root, true, true);
            let held = detail_irqs(root, false, true);
            assert!(streamed.2 && !held.2, "{}: streamed {}, held {}", root.display(), streamed.2, held.2);
            assert_eq!(streamed.0, held.0, "{}: JSON", root.display());
            assert_eq!(streamed.1, held.1, "{}: YAML", root.display());
            assert_eq!(streamed.3, held.3, "{}: warnings", root.display());
            per_cpu_entries += streamed.0.matches("\"per_cpu\":{\"").count();
        }
        assert!(per_cpu_entries > 400, "only {per_cpu_entries} IRQs with per-CPU counts");

        let mut rng = crate::test_rng::Rng(0x0a11_57e4_3a3d);
        let (mut streamed_cases, mut held_cases, mut with_counts) = (0, 0, 0);
        for case in 0..600 {
            let rising = case % 4 != 0;
            let dir = tempfile::tempdir().unwrap();
            let r = dir.path();
            std::fs::create_dir_all(r.join("proc/irq")).unwrap();
            std::fs::write(r.join("proc/interrupts"), generated_table(&mut rng, rising)).unwrap();
            // Folders for some IRQs, with and without a row.
            for _ in 0..rng.below(6) {
                std::fs::create_dir_all(r.join(format!("proc/irq/{}", rng.below(40)))).unwrap();
            }
            let streamed = detail_irqs(r, true, false);
            let held = detail_irqs(r, false, false);
            assert_eq!(streamed.0, held.0, "case {case}: JSON");
            assert_eq!(streamed.1, held.1, "case {case}: YAML");
            assert_eq!(streamed.3, held.3, "case {case}: warnings");
            if streamed.2 {
                streamed_cases += 1;
                with_counts += usize::from(streamed.0.contains("\"per_cpu\":{\""));
            } else {
                held_cases += 1;
            }
        }
        assert!(
            streamed_cases > 300 && held_cases > 50 && with_counts > 200,
            "streamed {streamed_cases}, held {held_cases}, streamed with counts {with_counts}"
        );
    }

    /// The IRQ list of a detail scan as JSON values, after `change` rewrote `/proc/interrupts`
    /// in place between the scan and the writing of its facts.
    fn list_after_change(before: &str, after: &[u8]) -> Vec<serde_json::Value> {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "/proc/interrupts", before);
        let host = crate::host::Host::new(r).unwrap();
        let mut scan = Scan::new(&host, super::super::ScanOptions { detail: true });
        let irqs = read(&mut scan, &Cpu::default(), &Kernel::default(), &[]);
        assert!(irqs.list.as_ref().unwrap().streamed());
        // The same file (inode) rewritten, as the kernel's table changes under an open file.
        std::fs::write(r.join("proc/interrupts"), after).unwrap();
        let v = serde_json::to_value(&irqs).unwrap();
        v["list"].as_array().unwrap().clone()
    }

    /// A `/proc/interrupts` that changed between the scan and the writing of the facts: the
    /// counts are those of the second read, matched by IRQ number; an IRQ whose row is gone
    /// has `count` null and `per_cpu` empty; a row that appeared lists no new IRQ; a table
    /// that is gone or no longer a table gives every IRQ no counts. Never a panic.
    #[test]
    fn a_table_that_changed_before_the_facts_are_written_gives_the_second_reads_counts() {
        let before = "  CPU0 CPU1\n 1: 5 0 IO-APIC 1-edge i8042\n 8: 0 3 IO-APIC 8-edge rtc0\n 9: 1 1 IO-APIC 9-fasteoi acpi\nNMI: 0 0 Non-maskable\n";
        let counts = |v: &[serde_json::Value]| -> Vec<(u64, serde_json::Value, serde_json::Value)> {
            v.iter().map(|i| (i["irq"].as_u64().unwrap(), i["count"].clone(), i["per_cpu"].clone())).collect()
        };
        use serde_json::json;
        // Unchanged: the first read's counts.
        let same = list_after_change(before, before.as_bytes());
        assert_eq!(
            counts(&same),
            [(1, json!(5), json!({"0": 5})), (8, json!(3), json!({"1": 3})), (9, json!(2), json!({"0": 1, "1": 1}))]
        );
        assert_eq!(same[0]["actions"], json!(["i8042"]));
        // IRQ 8 gone, 7 and 12 added, the others counted on, a CPU come online.
        let after = "  CPU0 CPU1 CPU2\n 1: 6 0 4 IO-APIC 1-edge i8042\n 7: 1 1 1 IO-APIC 7-edge new\n 9: 1 2 0 IO-APIC 9-fasteoi acpi\n 12: 9 9 9 x\n";
        let changed = list_after_change(before, after.as_bytes());
        assert_eq!(
            counts(&changed),
            [
                (1, json!(10), json!({"0": 6, "2": 4})),
                (8, json!(null), json!({})),
                (9, json!(3), json!({"0": 1, "1": 2}))
            ]
        );
        // What the first read found stays: the gone IRQ's handler.
        assert_eq!(changed[1]["actions"], json!(["rtc0"]));
        // Rows out of order in the second read: the one that comes after a higher IRQ is not
        // found; the rest are.
        let unordered = "  CPU0 CPU1\n 9: 4 4 x\n 1: 7 7 y\n 8: 1 0 z\n";
        assert_eq!(
            counts(&list_after_change(before, unordered.as_bytes())),
            [(1, json!(null), json!({})), (8, json!(null), json!({})), (9, json!(8), json!({"0": 4, "1": 4}))]
        );
        let none = [(1, json!(null), json!({})), (8, json!(null), json!({})), (9, json!(null), json!({}))];
        let long_header = vec![b'1'; 3 << 20];
        let gone: [&[u8]; 5] = [b"", b"\n\n", b"not a header\n 1: 5 0 x\n", b"\xff\xfe", &long_header];
        for gone in gone {
            assert_eq!(
                counts(&list_after_change(before, gone)),
                none,
                "{:?}",
                String::from_utf8_lossy(&gone[..gone.len().min(40)])
            );
        }
        // Lines too long, blank or unreadable are passed over, as the first read does.
        let mut odd = b"  CPU0 CPU1\n\n 1: ".to_vec();
        odd.extend_from_slice(&b"1 ".repeat(1 << 20));
        odd.extend_from_slice(b"\nrubbish\n   \n 8: 2 2 rtc0\n");
        assert_eq!(
            counts(&list_after_change(before, &odd)),
            [(1, json!(null), json!({})), (8, json!(4), json!({"0": 2, "1": 2})), (9, json!(null), json!({}))]
        );
        // An IRQ the scan listed from its folder alone (no row) that gained a row shows its
        // counts; its handlers stay those of its folder.
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "/proc/interrupts", before);
        std::fs::create_dir_all(r.join("proc/irq/10/eth0-rx")).unwrap();
        let host = crate::host::Host::new(r).unwrap();
        let mut scan = Scan::new(&host, super::super::ScanOptions { detail: true });
        let irqs = read(&mut scan, &Cpu::default(), &Kernel::default(), &[]);
        assert_eq!(serde_json::to_value(&irqs).unwrap()["list"][3]["count"], json!(null));
        std::fs::write(r.join("proc/interrupts"), format!("{before} 10: 0 6 PCI-MSI 1-edge eth0-rx\n")).unwrap();
        let list = serde_json::to_value(&irqs).unwrap()["list"].as_array().unwrap().clone();
        assert_eq!(counts(&list)[3], (10, json!(6), json!({"1": 6})));
        assert_eq!((&list[3]["actions"], &list[3]["chip"]), (&json!(["eth0-rx"]), &json!(null)));
    }

    /// The kernel's own `/proc/interrupts` is read again from its start with `pread`, as a
    /// detail scan of this host reads its counts: the same IRQs as a plain read, in rising
    /// order, each found by the pass. (IRQs come and go rarely; a table that changed between
    /// the two reads is read again, up to five times.)
    #[test]
    fn this_hosts_proc_interrupts_is_read_again_from_its_start() {
        let Ok(file) = std::fs::File::open("/proc/interrupts") else { return };
        let source = CountsSource::new(file, crate::host::MAX_READ_BYTES).expect("pread of /proc/interrupts");
        for attempt in 0..5 {
            let (rows, _, rising) = read_rows(std::fs::File::open("/proc/interrupts").unwrap(), false).unwrap();
            assert!(rising, "the kernel writes its rows by rising IRQ number");
            let mut pass = source.pass();
            let found = rows.keys().filter(|&&n| pass.counts(n).is_some()).count();
            if found == rows.len() {
                return;
            }
            assert!(attempt < 4, "{found} of {} IRQs found by the second read", rows.len());
        }
    }

    /// The header alone is read for the CPU columns: the same columns as a whole parse, and
    /// nothing after the header's line is read (a reader that fails past it is never asked).
    #[test]
    fn the_header_is_read_without_the_table() {
        struct FailsAfter<'a>(&'a [u8]);
        impl std::io::Read for FailsAfter<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0.is_empty() {
                    return Err(std::io::Error::other("read past the header"));
                }
                let n = buf.len().min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let tables = fixture_tables();
        assert!(!tables.is_empty());
        for (name, bytes) in &tables {
            let text = String::from_utf8_lossy(bytes);
            let want = parse_interrupts(&text).unwrap().cpus;
            let header_end = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
            assert_eq!(read_interrupts_header(FailsAfter(&bytes[..header_end])), Ok(want), "{name}");
        }
        assert_eq!(read_interrupts_header(&b"\n  \r\n   CPU0   CPU3\r\n  0: x"[..]), Ok(vec![0, 3]));
        assert_eq!(read_interrupts_header(&b"\n \n"[..]), Err("empty file".to_string()));
        assert!(read_interrupts_header(&b"CPU0 CPUx\n"[..]).unwrap_err().contains("CPUx"));
        let long = format!("{}\n", "CPU0 ".repeat(300_000));
        assert!(read_interrupts_header(long.as_bytes()).unwrap_err().contains("header longer than"));
    }

    /// A line no kernel writes (2 MiB of counts) is a bad line, skipped whole; the rows after
    /// it are read, and a long tail keeps only what a row holds.
    #[test]
    fn an_overlong_line_is_skipped_and_the_rest_read() {
        let mut text = String::from("           CPU0       CPU1\n  0: ");
        text.push_str(&"1 ".repeat(1 << 20));
        text.push_str("\n 24: 5 6 IR-PCI-MSI 1-edge eth0-rx-0\n 25: 1 2 PCI-MSI 2-edge ");
        text.push_str(&"x ".repeat(100_000));
        text.push('\n');
        let (rows, bad) = read_interrupt_rows(text.as_bytes(), false).unwrap();
        assert_eq!(bad, ["line 2: longer than 1048576 bytes; not read"]);
        assert_eq!(rows.keys().copied().collect::<Vec<_>>(), [24, 25]);
        assert_eq!(rows[&24].actions, ["eth0-rx-0"]);
        assert_eq!(rows[&24].total, 11);
        assert_eq!(rows[&25].chip.as_deref(), Some("PCI-MSI"));
        let long_header = format!("{}\n", "CPU0 ".repeat(300_000));
        assert!(read_interrupt_rows(long_header.as_bytes(), false).unwrap_err().contains("header longer than"));
    }

    /// A sample `/proc/interrupts` of `tests/fixtures/parsers/` (part of the build: a missing
    /// one is a compile error, never a skipped test).
    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/parsers/", $name))
        };
    }

    fn row<'a>(i: &'a Interrupts, name: &str) -> &'a InterruptRow {
        i.rows.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no row {name}"))
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn x86_rows_of_4x_kernels_with_offline_cpu_columns() {
        let text = "           CPU0       CPU2       \n\
           0:        149          0   IO-APIC   2-edge      timer\n\
          24:          0          7  IR-PCI-MSI 524288-edge      eth0-TxRx-0\n\
          25:          1          0  IR-PCI-MSI 458752-edge      PCIe PME, pciehp\n\
          26:          0          0  IR-PCI-MSI 458753-edge\n\
         NMI:          0          3   Non-maskable interrupts\n\
         ERR:          5\n\
         MIS:          0\n";
        let i = parse_interrupts(text).unwrap();
        assert_eq!(i.cpus, vec![0, 2]);
        assert!(i.bad_lines.is_empty(), "{:?}", i.bad_lines);
        let r = row(&i, "24");
        assert_eq!(r.irq, Some(24));
        assert_eq!(r.counts, vec![0, 7]);
        assert_eq!(r.chip.as_deref(), Some("IR-PCI-MSI"));
        assert_eq!(r.hwirq, Some(524288));
        assert_eq!(r.trigger.as_deref(), Some("edge"));
        assert_eq!(r.actions, strings(&["eth0-TxRx-0"]));
        assert_eq!(row(&i, "25").actions, strings(&["PCIe PME", "pciehp"]));
        assert!(row(&i, "26").actions.is_empty());
        assert_eq!(row(&i, "0").hwirq, Some(2));
        let nmi = row(&i, "NMI");
        assert_eq!(nmi.irq, None);
        assert_eq!(nmi.description.as_deref(), Some("Non-maskable interrupts"));
        let err = row(&i, "ERR");
        assert_eq!(err.counts, vec![5]);
        assert_eq!(err.description, None);
    }

    #[test]
    fn per_device_msi_domains_of_6_2_kernels() {
        let text = "  CPU0 CPU1\n 75:  0  139  IR-PCI-MSIX-0000:1a:00.0    1-edge      eno3-TxRx-0\n";
        let i = parse_interrupts(text).unwrap();
        let r = row(&i, "75");
        assert_eq!(r.chip.as_deref(), Some("IR-PCI-MSIX-0000:1a:00.0"));
        assert_eq!(r.hwirq, Some(1));
        assert_eq!(r.actions, strings(&["eno3-TxRx-0"]));
        assert_eq!(irq_pci_address(r.chip.as_deref(), r.hwirq, &r.actions).as_deref(), Some("0000:1a:00.0"));
    }

    #[test]
    fn old_kernels_join_chip_and_handler() {
        let text = "  CPU0\n  1:  17960  IR-IO-APIC-edge      i8042\n 40:  0  DMAR_MSI-edge      dmar0\n  7:  0  XT-PIC-XT        parport0\n";
        let i = parse_interrupts(text).unwrap();
        let r = row(&i, "1");
        assert_eq!((r.chip.as_deref(), r.trigger.as_deref(), r.hwirq), (Some("IR-IO-APIC"), Some("edge"), None));
        assert_eq!(r.actions, strings(&["i8042"]));
        assert_eq!(row(&i, "40").chip.as_deref(), Some("DMAR_MSI"));
        // An unknown suffix stays part of the chip name.
        assert_eq!(row(&i, "7").chip.as_deref(), Some("XT-PIC-XT"));
        assert_eq!(row(&i, "7").trigger, None);
    }

    #[test]
    fn arm64_rows_show_the_trigger_and_ipis_touch_the_colon() {
        let text = "      CPU0       CPU1\n\
         10: 3287008667 3310445093     GICv3  27 Level     arch_timer\n\
         50:          0          0  ARMH0061:00   3 Edge      ACPI:Event\n\
         12:          0          0     GICv3  30 Level   -fasteoi  foo\n\
        IPI0:2768808080 2844211768       Rescheduling interrupts\n\
        Err:          0\n";
        let i = parse_interrupts(text).unwrap();
        let r = row(&i, "10");
        assert_eq!((r.chip.as_deref(), r.hwirq, r.trigger.as_deref()), (Some("GICv3"), Some(27), Some("Level")));
        assert_eq!(r.total(), 3287008667 + 3310445093);
        let r = row(&i, "50");
        assert_eq!(r.chip.as_deref(), Some("ARMH0061:00"));
        assert_eq!(r.actions, strings(&["ACPI:Event"]));
        assert_eq!(row(&i, "12").actions, strings(&["foo"]));
        let ipi = row(&i, "IPI0");
        assert_eq!(ipi.counts, vec![2768808080, 2844211768]);
        assert_eq!(ipi.description.as_deref(), Some("Rescheduling interrupts"));
    }

    #[test]
    fn row_names_with_spaces_and_bad_lines_are_reported() {
        let text = "CPU0 CPU1\nI/O dev:  1  2   Some source\n 30:  1  IO-APIC 2-edge x\nrubbish\n";
        let i = parse_interrupts(text).unwrap();
        assert_eq!(row(&i, "I/O dev").counts, vec![1, 2]);
        assert_eq!(i.bad_lines.len(), 2, "{:?}", i.bad_lines);
        assert!(i.bad_lines[0].contains("IRQ 30 has 1 counts for 2 CPUs"));
        assert!(i.bad_lines[1].starts_with("line 4"));
        assert!(parse_interrupts("").is_err());
        assert!(parse_interrupts("  0: 1 2\n").is_err());
    }

    #[test]
    fn node_exporter_x86_laptop_sample() {
        let i = parse_interrupts(fixture!("interrupts-x86-laptop.txt")).unwrap();
        assert!(i.bad_lines.is_empty(), "{:?}", i.bad_lines);
        assert_eq!(i.cpus, vec![0, 1, 2, 3]);
        assert_eq!(i.rows.iter().filter(|r| r.irq.is_some()).count(), 15);
        let r = row(&i, "16");
        assert_eq!((r.chip.as_deref(), r.trigger.as_deref()), (Some("IR-IO-APIC"), Some("fasteoi")));
        assert_eq!(r.actions, strings(&["ehci_hcd:usb1", "mmc0"]));
        assert_eq!(row(&i, "46").actions, strings(&["iwlwifi"]));
        assert_eq!(row(&i, "LOC").description.as_deref(), Some("Local timer interrupts"));
        assert_eq!(row(&i, "MIS").counts, vec![0]);
    }

    #[test]
    fn node_exporter_aarch64_gicv3_sample() {
        let i = parse_interrupts(fixture!("interrupts-aarch64-gicv3.txt")).unwrap();
        assert!(i.bad_lines.is_empty(), "{:?}", i.bad_lines);
        assert_eq!(i.cpus.len(), 8);
        let r = row(&i, "57");
        assert_eq!((r.chip.as_deref(), r.hwirq), (Some("ITS-MSI"), Some(81920)));
        assert_eq!(r.actions, strings(&["ena-mgmnt@pci:0000:00:05.0"]));
        // The ITS numbers PCI MSIs like the x86 domain: the eth0 queues share 00:05.0.
        let q = row(&i, "58");
        assert_eq!(irq_pci_address(q.chip.as_deref(), q.hwirq, &q.actions).as_deref(), Some("0000:00:05.0"));
        assert_eq!(row(&i, "IPI3").description.as_deref(), Some("CPU stop (for crash dump) interrupts"));
        assert_eq!(row(&i, "Err").counts, vec![0]);
    }

    #[test]
    fn pci_address_from_chip_handler_or_msi_hwirq() {
        let a = |chip: &str, hwirq: u64, actions: &[&str]| irq_pci_address(Some(chip), Some(hwirq), &strings(actions));
        // 13107200 = 0x19 << 19: bus 0x19, device 0, function 0.
        assert_eq!(a("IR-PCI-MSI", 13107200, &["x"]).as_deref(), Some("0000:19:00.0"));
        assert_eq!(a("PCI-MSI", 81921, &["virtio2-input"]).as_deref(), Some("0000:00:05.0"));
        assert_eq!(a("IR-PCI-MSI", 1, &["mlx5_comp0@pci:0000:3B:00.1"]).as_deref(), Some("0000:3b:00.1"));
        assert_eq!(a("IR-PCI-MSI", 288768, &["ahci[0000:00:11.5]"]).as_deref(), Some("0000:00:11.5"));
        assert_eq!(a("IO-APIC", 2, &["timer"]), None);
        assert_eq!(a("DMAR-MSI", 6, &["dmar6"]), None);
    }

    #[test]
    fn nics_match_by_address_then_longest_name() {
        let nic = |name: &str, pci: Option<&str>, device: Option<&str>| NicKey {
            key: name.into(),
            name: Some(name.into()),
            pci_address: pci.map(Into::into),
            device: device.map(Into::into),
            numa_node: None,
        };
        let nics =
            vec![nic("eth1", Some("0000:3b:00.0"), None), nic("eth10", None, None), nic("ens4", None, Some("virtio1"))];
        let m = |pci: Option<&str>, a: &str| match_nic(&nics, pci, &strings(&[a])).map(|n| n.key.as_str());
        assert_eq!(m(Some("0000:3b:00.0"), "i40e-0000:3b:00.0:misc"), Some("eth1"));
        assert_eq!(m(None, "eth10-TxRx-0"), Some("eth10"));
        assert_eq!(m(None, "eth1"), Some("eth1"));
        assert_eq!(m(None, "eth100"), None);
        assert_eq!(m(None, "virtio1-input.0"), Some("ens4"));
        assert_eq!(m(None, "virtio10-input.0"), None);
        assert_eq!(m(Some("0000:00:01.0"), "ahci"), None);
    }

    #[test]
    fn debugfs_state_names_managed_irqs() {
        let managed = "handler:  handle_edge_irq\ndstate:   0x3740a200\n            IRQ_TYPE_EDGE_RISING\n            IRQD_ACTIVATED\n            IRQD_AFFINITY_MANAGED\n";
        assert!(parse_debugfs_flags(managed).managed);
        assert_eq!(parse_debugfs_flags("dstate:   0x00400200\n            IRQD_ACTIVATED\n"), DebugFlags::default());
        let f = parse_debugfs_flags(
            "handler:  handle_edge_irq\ndstate:   0x3740a200\n            IRQD_PER_CPU\n            IRQD_AFFINITY_MANAGED\n",
        );
        assert!(f.managed && f.per_cpu && !f.no_balancing);
    }

    fn write(root: &std::path::Path, path: &str, text: &str) {
        let p = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn read_summarises_a_small_tree() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(
            r,
            "/proc/interrupts",
            "   CPU0  CPU1  CPU2  CPU3\n\
             0:  5  0  0  0  IO-APIC  2-edge  timer\n\
            24:  0  9  0  0  IR-PCI-MSI 13107200-edge  eth0-TxRx-0\n\
            25:  0  0  0  4  IR-PCI-MSI 13107201-edge  eth0-TxRx-1\n\
            LOC: 1 2 3 4  Local timer interrupts\n",
        );
        write(r, "/proc/irq/default_smp_affinity", "3\n");
        for (n, aff, eff) in [(0, "0-3", "0"), (24, "1", "1"), (25, "2-3", "3"), (26, "0-3", "")] {
            write(r, &format!("/proc/irq/{n}/smp_affinity_list"), &format!("{aff}\n"));
            write(r, &format!("/proc/irq/{n}/effective_affinity_list"), &format!("{eff}\n"));
            write(r, &format!("/proc/irq/{n}/node"), "-1\n");
        }
        // IRQ 27: a handler known only from its directory.
        write(r, "/proc/irq/27/smp_affinity", "8\n");
        std::fs::create_dir_all(r.join("proc/irq/27/eth0-TxRx-2")).unwrap();
        // IRQ 28: a virtio-net queue, named after the virtio device behind ens4.
        write(r, "/proc/irq/28/smp_affinity_list", "0\n");
        std::fs::create_dir_all(r.join("proc/irq/28/virtio1-input.0")).unwrap();
        std::fs::create_dir_all(r.join("sys/class/net/ens4")).unwrap();
        std::os::unix::fs::symlink("../../../virtio1", r.join("sys/class/net/ens4/device")).unwrap();

        let host = crate::host::Host::new(r).unwrap();
        let mut scan = Scan::new(&host, super::super::ScanOptions { detail: true });
        let nics = vec![
            Nic {
                name: Some("eth0".into()),
                pci_address: Some("0000:19:00.0".into()),
                numa_node: Some(1),
                ..Nic::default()
            },
            // A VLAN on eth0 shares nothing: virtual devices are skipped.
            Nic {
                name: Some("eth0.100".into()),
                pci_address: Some("0000:19:00.0".into()),
                r#virtual: true,
                ..Nic::default()
            },
            Nic { name: Some("ens4".into()), ..Nic::default() },
        ];
        let cpu = Cpu { isolated: CpuList::parse("2").ok(), nohz_full: CpuList::parse("3").ok(), ..Cpu::default() };
        let irqs = read(&mut scan, &cpu, &Kernel::default(), &nics);
        assert!(scan.warnings().is_empty(), "{:?}", scan.warnings());
        assert_eq!((irqs.total, irqs.dirs, irqs.active), (6, 6, 5));
        assert_eq!(irqs.default_affinity.as_ref().map(ToString::to_string).as_deref(), Some("0-1"));
        let on_iso: Vec<u32> = irqs.on_isolated.iter().map(|i| i.irq).collect();
        // IRQ 0 may go to CPUs 0-3 but is delivered to CPU 0 only: not on an isolated CPU.
        assert_eq!(on_iso, vec![25, 27]);
        let eth0 = &irqs.nics["eth0"];
        assert_eq!((eth0.count, eth0.cpus.to_string(), eth0.numa_node), (3, "1,3".to_string(), Some(1)));
        assert_eq!(irqs.nics.keys().collect::<Vec<_>>(), vec!["ens4", "eth0"]);
        assert_eq!((irqs.nics["ens4"].count, irqs.nics["ens4"].cpus.to_string()), (1, "0".to_string()));
        assert_eq!(irqs.by_cpu, BTreeMap::from([(0, 2), (1, 1), (3, 2)]));
        let written = serde_json::to_value(&irqs).unwrap();
        let list = irqs.list.unwrap();
        assert!(list.streamed(), "the counts are read as the list is written");
        let list = list.irqs;
        assert_eq!(list.len(), 6);
        let i25 = &list[2];
        assert_eq!(i25.count, Some(4));
        assert!(i25.per_cpu.is_empty(), "not held");
        assert_eq!(
            (&written["list"][2]["count"], &written["list"][2]["per_cpu"]),
            (&serde_json::json!(4), &serde_json::json!({"3": 4}))
        );
        assert_eq!(i25.pci_address.as_deref(), Some("0000:19:00.0"));
        assert_eq!(i25.node, None);
        assert_eq!(i25.managed, None);
        assert_eq!(list[4].actions, strings(&["eth0-TxRx-2"]));
        assert_eq!(list[4].affinity.as_ref().unwrap().to_string(), "3");
        assert_eq!(list[3].count, None, "IRQ 26 has no row");
    }
}
