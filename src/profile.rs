//! Profiles and seeded bugs. The engine's behaviour is the kernel's, switchable: each seeded
//! bug is a small, reviewable deviation at the place the kernel's history puts it, named by its
//! stable id in the code (`if fs.bugs.has(Bug::S3)`). A profile is a named bundle of switches
//! plus the EAGAIN retry policy.
//!
//! The oracles never look at these switches: a seeded bug is "found" only when an oracle
//! judging what the engine did and wrote reports it.

use std::fmt;

/// A seeded bug (stable ids; reports, `.repro` files and tests use them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bug {
    /// No migrate marker protocol (before 267e4db9ac28).
    S1,
    /// Marker cleared on any successful mapping, not only new allocations (thread v1).
    S2,
    /// Marker not masked when the inode is written: it reaches the disk.
    S3,
    /// `EXTENTS_FL` tested outside `i_data_sem` in the mapping path (c278bfecebfb).
    S4,
    /// `i_data_sem` held across journal start and the whole walk (8009f9fb3067).
    S5,
    /// Temp inode on the orphan list; orphan cleanup after a crash frees the file's blocks (6eeaf88fd586).
    S6,
    /// Temp inode's own checksum seed used for the new extent blocks (e81c9302a6c3).
    S7,
    /// Temp inode's seed not restored before its final reset (07ea7a617d6b).
    S8,
    /// extent→indirect ignores the extent's start block (7444a072c387).
    S9,
    /// extent→indirect checks only the length, not the offset (d6f123a92974).
    S10,
    /// Indirect punch-hole range bugs in ext4_ind_remove_space (4f579ae7de56, 6f30b7e37a82).
    S14,
    /// Newly allocated blocks not on the transaction's ordered-data list (CVE-2017-7495).
    S16,
    /// Migrate cleanup overwrites the error: EAGAIN/EIO reported as success (mainline).
    S17,
    /// Marker set after the walk started instead of before it.
    T2,
    /// Thread v1: on EAGAIN the temp inode's extent blocks are not freed.
    T3,
    /// `page_mkwrite` takes `i_rwsem` (the lock-order violation the patch avoids).
    T4,
    /// Punch hole drops the range's dirty pages without writing them back, before its handle
    /// starts (mainline since the 6.14 punch-hole rework; found by e4fuzz, confirmed on 6.18).
    U1,
    /// ext4_find_shared() ignores ext4_get_branch()'s error: after a transient read error of
    /// an indirect block, punch hole and truncate free blocks outside the range, silently
    /// (mainline; found by e4fuzz, confirmed on 6.18).
    U2,
    /// Truncate drops the pages past the new size before it walks the extent tree: when a
    /// tree block read fails there, a block a `nodelalloc` write mapped stays mapped with
    /// bytes never written (mainline; found checking the extent side of an e4fuzz finding,
    /// confirmed on 6.18).
    U3,
    /// A checkpoint moves the journal's tail without flushing the blocks it wrote home, and
    /// writes the journal superblock without FUA (before 79feb521a447, internal journals).
    S18,
    /// jbd2_cleanup_journal_tail() ignores a failed cache flush and moves the tail anyway:
    /// the blocks a checkpoint wrote home may not be on the media, and the log forgets them
    /// (mainline; found in the model's own deviation note, confirmed on 6.18).
    U4,
    /// finish_range() stores a run's length in the 16-bit `ee_len` unchecked: a run longer
    /// than 32768 blocks becomes a short unwritten extent, the rest leaked (mainline;
    /// kernel.md's latent S15, confirmed reachable on 6.18).
    S15,
    /// ext4_ind_migrate() converts an extent file whose `i_size` is past what an indirect map
    /// can address (mainline; found probing the CLI, confirmed on 6.18).
    U5,
}

/// What the table says about one bug.
#[derive(Clone, Copy, Debug)]
pub struct BugInfo {
    /// The bug.
    pub bug: Bug,
    /// One line: what the buggy engine does.
    pub what: &'static str,
    /// Where it comes from (commit id or thread).
    pub origin: &'static str,
    /// The oracles expected to catch it.
    pub oracles: &'static [&'static str],
}

