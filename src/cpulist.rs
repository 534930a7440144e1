//! CPU sets in the two text forms the kernel writes: lists (`0-5,48-53`, `cpulist`,
//! `isolated`, `*_list` files, `isolcpus=`) and hex masks (`cpumap`, `smp_affinity`:
//! comma-separated 32-bit words, most significant first). See the kernel's
//! lib/bitmap-str.c (`bitmap_parselist`, `bitmap_parse`) and
//! Documentation/admin-guide/kernel-parameters.rst, "cpu lists".
//!
//! The surprising parts: an empty set is written as "", "\n", "\0\n" or "(null)" padded with
//! spaces, depending on the file and kernel; and a list may use the group syntax
//! `0-1023:2/256` (first 2 of every 256) as well as `0-62:2` (every 2nd CPU).

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A set of CPU numbers. Displays in the kernel's canonical list form.
///
/// Held as the list form holds it: inclusive ranges, ascending, neither overlapping nor
/// touching (one set, one form, so derived equality and hashing are the set's). An IRQ's
/// `0-255` is one pair of numbers; as a tree of CPU numbers it was about 2.5 KB, and a
/// detail scan of 4,000 IRQs keeps two lists per IRQ.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CpuList(Vec<(u32, u32)>);

/// Ordered as the sorted sequences of CPU numbers compare (as a set of numbers would be).
impl Ord for CpuList {
    fn cmp(&self, other: &CpuList) -> Ordering {
        self.iter().cmp(other.iter())
    }
}

impl PartialOrd for CpuList {
    fn partial_cmp(&self, other: &CpuList) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Why a CPU list or mask could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CPU {kind} {text:?}: {reason}")]
pub struct CpuListError {
    kind: &'static str,
    text: String,
    reason: String,
}

/// Highest CPU number accepted; the kernel's NR_CPUS tops out at 8192.
const MAX_CPU: u32 = 8191;

fn clean(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_whitespace() || c == '\0')
}

impl CpuList {
    pub fn new() -> CpuList {
        CpuList::default()
    }

    /// Parses a CPU list: `0-3,8-11`, `0-62:2`, `0-1023:2/256`, `(null)`, empty.
    pub fn parse(text: &str) -> Result<CpuList, CpuListError> {
        Self::parse_with_last(text, None)
    }

    /// Parses a CPU list where `N` stands for the last CPU (`nr_cpu_ids - 1`), as the
    /// kernel's command line accepts since Linux 5.7.
    pub fn parse_with_last(text: &str, last: Option<u32>) -> Result<CpuList, CpuListError> {
        let t = clean(text);
        let err = |reason: String| CpuListError { kind: "list", text: text.to_string(), reason };
        let mut ranges = Vec::new();
        if t.is_empty() || t == "(null)" {
            return Ok(CpuList(ranges));
        }
        let num = |s: &str| -> Result<u32, CpuListError> {
            let s = s.trim();
            let n = if s == "N" {
                last.ok_or_else(|| err("'N' (last CPU) is not known here".into()))?
            } else {
                s.parse::<u32>().map_err(|_| err(format!("{s:?} is not a CPU number")))?
            };
            if n > MAX_CPU {
                return Err(err(format!("CPU {n} is beyond the kernel's limit of {MAX_CPU}")));
            }
            Ok(n)
        };
        for part in t.split(',') {
            let part = part.trim();
            if part.is_empty() {
                return Err(err("empty element".into()));
            }
            let (range, group) = match part.split_once(':') {
                Some((r, g)) => (r, Some(g)),
                None => (part, None),
            };
            let (start, end) = match range.split_once('-') {
                Some((a, b)) => (num(a)?, num(b)?),
                None => {
                    let n = num(range)?;
                    (n, n)
                }
            };
            if start > end {
                return Err(err(format!("range {start}-{end} runs backwards")));
            }
            // `a-b:used/group`: the first `used` CPUs of every `group`; `a-b:stride`: every
            // `stride`-th CPU. Both count from `a`.
            let (used, group) = match group {
                None => (1, 1),
                Some(g) => match g.split_once('/') {
                    Some((u, gs)) => (num(u)?, num(gs)?),
                    None => (1, num(g)?),
                },
            };
            if used == 0 || group == 0 || used > group {
                return Err(err(format!("group {used}/{group} is not valid")));
            }
            if used == group {
                ranges.push((start, end));
                continue;
            }
            // The first `used` CPUs of each block of `group`, from `start`.
            let mut block = start;
            loop {
                ranges.push((block, end.min(block.saturating_add(used - 1))));
                match block.checked_add(group) {
                    Some(next) if next <= end => block = next,
                    _ => break,
                }
            }
        }
        Ok(CpuList::from_ranges(ranges))
    }

