//! CPU sets in the two text forms the kernel writes: lists (`0-5,48-53`, `cpulist`,
//! `isolated`, `*_list` files, `isolcpus=`) and hex masks (`cpumap`, `smp_affinity`:
//! comma-separated 32-bit words, most significant first). See the kernel's
//! lib/bitmap-str.c (`bitmap_parselist`, `bitmap_parse`) and
//! Documentation/admin-guide/kernel-parameters.rst, "cpu lists".
//!
//! The surprising parts: an empty set is written as "", "\n", "\0\n" or "(null)" padded with
//! spaces, depending on the file and kernel; and a list may use the group syntax
//! `0-1023:2/256` (first 2 of every 256) as well as `0-62:2` (every 2nd CPU).

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A set of CPU numbers. Displays in the kernel's canonical list form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CpuList(BTreeSet<u32>);

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
        let mut set = BTreeSet::new();
        if t.is_empty() || t == "(null)" {
            return Ok(CpuList(set));
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
            for cpu in start..=end {
                if (cpu - start) % group < used {
                    set.insert(cpu);
                }
            }
        }
        Ok(CpuList(set))
    }

    /// Parses a hex CPU mask: `00000000,003f0000,0000003f` (32-bit words, most significant
    /// first), `ff`, `0x3`, or empty.
    pub fn parse_mask(text: &str) -> Result<CpuList, CpuListError> {
        let t = clean(text);
        let err = |reason: String| CpuListError { kind: "mask", text: text.to_string(), reason };
        let mut set = BTreeSet::new();
        if t.is_empty() || t == "(null)" {
            return Ok(CpuList(set));
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
                        set.insert(cpu);
                    }
                }
            }
        }
        Ok(CpuList(set))
    }

    pub fn from_cpus(cpus: impl IntoIterator<Item = u32>) -> CpuList {
        CpuList(cpus.into_iter().collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn contains(&self, cpu: u32) -> bool {
        self.0.contains(&cpu)
    }
    pub fn insert(&mut self, cpu: u32) {
        self.0.insert(cpu);
    }
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().copied()
    }
    pub fn first(&self) -> Option<u32> {
        self.0.first().copied()
    }
    pub fn last(&self) -> Option<u32> {
        self.0.last().copied()
    }
    pub fn union(&self, other: &CpuList) -> CpuList {
        CpuList(self.0.union(&other.0).copied().collect())
    }
    pub fn intersection(&self, other: &CpuList) -> CpuList {
        CpuList(self.0.intersection(&other.0).copied().collect())
    }
    pub fn difference(&self, other: &CpuList) -> CpuList {
        CpuList(self.0.difference(&other.0).copied().collect())
    }
    pub fn is_subset(&self, other: &CpuList) -> bool {
        self.0.is_subset(&other.0)
    }
    pub fn is_disjoint(&self, other: &CpuList) -> bool {
        self.0.is_disjoint(&other.0)
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
        let mut first = true;
        let mut iter = self.0.iter().copied().peekable();
        while let Some(start) = iter.next() {
            let mut end = start;
            while iter.peek() == Some(&(end + 1)) {
                end = iter.next().unwrap_or(end);
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
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
        CpuList(iter.into_iter().collect())
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