/// The seeded-bug table (design.md, "Profiles and seeded bugs").
pub const BUGS: &[BugInfo] = &[
    BugInfo {
        bug: Bug::S1,
        what: "no migrate marker protocol: an mmap allocation during the walk is not detected",
        origin: "before 267e4db9ac28",
        oracles: &["data-loss", "leak"],
    },
    BugInfo {
        bug: Bug::S2,
        what: "marker cleared on any successful mapping (retval > 0), not only new allocations",
        origin: "thread v1 (2008-03-13)",
        oracles: &["spurious-eagain"],
    },
    BugInfo {
        bug: Bug::S3,
        what: "marker not masked when the inode is written: it reaches the disk",
        origin: "267e4db9ac28 masking / later i_state",
        oracles: &["flag-on-disk"],
    },
    BugInfo {
        bug: Bug::S4,
        what: "EXTENTS_FL tested outside i_data_sem in the mapping path",
        origin: "c278bfecebfb",
        // design.md lists panic and fsck; in the model a lookup that walks the new extent
        // header as block pointers finds no valid pointer and reads a hole's zeroes (the
        // kernel's "reads as hole" symptom), so data-loss catches it first.
        oracles: &["panic", "fsck", "data-loss"],
    },
    BugInfo {
        bug: Bug::S5,
        what: "i_data_sem held across journal start and the whole walk",
        origin: "8009f9fb3067",
        oracles: &["deadlock"],
    },
    BugInfo {
        bug: Bug::S6,
        what: "temp inode on the orphan list; orphan cleanup after a crash frees the file's blocks",
        origin: "6eeaf88fd586",
        oracles: &["fsck", "data-loss"],
    },
    BugInfo {
        bug: Bug::S7,
        what: "temp inode's own checksum seed used for the new extent blocks",
        origin: "e81c9302a6c3",
        oracles: &["checksum", "fsck"],
    },
    BugInfo {
        bug: Bug::S8,
        what: "temp inode's seed not restored before its final reset",
        origin: "07ea7a617d6b",
        oracles: &["fsck"],
    },
    BugInfo {
        bug: Bug::S9,
        what: "extent→indirect ignores the extent's start block",
        origin: "7444a072c387",
        oracles: &["data-loss"],
    },
    BugInfo {
        bug: Bug::S10,
        what: "extent→indirect checks only the length, not the offset",
        origin: "d6f123a92974",
        oracles: &["data-loss", "fsck"],
    },
    BugInfo {
        bug: Bug::S14,
        what: "indirect punch-hole range bugs in ext4_ind_remove_space",
        origin: "4f579ae7de56, 6f30b7e37a82",
        oracles: &["data-loss", "fsck"],
    },
    BugInfo {
        bug: Bug::S16,
        what: "newly allocated blocks not on the transaction's ordered-data list",
        origin: "CVE-2017-7495 (06bd3c36a733)",
        oracles: &["stale-data"],
    },
    BugInfo {
        bug: Bug::S17,
        what: "migrate cleanup overwrites the error (EAGAIN/EIO reported as success)",
        origin: "2019 credit rework (present in mainline)",
        oracles: &["migrate-result"],
    },
    BugInfo {
        bug: Bug::T2,
        what: "marker set after the walk started instead of before it",
        origin: "thread variant",
        oracles: &["data-loss", "leak"],
    },
    BugInfo {
        bug: Bug::T3,
        what: "on EAGAIN the temp inode's extent blocks are not freed",
        origin: "thread v1 (review point 3)",
        oracles: &["leak"],
    },
    BugInfo {
        bug: Bug::T4,
        what: "page_mkwrite takes i_rwsem (the lock-order violation the patch avoids)",
        origin: "thread v1 FIXME",
        oracles: &["deadlock"],
    },
    BugInfo {
        bug: Bug::U1,
        what: "punch hole drops dirty pages unwritten before its handle starts: a commit in between makes nodelalloc blocks durable without their data",
        origin: "mainline since the 6.14 punch-hole rework (writeback before the drop removed); found by e4fuzz, confirmed on 6.18",
        oracles: &["stale-data"],
    },
    BugInfo {
        bug: Bug::U2,
        what: "ext4_find_shared() ignores a failed indirect-block read: after a transient read error, punch hole and truncate free blocks outside the range and record nothing",
        origin: "mainline (ext4_find_shared() drops ext4_get_branch()'s error); found by e4fuzz, confirmed on 6.18",
        oracles: &["data-loss"],
    },
    BugInfo {
        bug: Bug::U3,
        what: "ext4_setattr() drops the pages past the new size before ext4_truncate() walks the extent tree: when a tree block cannot be read, the truncate fails and a block a nodelalloc write mapped stays mapped with bytes never written, visible once the file grows again",
        origin: "mainline (ext4_setattr(): truncate_pagecache() before ext4_truncate(), whose error leaves the blocks); found checking the extent side of an e4fuzz finding, confirmed on 6.18",
        oracles: &["stale-data"],
    },
    BugInfo {
        bug: Bug::S18,
        what: "a checkpoint moves the journal's tail without a cache flush: the new tail can reach the media before the blocks written home, and a crash loses committed metadata that recovery no longer replays",
        origin: "79feb521a447 (jbd2, 2012; its jbd twin is 353b67d8ced4, with the FUA superblock write in fd2cbd4dfa3d)",
        oracles: &["fsck", "data-loss"],
    },
    BugInfo {
        bug: Bug::U4,
        what: "jbd2_cleanup_journal_tail() ignores blkdev_issue_flush()'s error and writes the new tail with FUA: after a failed cache flush the log forgets transactions whose blocks may never reach home, and a crash (or the cache dropping them) loses committed metadata, fsync'd files included, with no error reported",
        origin: "mainline (jbd2_cleanup_journal_tail(): the flush's return value is dropped); noted while modelling S18's fix, confirmed on 6.18 with a device whose flush fails",
        oracles: &["data-loss", "fsck"],
    },
    BugInfo {
        bug: Bug::S15,
        what: "finish_range() stores a run's length in the 16-bit ee_len unchecked: a run of more than 32768 contiguous blocks becomes an unwritten extent of len - 32768 blocks (wrapping at 65536), so chattr +e succeeds, the file reads zeros there and the rest of the run is leaked",
        origin: "mainline (migrate.c finish_range(), since the migration's first version); kernel.md's S15, taken for latent, reachable: today's kernel allocates an indirect file's indirect blocks apart from its data, and with flex_bg a sequential file has runs of tens of thousands of blocks; confirmed on 6.18",
        oracles: &["data-loss", "leak"],
    },
    BugInfo {
        bug: Bug::U5,
        what: "ext4_ind_migrate() checks the extents, not i_size: chattr -e of an extent file with no block past the direct ones but an i_size past the largest indirect-mapped file (16 GiB on 1 KiB blocks) succeeds, and leaves an inode e2fsck repairs (i_size should be 0) and reads past that size cannot map",
        origin: "mainline (migrate.c ext4_ind_migrate(), since 2014: no check against s_bitmap_maxbytes); found probing e4fuzz migrate, confirmed on 6.18",
        oracles: &["fsck"],
    },
];

