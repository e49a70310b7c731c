//! Batch writes: which items to send.

/// The items of a batch write to send: the index of the last item given for each
/// distinct key, in increasing order (the last value given for a key wins; stores
/// refuse, or apply in no set order, one key twice in one batch).
///
/// ```
/// use cache_core::{raw, Bytes};
/// let items = [("a", Bytes::from("1")), ("b", Bytes::from("2")), ("a", Bytes::from("3"))];
/// assert_eq!(raw::last_of_each(&items), vec![1, 2]);
/// ```
pub fn last_of_each(items: &[(&str, bytes::Bytes)]) -> Vec<usize> {
    let mut last: std::collections::HashMap<&str, usize> =
        std::collections::HashMap::with_capacity(items.len());
    for (i, (k, _)) in items.iter().enumerate() {
        last.insert(k, i);
    }
    let mut order: Vec<usize> = last.into_values().collect();
    order.sort_unstable();
    order
}

/// The distinct items of `list`, each at its first place, in order.
///
/// ```
/// assert_eq!(cache_core::raw::distinct(["a", "b", "a"]), vec!["a", "b"]);
/// ```
pub fn distinct<T: Eq + std::hash::Hash + Clone>(list: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut seen = std::collections::HashSet::new();
    list.into_iter()
        .filter(|x| seen.insert(x.clone()))
        .collect()
}
