//! Model of fs/ext4/indirect.c (in progress).
use crate::error::Result;
use crate::fs::map::{MapFlags, MapResult};
use crate::fs::{Fs, Handle};
use crate::units::{Ino, Lblk};

impl Fs {
    /// Model of ext4_ind_map_blocks().
    pub fn ind_map_blocks(
        &mut self,
        _h: Option<&mut Handle>,
        _ino: Ino,
        lblk: Lblk,
        len: u32,
        _flags: MapFlags,
    ) -> Result<MapResult> {
        Ok(MapResult::hole(lblk, len))
    }
    /// Model of ext4_ind_truncate().
    pub fn ind_truncate(&mut self, _h: &mut Handle, _ino: Ino, _from: Lblk) -> Result<()> {
        Ok(())
    }
    /// Model of ext4_ind_remove_space().
    pub fn ind_remove_space(
        &mut self,
        _h: &mut Handle,
        _ino: Ino,
        _s: Lblk,
        _e: Lblk,
    ) -> Result<()> {
        Ok(())
    }
}