/// The class of an oracle, for "found by an oracle in its expected class": the consistency
/// oracles (`fsck`, `leak`, `checksum`, `e2fsck`: the image is damaged), the content oracles
/// (`data-loss`, `durability`, `stale-data`, `migrate-atomicity`: a file shows the wrong
/// bytes or blocks), and every other oracle its own class.
pub fn oracle_class(oracle: &str) -> &str {
    match oracle {
        "fsck" | "leak" | "checksum" | "e2fsck" => "consistency",
        "data-loss" | "durability" | "stale-data" | "migrate-atomicity" => "content",
        other => other,
    }
}

impl Bug {
    /// Whether `oracle` is in the class of one of the oracles expected to catch the bug.
    pub fn expects(self, oracle: &str) -> bool {
        let class = oracle_class(oracle);
        self.info().oracles.iter().any(|o| oracle_class(o) == class)
    }

    /// Every bug, in table order.
    pub const ALL: [Bug; 23] = [
        Bug::S1,
        Bug::S2,
        Bug::S3,
        Bug::S4,
        Bug::S5,
        Bug::S6,
        Bug::S7,
        Bug::S8,
        Bug::S9,
        Bug::S10,
        Bug::S14,
        Bug::S16,
        Bug::S17,
        Bug::T2,
        Bug::T3,
        Bug::T4,
        Bug::U1,
        Bug::U2,
        Bug::U3,
        Bug::S18,
        Bug::U4,
        Bug::S15,
        Bug::U5,
    ];

    /// The stable id (`"S1"` …).
    pub fn id(self) -> &'static str {
        match self {
            Bug::S1 => "S1",
            Bug::S2 => "S2",
            Bug::S3 => "S3",
            Bug::S4 => "S4",
            Bug::S5 => "S5",
            Bug::S6 => "S6",
            Bug::S7 => "S7",
            Bug::S8 => "S8",
            Bug::S9 => "S9",
            Bug::S10 => "S10",
            Bug::S14 => "S14",
            Bug::S16 => "S16",
            Bug::S17 => "S17",
            Bug::T2 => "T2",
            Bug::T3 => "T3",
            Bug::T4 => "T4",
            Bug::U1 => "U1",
            Bug::U2 => "U2",
            Bug::U3 => "U3",
            Bug::S18 => "S18",
            Bug::U4 => "U4",
            Bug::S15 => "S15",
            Bug::U5 => "U5",
        }
    }

    /// Parse an id, case-insensitively.
    pub fn parse(s: &str) -> Option<Bug> {
        Bug::ALL
            .into_iter()
            .find(|b| b.id().eq_ignore_ascii_case(s.trim()))
    }

    /// The table row.
    pub fn info(self) -> &'static BugInfo {
        BUGS.iter()
            .find(|i| i.bug == self)
            .expect("every bug has a row")
    }

    fn bit(self) -> u32 {
        1 << Bug::ALL.iter().position(|&b| b == self).expect("listed")
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// A set of seeded bugs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BugSet(u32);

impl BugSet {
    /// No bugs.
    pub const NONE: BugSet = BugSet(0);

    /// Whether `bug` is switched on.
    pub fn has(self, bug: Bug) -> bool {
        self.0 & bug.bit() != 0
    }

    /// This set plus `bug`.
    pub fn with(self, bug: Bug) -> BugSet {
        BugSet(self.0 | bug.bit())
    }

    /// The bugs in table order.
    pub fn iter(self) -> impl Iterator<Item = Bug> {
        Bug::ALL.into_iter().filter(move |b| self.has(*b))
    }

    /// Whether no bug is on.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Build from a list.
    pub fn of(bugs: &[Bug]) -> BugSet {
        bugs.iter().fold(BugSet::NONE, |s, b| s.with(*b))
    }
}

impl fmt::Display for BugSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.iter().map(Bug::id).collect();
        f.write_str(&ids.join(","))
    }
}

