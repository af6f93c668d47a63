//! Allocation half of fs/ext4/indirect.c: ext4_find_near() / ext4_find_goal(),
//! ext4_blks_to_allocate(), ext4_alloc_branch() and ext4_splice_branch().
//!
//! ext4_ind_map_blocks() with `EXT4_GET_BLOCKS_CREATE` finds the first missing link of the
//! path (`partial`), picks a goal next to the nearest existing block, decides how many data
//! blocks this call may map (only the first hole run, never past the boundary), builds the
//! missing branch off-tree ([`Fs::alloc_branch`]) and finally links it in with a single
//! pointer store ([`Fs::splice_branch`]).

use crate::dev::Zone;
use crate::error::{Error, Result};
use crate::format::indirect as fi;
use crate::fs::map::indirect::{AllocRequest, Indirect, EXT4_MAX_BLOCK_FILE_PHYS};
use crate::fs::{Fs, Handle};
use crate::units::{Ino, Lblk, Pblk};

impl Fs {
    /// Model of ext4_mb_new_blocks() as the indirect path calls it, with its
    /// dquot_alloc_block(): allocate up to `len` blocks from `goal` and charge them to
    /// `i_blocks`.
    fn ind_new_blocks(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        goal: Pblk,
        len: u32,
    ) -> Result<(Pblk, u32)> {
        let (b, got) = self.new_blocks(h, goal, len)?;
        if b.0 + u64::from(got) > EXT4_MAX_BLOCK_FILE_PHYS {
            // Not reachable: an indirect-capable filesystem has no 64bit feature.
            self.free_blocks(h, b, got, false)?;
            return Err(Error::NoSpace);
        }
        self.inode_add_blocks(ino, i64::from(got))?;
        Ok((b, got))
    }

    /// Model of ext4_find_near(): the preferred place for a block whose pointer goes at `ind`:
    /// next to the nearest non-zero pointer before it in the same container, else next to the
    /// indirect block itself, else in the inode's group.
    pub fn find_near(&mut self, ino: Ino, ind: &Indirect) -> Result<Pblk> {
        let prev = match ind.bh {
            None => self.inode(ino).raw.i_block[..ind.p]
                .iter()
                .rev()
                .copied()
                .find(|&b| b != 0),
            Some(b) => {
                let buf = self.bread(b, Zone::TreeMeta)?;
                (0..ind.p)
                    .rev()
                    .map(|i| fi::get_ptr(buf, i))
                    .find(|&b| b != 0)
            }
        };
        Ok(match (prev, ind.bh) {
            (Some(p), _) => Pblk(u64::from(p)),
            (None, Some(bh)) => bh,
            (None, None) => self.inode_goal_block(ino),
        })
    }

    /// Model of ext4_find_goal(): [`Fs::find_near`] for the link `partial`, limited to 32 bits.
    pub fn find_goal(&mut self, ino: Ino, _lblk: Lblk, partial: &Indirect) -> Result<Pblk> {
        let goal = self.find_near(ino, partial)?;
        Ok(Pblk(goal.0 & EXT4_MAX_BLOCK_FILE_PHYS))
    }

    /// Model of ext4_blks_to_allocate(): how many data blocks to allocate at `branch` (the
    /// first missing link), given `k` missing indirect blocks, `blks` wanted and the distance
    /// to the boundary. With new indirect blocks everything up to the boundary is a hole; else
    /// count the zero pointers that follow in the same container.
    pub fn blks_to_allocate(
        &mut self,
        ino: Ino,
        branch: &Indirect,
        k: usize,
        blks: u32,
        boundary: u32,
    ) -> Result<u32> {
        if k > 0 {
            return Ok(blks.min(boundary.saturating_add(1)));
        }
        let mut count = 1;
        while count < blks
            && count <= boundary
            && self.ind_ptr(ino, branch.bh, branch.p + count as usize)? == 0
        {
            count += 1;
        }
        Ok(count)
    }

