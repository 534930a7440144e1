//! Stable sorting by a key or a comparison, with one copy of the standard library's sort in a
//! binary.
//!
//! `slice::sort_by_key` and `sort_by` are generic over the closure: every call site gets its
//! own copy of std's stable sort (driftsort, quicksort and the small sorts: about 3 KB at
//! opt-level "z"). The module binaries are copied to every host for every task, and twenty-odd
//! sorts cost tens of KB in each. These sort the positions instead — one non-generic sort
//! over `usize` for all callers — then move the elements into place along the permutation's
//! cycles (no `Clone` needed, no second buffer of `T`). The result is what std's stable sort
//! gives: equal elements keep their order.

use std::cmp::Ordering;

/// Sorts `v` by `cmp`, stably.
pub fn sort_by<T>(v: &mut [T], cmp: impl Fn(&T, &T) -> Ordering) {
    let mut order: Vec<usize> = (0..v.len()).collect();
    sort_positions(&mut order, &|a, b| cmp(&v[a], &v[b]));
    permute(v, order);
}

/// Sorts `v` by `key`, stably.
pub fn sort_by_key<T, K: Ord>(v: &mut [T], key: impl Fn(&T) -> K) {
    sort_by(v, |a, b| key(a).cmp(&key(b)));
}

/// The one instance of std's stable sort: positions by the caller's comparison.
fn sort_positions(order: &mut [usize], cmp: &dyn Fn(usize, usize) -> Ordering) {
    order.sort_by(|&a, &b| cmp(a, b));
}

/// Puts `v` in the order `order` gives (`order[i]` is the old position of the element that
/// goes to `i`), swapping along each cycle of the permutation: at most n - 1 swaps.
fn permute<T>(v: &mut [T], mut order: Vec<usize>) {
    for start in 0..order.len() {
        let mut cur = start;
        loop {
            let from = order[cur];
            // Placed: a later start skips this position.
            order[cur] = cur;
            if from == start || from == cur {
                break;
            }
            v.swap(cur, from);
            cur = from;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_as_std_does_and_keeps_equal_elements_in_order() {
        // Pairs (key, original position): ties show whether the sort is stable.
        let mut seed = 0x2545_f491_u32;
        for len in [0usize, 1, 2, 3, 7, 20, 64, 257, 1000] {
            let mut v: Vec<(u32, usize)> = (0..len)
                .map(|i| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    (seed % 17, i)
                })
                .collect();
            let mut want = v.clone();
            want.sort_by_key(|p| p.0);
            sort_by_key(&mut v, |p| p.0);
            assert_eq!(v, want, "len {len}");
            // Descending, through sort_by.
            want.sort_by_key(|b| std::cmp::Reverse(b.0));
            sort_by(&mut v, |a, b| b.0.cmp(&a.0));
            assert_eq!(v, want, "len {len}, descending");
        }
    }

    #[test]
    fn moves_elements_without_cloning_them() {
        let mut v: Vec<Box<str>> = ["delta", "alpha", "charlie", "bravo"].map(Box::from).to_vec();
        sort_by_key(&mut v, |s| s.len());
        assert_eq!(v.iter().map(|s| &**s).collect::<Vec<_>>(), ["delta", "alpha", "bravo", "charlie"]);
    }
}
