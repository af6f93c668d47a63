use e4fuzz::fs::{Fs, MountOpts};
use e4fuzz::fs::mkfs::{mkfs, MkfsOpts};
fn main() {
    let opts = MkfsOpts { size_bytes: 16<<20, extents: false, journal_blocks: Some(1024), ..MkfsOpts::default() };
    let mut fs = Fs::mount(mkfs(&opts).unwrap(), MountOpts::default()).unwrap();
    let ino = fs.create("/f0", 0o644).unwrap();
    let last: u64 = 16843019 * 1024;
    fs.write_file(ino, last - 500, &vec![0xAB; 1524]).unwrap();
    fs.sync().unwrap();
    println!("before: {:?}", &fs.read_file(ino, last, 4).unwrap());
    fs.punch_hole(ino, last, 1024).unwrap();
    println!("after punch (live): {:?}", &fs.read_file(ino, last, 4).unwrap());
    println!("blocks {}", fs.inode_blocks(ino));
    fs.punch_hole(ino, last - 1024, 1024).unwrap();
    println!("after punch prev (live): {:?} blocks {}", &fs.read_file(ino, last - 1024, 4).unwrap(), fs.inode_blocks(ino));
}