    /// Parses a hex CPU mask: `00000000,003f0000,0000003f` (32-bit words, most significant
    /// first), `ff`, `0x3`, or empty.
    pub fn parse_mask(text: &str) -> Result<CpuList, CpuListError> {
        let t = clean(text);
        let err = |reason: String| CpuListError { kind: "mask", text: text.to_string(), reason };
        let mut cpus = Vec::new();
        if t.is_empty() || t == "(null)" {
            return Ok(CpuList::new());
        }
        let t = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")).unwrap_or(t);
        let words: Vec<&str> = t.split(',').collect();
        for (i, word) in words.iter().rev().enumerate() {
            let word = word.trim();
            if word.is_empty() || word.len() > 8 && words.len() > 1 {
                return Err(err(format!("{word:?} is not a 32-bit hex word")));
            }
            // A single long word (no commas) is a plain hex number: read it nibble by nibble.
            let base = i as u32 * 32;
            for (j, c) in word.chars().rev().enumerate() {
                let nibble = c.to_digit(16).ok_or_else(|| err(format!("{c:?} is not a hex digit")))?;
                for bit in 0..4 {
                    if nibble & (1 << bit) != 0 {
                        let cpu = base + j as u32 * 4 + bit;
                        if cpu > MAX_CPU {
                            return Err(err(format!("CPU {cpu} is beyond the kernel's limit of {MAX_CPU}")));
                        }
                        cpus.push(cpu);
                    }
                }
            }
        }
        Ok(CpuList::from_cpus(cpus))
    }

    pub fn from_cpus(cpus: impl IntoIterator<Item = u32>) -> CpuList {
        let mut v: Vec<u32> = cpus.into_iter().collect();
        crate::sort::sort_by(&mut v, Ord::cmp);
        v.dedup();
        CpuList::from_ranges(v.into_iter().map(|c| (c, c)).collect())
    }