    /// Model of ext4_alloc_branch(): allocate the `indirect_blks` missing indirect blocks and
    /// then `ar.len` data blocks (which may shrink to what the allocator found contiguous), and
    /// link them into a chain: each new indirect block is created zeroed
    /// (`get_create_access`), gets its one pointer (the last gets the data run) and is
    /// dirtied. `branch[0]` is the existing link that will receive `branch[0].key` at the
    /// splice; `offsets` are the path offsets from that level on.
    ///
    /// On failure everything allocated here is freed again (the kernel's `failed:` path):
    /// the data run, then the indirect blocks in reverse, forgetting those that had a buffer.
    pub fn alloc_branch(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        ar: &mut AllocRequest,
        indirect_blks: usize,
        offsets: &[usize],
        branch: &mut [Indirect],
    ) -> Result<()> {
        let mut st = AllocState::default();
        let res = self.alloc_branch_steps(h, ino, ar, indirect_blks, offsets, branch, &mut st);
        if res.is_err() {
            for i in (0..st.allocated).rev() {
                let (len, forget) = if i == indirect_blks {
                    (ar.len, false)
                } else {
                    (1, st.buffer[i])
                };
                // Like the kernel, the cleanup's own errors are not reported over the first.
                let _ = self.ind_free_blocks(h, ino, st.new_blocks[i], len, forget);
            }
        }
        res
    }

    #[allow(clippy::too_many_arguments)]
    fn alloc_branch_steps(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        ar: &mut AllocRequest,
        indirect_blks: usize,
        offsets: &[usize],
        branch: &mut [Indirect],
        st: &mut AllocState,
    ) -> Result<()> {
        for i in 0..=indirect_blks {
            if i == indirect_blks {
                let (b, got) = self.ind_new_blocks(h, ino, ar.goal, ar.len)?;
                ar.len = got;
                st.new_blocks[i] = b;
            } else {
                let (b, _) = self.ind_new_blocks(h, ino, ar.goal, 1)?;
                ar.goal = b;
                st.new_blocks[i] = b;
            }
            st.allocated = i + 1;
            branch[i].key = st.new_blocks[i].0 as u32;
            if i == 0 {
                continue;
            }
            let bh = st.new_blocks[i - 1];
            branch[i].bh = Some(bh);
            branch[i].p = offsets[i];
            st.buffer[i - 1] = true;
            self.get_create_access(h, bh, Zone::TreeMeta)?;
            let len = if i == indirect_blks { ar.len } else { 1 };
            let first = st.new_blocks[i].0 as u32;
            let buf = self.buf_mut(bh);
            for j in 0..len {
                fi::set_ptr(buf, offsets[i] + j as usize, first + j);
            }
            self.dirty_metadata(h, bh)?;
        }
        Ok(())
    }

    /// Model of ext4_splice_branch(): set the missing link `branch[0].p = branch[0].key` (and,
    /// when no indirect block was added, the pointers of the rest of the data run after it),
    /// then dirty the container: the indirect block under write access, or the inode. `num`
    /// is the number of new indirect blocks in `branch[1..]`.
    ///
    /// On failure the new branch is freed (indirect blocks forgotten, then the data run).
    pub fn splice_branch(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        ar: &AllocRequest,
        branch: &[Indirect],
        num: usize,
    ) -> Result<()> {
        let res = self.splice_link(h, ino, ar, &branch[0], num);
        if res.is_err() {
            for link in &branch[1..=num] {
                let bh = link.bh.expect("alloc_branch set every new link's buffer");
                let _ = self.ind_free_blocks(h, ino, bh, 1, true);
            }
            let data = Pblk(u64::from(branch[num].key));
            let _ = self.ind_free_blocks(h, ino, data, ar.len, false);
        }
        res
    }

    fn splice_link(
        &mut self,
        h: &mut Handle,
        ino: Ino,
        ar: &AllocRequest,
        at: &Indirect,
        num: usize,
    ) -> Result<()> {
        if let Some(bh) = at.bh {
            self.get_write_access(h, bh, Zone::TreeMeta)?;
        }
        self.ind_set(ino, at.bh, at.p, at.key)?;
        if num == 0 {
            for i in 1..ar.len {
                self.ind_set(ino, at.bh, at.p + i as usize, at.key + i)?;
            }
        }
        match at.bh {
            Some(bh) => self.dirty_metadata(h, bh),
            None => self.mark_inode_dirty(h, ino),
        }
    }
}

/// What ext4_alloc_branch() has done so far, for its `failed:` path.
#[derive(Default)]
struct AllocState {
    /// `new_blocks[]`: the indirect blocks, then the first data block.
    new_blocks: [Pblk; 4],
    /// How many entries of `new_blocks` were allocated.
    allocated: usize,
    /// `branch[i + 1].bh != NULL`: `new_blocks[i]` got a buffer (forget it when freeing).
    buffer: [bool; 4],
}

