//! One stable sort for every element type. Each `sort_by`/`sort_by_key`/`sort` (and each
//! `collect` into a `BTreeMap`/`BTreeSet`, which sorts) on another element type carries its
//! own copy of the standard library's sort, a few KB of a binary each; `sort_by` here sorts
//! indices with one shared copy and moves the elements after.

use std::cmp::Ordering;

/// Sorts `v` by `cmp`, stably (equal elements keep their order), as `v.sort_by(cmp)` does.
pub fn sort_by<T>(v: &mut Vec<T>, cmp: impl Fn(&T, &T) -> Ordering) {
    let order = sorted_indices(v.len(), &|a, b| cmp(&v[a], &v[b]));
    let mut slots: Vec<Option<T>> = v.drain(..).map(Some).collect();
    v.extend(order.into_iter().filter_map(|i| slots[i].take()));
}

/// `0..n` sorted by `cmp`, stably: the only instantiation of the sort.
#[inline(never)]
fn sorted_indices(n: usize, cmp: &dyn Fn(usize, usize) -> Ordering) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| cmp(a, b));
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_stably_as_sort_by_does() {
        let mut v: Vec<(u32, usize)> = [5, 3, 5, 1, 3, 3, 9, 0, 5].iter().enumerate().map(|(i, &k)| (k, i)).collect();
        let mut want = v.clone();
        want.sort_by_key(|a| a.0);
        sort_by(&mut v, |a, b| a.0.cmp(&b.0));
        assert_eq!(v, want);
        let mut s = vec!["b".to_string(), "a".into(), "c".into()];
        sort_by(&mut s, |a, b| b.cmp(a));
        assert_eq!(s, ["c", "b", "a"]);
        let mut e: Vec<String> = Vec::new();
        sort_by(&mut e, |a, b| a.cmp(b));
        assert!(e.is_empty());
    }
}
