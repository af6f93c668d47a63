//! Kernel referee (filled in below).