/// The engine configuration a profile stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Profile {
    /// Stable name.
    pub name: &'static str,
    /// The bugs switched on.
    pub bugs: BugSet,
    /// How many times `migrate` retries after `-EAGAIN` (the review's point 3; the kernel: 0).
    pub eagain_retries: u32,
    /// One line.
    pub what: &'static str,
}

/// Every profile. `fixed` is the default.
pub const PROFILES: &[Profile] = &[
    Profile { name: "fixed", bugs: BugSet::NONE, eagain_retries: 3, what: "mainline with the migrate error-overwrite fixed and -EAGAIN retried (bounded), as the review asked" },
    Profile { name: "mainline", bugs: BugSet((1 << 12) | (1 << 16) | (1 << 17) | (1 << 18) | (1 << 20) | (1 << 21) | (1 << 22)), eagain_retries: 0, what: "today's kernel: migrate's cleanup overwrites the error (S17), no retry; runs longer than 32768 blocks overflow ee_len (S15); chattr -e ignores i_size (U5); punch hole drops dirty pages before its handle (U1); a failed indirect read in ext4_find_shared() is ignored (U2); truncate drops pages before a tree walk that can fail (U3); a checkpoint moves the journal tail after a failed flush (U4)" },
    Profile { name: "merged-2008", bugs: BugSet::NONE, eagain_retries: 0, what: "the patch as merged (267e4db9ac28): marker cleared on MAP_NEW only, masked on disk; EAGAIN returned, not retried" },
    Profile { name: "thread-v1", bugs: BugSet((1 << 1) | (1 << 14)), eagain_retries: 0, what: "the patch as first posted: marker cleared on any mapping (S2), temp blocks leaked on EAGAIN (T3)" },
    Profile { name: "pre-patch", bugs: BugSet(1), eagain_retries: 0, what: "before the patch: no marker protocol, mmap allocations race the walk (S1)" },
];

impl Profile {
    /// Look a profile up by name.
    pub fn by_name(name: &str) -> Option<Profile> {
        PROFILES.iter().copied().find(|p| p.name == name)
    }

    /// The default profile, `fixed`.
    pub fn fixed() -> Profile {
        PROFILES[0]
    }

    /// This profile with extra bugs switched on.
    pub fn with_bugs(mut self, bugs: BugSet) -> Profile {
        self.bugs = BugSet(self.bugs.0 | bugs.0);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_bundles_match_the_design() {
        assert!(Profile::by_name("fixed").unwrap().bugs.is_empty());
        assert_eq!(
            Profile::by_name("mainline").unwrap().bugs,
            BugSet::of(&[
                Bug::S17,
                Bug::U1,
                Bug::U2,
                Bug::U3,
                Bug::U4,
                Bug::S15,
                Bug::U5
            ])
        );
        assert_eq!(
            Profile::by_name("thread-v1").unwrap().bugs,
            BugSet::of(&[Bug::S2, Bug::T3])
        );
        assert_eq!(
            Profile::by_name("pre-patch").unwrap().bugs,
            BugSet::of(&[Bug::S1])
        );
        assert!(Profile::by_name("nope").is_none());
    }

    #[test]
    fn ids_round_trip() {
        for b in Bug::ALL {
            assert_eq!(Bug::parse(b.id()), Some(b));
            assert_eq!(b.info().bug, b);
        }
        assert_eq!(Bug::parse("s14"), Some(Bug::S14));
        assert_eq!(BugSet::of(&[Bug::S2, Bug::T3]).to_string(), "S2,T3");
        assert!(Bug::S1.expects("fsck") && Bug::S1.expects("durability"));
        assert!(!Bug::S2.expects("fsck") && Bug::S2.expects("spurious-eagain"));
        assert!(!Bug::S5.expects("data-loss"));
    }
}
