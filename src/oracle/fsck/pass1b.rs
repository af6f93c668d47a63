//! Pass 1B: blocks claimed more than once (model of `e2fsck_pass1_dupblocks()`,
//! e2fsck/pass1b.c). Pass 1 set a block in the multiply-claimed map when it was marked a second
//! time; here every inode's claims are rescanned to name all owners of each such block, the
//! filesystem metadata included. One problem per inode and run of multiply-claimed blocks
//! (`PR_1B_DUP_BLOCK`, or `PR_1B_DUP_RANGE` for several), naming the other owners.

use super::{Fsck, Problem, ProblemCode as P};
use std::collections::BTreeMap;

/// Who owns a multiply-claimed block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Owner {
    /// Superblock, descriptors, bitmaps or inode table.
    Metadata,
    /// An inode.
    Inode(u32),
}

impl Fsck<'_> {
    /// Pass 1B.
    pub(super) fn pass1b(&mut self) {
        if !self.dup.any() {
            return;
        }
        let mut owners: BTreeMap<u64, Vec<Owner>> = BTreeMap::new();
        let mut per_inode: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
        for c in &self.claims {
            for b in self.dup.iter_set(c.start, c.start + c.len) {
                let list = owners.entry(b).or_default();
                if list.is_empty() && self.meta.test(b) {
                    list.push(Owner::Metadata);
                }
                if !list.contains(&Owner::Inode(c.ino)) {
                    list.push(Owner::Inode(c.ino));
                }
                per_inode.entry(c.ino).or_default().push(b);
            }
        }
        for (ino, mut blocks) in per_inode {
            blocks.sort_unstable();
            blocks.dedup();
            for (start, end) in runs(&blocks) {
                let others = describe_others(ino, &owners, start, end);
                let (code, what) = if start == end {
                    (P::PR_1B_DUP_BLOCK, format!("block {start}"))
                } else {
                    (P::PR_1B_DUP_RANGE, format!("blocks {start}-{end}"))
                };
                let msg = format!("multiply-claimed {what}, shared with {others}");
                self.report(Problem::new(code, msg).ino(ino).blk(start));
            }
        }
    }
}

/// Maximal runs of consecutive numbers in sorted `v`, as `(first, last)`.
pub(super) fn runs(v: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &b in v {
        match out.last_mut() {
            Some((_, end)) if *end + 1 == b => *end = b,
            _ => out.push((b, b)),
        }
    }
    out
}

/// The owners of blocks `start..=end` other than inode `ino`, as e2fsck lists them.
fn describe_others(ino: u32, owners: &BTreeMap<u64, Vec<Owner>>, start: u64, end: u64) -> String {
    let mut all: Vec<Owner> = owners
        .range(start..=end)
        .flat_map(|(_, o)| o.iter().copied())
        .filter(|&o| o != Owner::Inode(ino))
        .collect();
    all.sort_unstable();
    all.dedup();
    let names: Vec<String> = all
        .iter()
        .map(|o| match o {
            Owner::Metadata => "<filesystem metadata>".to_string(),
            Owner::Inode(i) => format!("inode {i}"),
        })
        .collect();
    if names.is_empty() {
        "itself".to_string()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_and_owner_lists() {
        assert_eq!(runs(&[1, 2, 3, 7, 9, 10]), [(1, 3), (7, 7), (9, 10)]);
        assert!(runs(&[]).is_empty());
        let mut owners = BTreeMap::new();
        owners.insert(4, vec![Owner::Metadata, Owner::Inode(7), Owner::Inode(12)]);
        owners.insert(5, vec![Owner::Inode(12), Owner::Inode(13)]);
        assert_eq!(
            describe_others(12, &owners, 4, 5),
            "<filesystem metadata>, inode 7, inode 13"
        );
        assert_eq!(describe_others(12, &owners, 9, 9), "itself");
    }
}
