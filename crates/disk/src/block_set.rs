//! A set of block indices (guest offset / 4096), iterated in ascending
//! order: which blocks an overlay holds, and which were written since a
//! snapshot.
//!
//! It is a compressed bitmap (the `roaring` crate's treemap, which keeps
//! its containers in a `BTreeMap`, so iteration order is the numeric order
//! and never depends on the host): a guest that writes a whole disk costs
//! about one bit per block of host memory, one that writes here and there
//! a few bytes per block. This wrapper keeps the crate out of the public
//! API and names the few operations the disk needs.

use roaring::RoaringTreemap;

/// Block indices, in ascending order.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct BlockSet(RoaringTreemap);

impl BlockSet {
    /// No blocks.
    pub fn new() -> BlockSet {
        BlockSet::default()
    }

    /// The number of blocks.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// Whether there is no block.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `index` is in the set.
    pub fn contains(&self, index: u64) -> bool {
        self.0.contains(index)
    }

    /// Adds `index`.
    pub fn insert(&mut self, index: u64) {
        self.0.insert(index);
    }

    /// Takes `index` out.
    pub fn remove(&mut self, index: u64) {
        self.0.remove(index);
    }

    /// Adds `first..=last`.
    pub fn insert_range(&mut self, first: u64, last: u64) {
        self.0.insert_range(first..=last);
    }

    /// Adds every block of `other`.
    pub fn extend_from(&mut self, other: &BlockSet) {
        self.0 |= &other.0;
    }

    /// The blocks in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.iter()
    }

    /// The smallest block at or after `index`.
    pub fn first_from(&self, index: u64) -> Option<u64> {
        let mut iter = self.0.iter();
        iter.advance_to(index);
        iter.next()
    }
}

impl std::fmt::Debug for BlockSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromIterator<u64> for BlockSet {
    fn from_iter<I: IntoIterator<Item = u64>>(iter: I) -> BlockSet {
        BlockSet(iter.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a BlockSet {
    type Item = u64;
    type IntoIter = roaring::treemap::Iter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for BlockSet {
    type Item = u64;
    type IntoIter = roaring::treemap::IntoIter;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterates_in_ascending_order_whatever_the_insertion_order() {
        let mut set = BlockSet::new();
        for i in [u64::MAX - 1, 7, 1 << 40, 3, 7, 0, (1 << 32) + 5] {
            set.insert(i);
        }
        set.insert_range(10, 12);
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [0, 3, 7, 10, 11, 12, (1 << 32) + 5, 1 << 40, u64::MAX - 1]
        );
        assert_eq!(set.len(), 9);
        assert!(set.contains(11) && !set.contains(9));
    }

    #[test]
    fn finds_the_first_block_at_or_after_an_index() {
        let set: BlockSet = [4, 9, (1 << 33) + 1].into_iter().collect();
        assert_eq!(set.first_from(0), Some(4));
        assert_eq!(set.first_from(4), Some(4));
        assert_eq!(set.first_from(5), Some(9));
        assert_eq!(set.first_from(10), Some((1 << 33) + 1));
        assert_eq!(set.first_from((1 << 33) + 2), None);
        assert_eq!(BlockSet::new().first_from(0), None);
    }

    #[test]
    fn unions_keep_every_block_once() {
        let mut a: BlockSet = [1, 5].into_iter().collect();
        let b: BlockSet = [5, 2].into_iter().collect();
        a.extend_from(&b);
        assert_eq!(a.iter().collect::<Vec<_>>(), [1, 2, 5]);
    }
}