    /// The canonical form of any inclusive ranges: sorted, overlapping and touching ones
    /// merged.
    fn from_ranges(mut ranges: Vec<(u32, u32)>) -> CpuList {
        crate::sort::sort_by(&mut ranges, Ord::cmp);
        let mut out: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
        for (s, e) in ranges {
            match out.last_mut() {
                Some(last) if last.1.checked_add(1).is_none_or(|next| s <= next) => last.1 = last.1.max(e),
                _ => out.push((s, e)),
            }
        }
        CpuList(out)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.iter().map(|&(s, e)| (e - s) as usize + 1).sum()
    }
    /// The index of the first range that ends at or after `cpu`.
    fn range_at(&self, cpu: u32) -> usize {
        self.0.partition_point(|&(_, e)| e < cpu)
    }
    pub fn contains(&self, cpu: u32) -> bool {
        self.0.get(self.range_at(cpu)).is_some_and(|&(s, _)| s <= cpu)
    }
    pub fn insert(&mut self, cpu: u32) {
        let i = self.range_at(cpu);
        if self.0.get(i).is_some_and(|&(s, _)| s <= cpu) {
            return;
        }
        let joins_left = i > 0 && self.0[i - 1].1.checked_add(1) == Some(cpu);
        let joins_right = self.0.get(i).is_some_and(|&(s, _)| cpu.checked_add(1) == Some(s));
        match (joins_left, joins_right) {
            (true, true) => {
                self.0[i - 1].1 = self.0[i].1;
                self.0.remove(i);
            }
            (true, false) => self.0[i - 1].1 = cpu,
            (false, true) => self.0[i].0 = cpu,
            (false, false) => self.0.insert(i, (cpu, cpu)),
        }
    }
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().flat_map(|&(s, e)| s..=e)
    }
    pub fn first(&self) -> Option<u32> {
        self.0.first().map(|r| r.0)
    }
    pub fn last(&self) -> Option<u32> {
        self.0.last().map(|r| r.1)
    }
    pub fn union(&self, other: &CpuList) -> CpuList {
        CpuList::from_ranges(self.0.iter().chain(&other.0).copied().collect())
    }
    pub fn intersection(&self, other: &CpuList) -> CpuList {
        let (a, b) = (&self.0, &other.0);
        let (mut i, mut j) = (0, 0);
        let mut out = Vec::new();
        while i < a.len() && j < b.len() {
            let (s, e) = (a[i].0.max(b[j].0), a[i].1.min(b[j].1));
            if s <= e {
                out.push((s, e));
            }
            if a[i].1 < b[j].1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        // Pieces of canonical sets are apart already.
        CpuList(out)
    }
    pub fn difference(&self, other: &CpuList) -> CpuList {
        let b = &other.0;
        let mut out = Vec::new();
        let mut j = 0;
        for &(s, e) in &self.0 {
            // Ranges of `other` that end before this one starts end before every later one.
            while j < b.len() && b[j].1 < s {
                j += 1;
            }
            let mut from = s;
            let mut left = true;
            let mut k = j;
            while k < b.len() && b[k].0 <= e {
                if b[k].0 > from {
                    out.push((from, b[k].0 - 1));
                }
                if b[k].1 >= e {
                    left = false;
                    break;
                }
                // b[k].1 < e: no overflow.
                from = b[k].1 + 1;
                k += 1;
            }
            if left {
                out.push((from, e));
            }
        }
        CpuList(out)
    }
    pub fn is_subset(&self, other: &CpuList) -> bool {
        self.difference(other).is_empty()
    }
    pub fn is_disjoint(&self, other: &CpuList) -> bool {
        self.intersection(other).is_empty()
    }

    /// The kernel's mask form for `nr_cpus` CPUs: 32-bit words, most significant first.
    pub fn to_mask(&self, nr_cpus: u32) -> String {
        let bits = nr_cpus.max(self.last().map_or(1, |l| l + 1));
        let nwords = bits.div_ceil(32).max(1);
        let mut words = vec![0u32; nwords as usize];
        for cpu in self.iter() {
            words[(cpu / 32) as usize] |= 1 << (cpu % 32);
        }
        let hex: Vec<String> = words.iter().rev().map(|w| format!("{w:08x}")).collect();
        let mut s = hex.join(",");
        // The kernel trims the leading word to the digits nr_cpus needs.
        let lead_digits = ((bits - (nwords - 1) * 32) as usize).div_ceil(4);
        if lead_digits < 8 {
            s.replace_range(0..8 - lead_digits, "");
        }
        s
    }
}

impl fmt::Display for CpuList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(start, end)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if end > start {
                write!(f, "{start}-{end}")?;
            } else {
                write!(f, "{start}")?;
            }
        }
        Ok(())
    }
}

impl FromIterator<u32> for CpuList {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> CpuList {
        CpuList::from_cpus(iter)
    }
}

impl Serialize for CpuList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CpuList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<CpuList, D::Error> {
        let s = String::deserialize(d)?;
        CpuList::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The range form against a plain set of numbers, on random sets (dense, sparse, touching
    /// and overlapping ranges, the ends of u32): every operation gives the set's answer.
    #[test]
    fn ranges_behave_as_a_set_of_numbers() {
        use std::collections::BTreeSet;
        let mut seed = 0x9e37_79b9_u32;
        let mut rand = move |n: u32| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed % n
        };
        let mut sets: Vec<BTreeSet<u32>> = vec![BTreeSet::new(), [u32::MAX, u32::MAX - 1, 0].into()];
        for _ in 0..200 {
            let span = [8, 40, 300][rand(3) as usize];
            let n = rand(30);
            sets.push((0..n).map(|_| rand(span)).collect());
        }
        let of = |s: &BTreeSet<u32>| {
            let mut l = CpuList::new();
            for &c in s {
                l.insert(c);
            }
            l
        };
        for a in &sets {
            let la = of(a);
            assert_eq!(la, CpuList::from_cpus(a.iter().copied()), "{a:?}");
            assert_eq!(la.iter().collect::<Vec<_>>(), a.iter().copied().collect::<Vec<_>>());
            assert_eq!(la.len(), a.len());
            assert_eq!((la.first(), la.last()), (a.first().copied(), a.last().copied()));
            assert_eq!(
                CpuList::parse(&la.to_string()).unwrap_or_default(),
                if a.iter().any(|&c| c > MAX_CPU) { CpuList::default() } else { la.clone() }
            );
            for c in 0..310 {
                assert_eq!(la.contains(c), a.contains(&c));
            }
            for b in sets.iter().take(40) {
                let lb = of(b);
                let set = |s: BTreeSet<u32>| of(&s);
                assert_eq!(la.union(&lb), set(a.union(b).copied().collect()), "{a:?} | {b:?}");
                assert_eq!(la.intersection(&lb), set(a.intersection(b).copied().collect()), "{a:?} & {b:?}");
                assert_eq!(la.difference(&lb), set(a.difference(b).copied().collect()), "{a:?} - {b:?}");
                assert_eq!(la.is_subset(&lb), a.is_subset(b));
                assert_eq!(la.is_disjoint(&lb), a.is_disjoint(b));
                assert_eq!(la.cmp(&lb), a.cmp(b), "{a:?} cmp {b:?}");
            }
        }
    }

