//! A small deterministic generator for the generated unit tests (no dependency): xorshift64.
//! The integration tests have their own in tests/support (another crate).

pub(crate) struct Rng(pub u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n`.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub(crate) fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }

    /// One to eight characters of `alphabet`.
    pub(crate) fn word(&mut self, alphabet: &str) -> String {
        let a: Vec<char> = alphabet.chars().collect();
        (0..1 + self.below(8)).map(|_| a[self.below(a.len())]).collect()
    }

    /// A string of up to `max` characters drawn mostly from `hostile`.
    pub(crate) fn string(&mut self, hostile: &[char], max: usize) -> String {
        let n = self.below(max + 1);
        (0..n)
            .map(|_| match self.below(4) {
                0 => char::from(b'a' + self.below(26) as u8),
                _ => hostile[self.below(hostile.len())],
            })
            .collect()
    }
}