#[cfg(test)]
mod tests {
    use crate::dev::{FaultOp, FaultPlan, FaultRule, FaultWhen, LogOp, Zone};
    use crate::error::Error;
    use crate::fs::map::indirect::testutil::TestFs;
    use crate::fs::map::{MapFlags, EXT4_MAP_BOUNDARY, EXT4_MAP_MAPPED, EXT4_MAP_NEW};
    use crate::units::{Ino, Lblk, Pblk};

    /// Take blocks (charged to nobody) until exactly `left` are free.
    fn fill(t: &mut TestFs, left: u64) {
        let mut h = t.fs.journal_start(8).unwrap();
        while t.fs.sb.s_free_blocks_count > left {
            let want = (t.fs.sb.s_free_blocks_count - left).min(1 << 15) as u32;
            t.fs.new_blocks(&mut h, Pblk(0), want).unwrap();
        }
        t.fs.journal_stop(h).unwrap();
    }

    /// Map one TIND block of `ino` with CREATE.
    fn map_tind(t: &mut TestFs, ino: Ino) -> crate::error::Result<crate::fs::map::MapResult> {
        let mut h = t.fs.journal_start(8).unwrap();
        let m =
            t.fs.ind_map_blocks(Some(&mut h), ino, Lblk(65804 + 9), 1, MapFlags::CREATE);
        t.fs.journal_stop(h).unwrap();
        m
    }

    #[test]
    fn alloc_branch_frees_everything_when_the_allocator_runs_dry() {
        // With 1, 2 or 3 free blocks a TIND mapping (3 indirect blocks + data) fails after
        // 0, 1, 2 or 3 allocations; nothing may stay allocated or charged.
        for left in [0, 1, 2, 3] {
            let Some(mut t) = TestFs::new("enospc", 1024) else {
                return;
            };
            let ino = t.empty_file();
            fill(&mut t, left);
            let used = t.bitmap_used();
            assert_eq!(map_tind(&mut t, ino), Err(Error::NoSpace), "{left} free");
            assert_eq!(t.fs.sb.s_free_blocks_count, left);
            assert_eq!(t.bitmap_used(), used);
            assert_eq!(t.fs.inode_blocks(ino), 0);
            assert_eq!(t.fs.inode(ino).raw.i_block, [0; 15]);
        }
    }

    #[test]
    fn alloc_branch_frees_and_forgets_after_a_failed_write() {
        let Some(mut t) = TestFs::new("eio", 1024) else {
            return;
        };
        let ino = t.empty_file();
        let (used, free) = (t.bitmap_used(), t.fs.sb.s_free_blocks_count);
        // The third indirect-block write is the last new block, after the data allocation:
        // the kernel's `i == indirect_blks` case frees the data run, then the three blocks.
        let rule = FaultRule::new(FaultOp::Write, FaultWhen::Nth(2)).in_zone(Zone::TreeMeta);
        t.fs.dev.set_fault_plan(FaultPlan {
            rules: vec![rule],
            crash_at_write: None,
        });
        let cached = t.fs.bufs.map.len();
        assert!(matches!(map_tind(&mut t, ino), Err(Error::Io(_))));
        t.fs.dev.set_fault_plan(FaultPlan::none());
        assert_eq!((t.bitmap_used(), t.fs.sb.s_free_blocks_count), (used, free));
        assert_eq!(t.fs.inode_blocks(ino), 0);
        assert_eq!(t.fs.inode(ino).raw.i_block, [0; 15]);
        assert!(
            t.fs.bufs.map.len() <= cached + 1,
            "new indirect buffers forgotten"
        );
        // The same mapping succeeds afterwards.
        let m = map_tind(&mut t, ino).unwrap();
        assert_eq!((m.len, m.flags), (1, EXT4_MAP_NEW | EXT4_MAP_MAPPED));
        assert_eq!(t.layout(ino).meta.len(), 3);
    }

    #[test]
    fn splice_branch_frees_the_new_blocks_when_the_parent_write_fails() {
        let Some(mut t) = TestFs::new("splice", 1024) else {
            return;
        };
        let ino = t.file_with(&[12]);
        let ind = Pblk(u64::from(t.fs.inode(ino).raw.i_block[12]));
        let (used, free, blocks) = (
            t.bitmap_used(),
            t.fs.sb.s_free_blocks_count,
            t.fs.inode_blocks(ino),
        );
        let rule = FaultRule::new(FaultOp::Write, FaultWhen::Block(ind));
        t.fs.dev.set_fault_plan(FaultPlan {
            rules: vec![rule],
            crash_at_write: None,
        });
        let mut h = t.fs.journal_start(8).unwrap();
        let m =
            t.fs.ind_map_blocks(Some(&mut h), ino, Lblk(13), 4, MapFlags::CREATE);
        t.fs.journal_stop(h).unwrap();
        t.fs.dev.set_fault_plan(FaultPlan::none());
        assert!(matches!(m, Err(Error::Io(_))));
        assert_eq!((t.bitmap_used(), t.fs.sb.s_free_blocks_count), (used, free));
        assert_eq!(t.fs.inode_blocks(ino), blocks);
    }