    fn list(s: &str) -> String {
        CpuList::parse(s).unwrap().to_string()
    }
    fn mask(s: &str) -> String {
        CpuList::parse_mask(s).unwrap().to_string()
    }

    #[test]
    fn lists_in_every_form_the_kernel_writes() {
        assert_eq!(list("0-5,48-53\n"), "0-5,48-53");
        assert_eq!(list("0,2,4"), "0,2,4");
        assert_eq!(list("0-1"), "0-1");
        assert_eq!(list("5,3,4,1"), "1,3-5");
        assert_eq!(list("0-62:2"), list(&(0..=62).step_by(2).map(|c| c.to_string()).collect::<Vec<_>>().join(",")));
        assert_eq!(list("0-1023:2/256"), "0-1,256-257,512-513,768-769");
        // hwloc-32intel64-2p8co2t nohz_full: a NUL byte and a newline.
        assert_eq!(list("\0\n"), "");
        // utillinux-epyc7451 nohz_full: "(null)" left-padded with spaces.
        assert_eq!(list(&format!("{}(null)\n", " ".repeat(80))), "");
        assert_eq!(list(""), "");
        assert_eq!(CpuList::parse_with_last("2-N", Some(7)).unwrap().to_string(), "2-7");
    }

    #[test]
    fn bad_lists_name_the_problem() {
        assert!(CpuList::parse("3-1").unwrap_err().to_string().contains("backwards"));
        assert!(CpuList::parse("a").unwrap_err().to_string().contains("\"a\" is not a CPU number"));
        assert!(CpuList::parse("1,,2").is_err());
        assert!(CpuList::parse("0-9:3/2").is_err());
        assert!(CpuList::parse("99999").is_err());
        assert!(CpuList::parse("2-N").is_err());
    }

    #[test]
    fn masks_of_32_bit_words() {
        // utillinux-epyc7451 node0/cpumap.
        assert_eq!(mask("00000000,003f0000,0000003f\n"), "0-5,48-53");
        assert_eq!(mask("ff"), "0-7");
        assert_eq!(mask("0x3"), "0-1");
        // cnto-r640-rt-worker1 tuned.non_isolcpus.
        assert_eq!(mask("0000ffff,ffffffff,fffff81f"), "0-4,11-79");
        assert_eq!(mask("00000000"), "");
        assert_eq!(mask("\0\n"), "");
        assert!(CpuList::parse_mask("xyz").is_err());
        assert!(CpuList::parse_mask("123456789,0").is_err());
    }

    #[test]
    fn mask_round_trip() {
        let set = CpuList::parse("0-4,11-79").unwrap();
        assert_eq!(set.to_mask(80), "ffff,ffffffff,fffff81f");
        assert_eq!(CpuList::parse_mask(&set.to_mask(80)).unwrap(), set);
        assert_eq!(CpuList::parse("1").unwrap().to_mask(4), "2");
        assert_eq!(CpuList::parse("").unwrap().to_mask(2), "0");
    }

    #[test]
    fn set_operations() {
        let a = CpuList::parse("0-7").unwrap();
        let b = CpuList::parse("4-11").unwrap();
        assert_eq!(a.intersection(&b).to_string(), "4-7");
        assert_eq!(a.difference(&b).to_string(), "0-3");
        assert_eq!(a.union(&b).to_string(), "0-11");
    }
}
