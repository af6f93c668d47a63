//! Newtypes for the kinds of numbers ext4 and JBD2 juggle, so that a logical block can never be
//! passed where a physical block is expected (the kernel's `ext4_lblk_t` / `ext4_fsblk_t` split).

use std::fmt;

macro_rules! newtype {
    ($(#[$m:meta])* $name:ident($inner:ty), $fmt:literal) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, $fmt, self.0)
            }
        }

        impl From<$inner> for $name {
            fn from(v: $inner) -> Self {
                Self(v)
            }
        }
    };
}

newtype!(
    /// Logical block number within a file (`ext4_lblk_t`, 32 bits).
    Lblk(u32),
    "{}"
);
newtype!(
    /// Physical (filesystem) block number (`ext4_fsblk_t`, up to 48 bits used).
    Pblk(u64),
    "{}"
);
newtype!(
    /// Inode number (1-based; 0 means "none").
    Ino(u32),
    "{}"
);
newtype!(
    /// JBD2 transaction id. Compare with [`Tid::gt`], which is wrap-safe like `tid_gt()`.
    Tid(u32),
    "{}"
);
newtype!(
    /// Block group number.
    Group(u32),
    "{}"
);

impl Tid {
    /// Model of `tid_gt()` (include/linux/jbd2.h): `x > y` modulo 2³².
    pub fn gt(self, other: Tid) -> bool {
        (self.0.wrapping_sub(other.0) as i32) > 0
    }

    /// Model of `tid_geq()`: `x >= y` modulo 2³².
    pub fn geq(self, other: Tid) -> bool {
        (self.0.wrapping_sub(other.0) as i32) >= 0
    }

    /// The next transaction id, wrapping.
    pub fn next(self) -> Tid {
        Tid(self.0.wrapping_add(1))
    }
}

impl std::ops::Add<u64> for Pblk {
    type Output = Pblk;
    /// The block `n` blocks after this one.
    fn add(self, n: u64) -> Pblk {
        Pblk(self.0 + n)
    }
}

impl std::ops::Add<u32> for Lblk {
    type Output = Lblk;
    /// The block `n` blocks after this one.
    fn add(self, n: u32) -> Lblk {
        Lblk(self.0 + n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tid_comparisons_wrap() {
        assert!(Tid(1).gt(Tid(0)));
        assert!(Tid(0).gt(Tid(u32::MAX)));
        assert!(!Tid(u32::MAX).gt(Tid(0)));
        assert!(Tid(5).geq(Tid(5)));
        assert_eq!(Tid(u32::MAX).next(), Tid(0));
    }
}