    #[test]
    fn create_allocates_the_first_hole_run_and_splices_it_last() {
        let Some(mut t) = TestFs::new("create", 1024) else {
            return;
        };
        let ino = t.empty_file();
        let map = |t: &mut TestFs, l: u32, len: u32, flags: MapFlags| {
            let mut h = t.fs.journal_start(8).unwrap();
            let m =
                t.fs.ind_map_blocks(Some(&mut h), ino, Lblk(l), len, flags)
                    .unwrap();
            t.fs.journal_stop(h).unwrap();
            m
        };
        let nmb = EXT4_MAP_NEW | EXT4_MAP_MAPPED | EXT4_MAP_BOUNDARY;
        // Direct blocks: up to the boundary (12 blocks), contiguous, in the inode.
        let m = map(&mut t, 0, 20, MapFlags::CREATE);
        assert_eq!((m.len, m.flags), (12, nmb));
        let m2 = map(&mut t, 0, 20, MapFlags::LOOKUP);
        assert_eq!(
            (m2.pblk, m2.len, m2.flags),
            (m.pblk, 12, EXT4_MAP_MAPPED | EXT4_MAP_BOUNDARY)
        );
        let m3 = map(&mut t, 4, 2, MapFlags::CREATE);
        assert_eq!(
            (m3.pblk, m3.len, m3.flags),
            (m.pblk + 4, 2, EXT4_MAP_MAPPED)
        );
        // IND: the indirect block first, the data right after it (goal = the new block).
        let m = map(&mut t, 12, 5, MapFlags::CREATE);
        assert_eq!((m.len, m.flags), (5, EXT4_MAP_NEW | EXT4_MAP_MAPPED));
        let lay = t.layout(ino);
        assert_eq!(lay.meta, [m.pblk.0 - 1]);
        assert_eq!(lay.lblks(), (0..17).collect::<Vec<_>>());
        t.check_accounting(ino, &lay);
        // A hole run stops at the next mapped pointer.
        map(&mut t, 20, 1, MapFlags::CREATE);
        let m = map(&mut t, 17, 10, MapFlags::CREATE);
        assert_eq!(
            (m.lblk, m.len, m.flags),
            (Lblk(17), 3, EXT4_MAP_NEW | EXT4_MAP_MAPPED)
        );
        // TIND: three new indirect blocks, all written before the inode (the splice).
        let seq0 = t.fs.dev.log().last().map_or(0, |e| e.seq + 1);
        let m = map(&mut t, 65804 + 70_000, 3, MapFlags::CREATE);
        assert_eq!((m.len, m.flags), (3, EXT4_MAP_NEW | EXT4_MAP_MAPPED));
        let lay = t.layout(ino);
        let new_meta = &lay.meta[lay.meta.len() - 3..];
        let (itable, _) = t.fs.inode_location(ino).unwrap();
        let writes: Vec<u64> =
            t.fs.dev
                .log()
                .iter()
                .filter(|e| e.seq >= seq0)
                .filter_map(|e| match &e.op {
                    LogOp::Write { blk, .. } => Some(blk.0),
                    LogOp::Flush => None,
                })
                .collect();
        let at = |b: u64| writes.iter().position(|&w| w == b).unwrap();
        let splice = writes.iter().position(|&w| w == itable.0).unwrap();
        let last_new = new_meta.iter().map(|&b| at(b)).max().unwrap();
        assert!(
            last_new < splice,
            "new blocks at {last_new}, splice at {splice}"
        );
        assert_eq!(lay.pblk(65804 + 70_002), Some(m.pblk.0 + 2));
        t.check_accounting(ino, &lay);
        t.fs.inode_mut(ino).raw.i_size = (65804 + 70_003) * 1024;
        let mut h = t.fs.journal_start(8).unwrap();
        t.fs.mark_inode_dirty(&mut h, ino).unwrap();
        t.fs.journal_stop(h).unwrap();
        let (st, out) = t.save_and_fsck();
        assert_eq!(st, 0, "{out}");
    }
}
