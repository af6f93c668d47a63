//! `debugfs` as the neutral reader of both sides: the kernel's image and ours are described by
//! the same external tool, so a comparison never depends on our own parsers agreeing with
//! themselves.
//!
//! One `debugfs -f CMDS IMAGE` process per image runs every `stat PATH` (and `stats`); its
//! stdout is split at the `debugfs: CMD` echo lines. Errors (a missing path) go to stderr, so a
//! missing file is an empty section.
//!
//! The map of `stat` is the `BLOCKS:` (indirect) or `EXTENTS:` (extent tree) list, entries
//! separated by `, `: `(0-11):1591-1602` data, `(40-47[u]):1612-1619` unwritten data,
//! `(IND):1603` / `(DIND)` / `(TIND)` indirect blocks, `(ETB0):1660` extent tree blocks.

use super::host::{run, text, Scratch};
use std::fmt;
use std::path::Path;

/// One entry of a `stat` map, in debugfs's order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapEntry {
    /// Logical blocks `lblk..lblk+len` at physical `pblk..`.
    Data {
        /// First logical block.
        lblk: u64,
        /// First physical block.
        pblk: u64,
        /// Blocks.
        len: u64,
        /// `[u]`: an unwritten extent.
        unwritten: bool,
    },
    /// A mapping block: `IND`, `DIND`, `TIND`, `ETB0`, `ETB1`…
    Meta {
        /// debugfs's label.
        label: String,
        /// Where it is.
        pblk: u64,
    },
}

impl MapEntry {
    /// Whether both are mapping blocks with the same label, wherever they are.
    pub fn same_meta(&self, other: &MapEntry) -> bool {
        matches!((self, other), (MapEntry::Meta { label: a, .. }, MapEntry::Meta { label: b, .. }) if a == b)
    }
}

impl fmt::Display for MapEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapEntry::Data {
                lblk,
                pblk,
                len,
                unwritten,
            } => {
                let u = if *unwritten { "[u]" } else { "" };
                write!(f, "({lblk}+{len}{u})->{pblk}")
            }
            MapEntry::Meta { label, pblk } => write!(f, "({label})->{pblk}"),
        }
    }
}

/// What `debugfs stat` says about one inode.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatInode {
    /// `Flags: 0x…` (`i_flags`).
    pub flags: u32,
    /// `Size:` (`i_size`).
    pub size: u64,
    /// `Links:` (`i_links_count`).
    pub links: u32,
    /// `Blockcount:` (`i_blocks` in 512-byte sectors).
    pub blockcount: u64,
    /// The map, in debugfs's order.
    pub map: Vec<MapEntry>,
}

impl StatInode {
    /// The data entries as `(lblk, pblk, len, unwritten)` in logical order.
    pub fn data(&self) -> impl Iterator<Item = (u64, u64, u64, bool)> + '_ {
        self.map.iter().filter_map(|e| match *e {
            MapEntry::Data {
                lblk,
                pblk,
                len,
                unwritten,
            } => Some((lblk, pblk, len, unwritten)),
            MapEntry::Meta { .. } => None,
        })
    }

    /// The physical block behind logical block `lblk`, if mapped and written.
    pub fn lookup(&self, lblk: u64) -> Option<u64> {
        self.data()
            .find(|&(l, _, n, _)| (l..l + n).contains(&lblk))
            .and_then(|(l, p, _, u)| (!u).then_some(p + (lblk - l)))
    }
}

/// The value after `key` on a line: the next whitespace-separated word.
fn word_after<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(key)? + key.len();
    line[at..].split_whitespace().next()
}

/// Parse the output of one `debugfs stat` (`None`: not a stat of an inode).
pub fn parse_stat(out: &str) -> Option<StatInode> {
    let mut st = StatInode::default();
    let mut seen = false;
    let mut in_map = false;
    for line in out.lines() {
        let t = line.trim();
        if t.starts_with("Inode:") {
            let f = word_after(t, "Flags:")?;
            st.flags = u32::from_str_radix(f.trim_start_matches("0x"), 16).ok()?;
            seen = true;
        } else if t.starts_with("User:") {
            st.size = word_after(t, "Size:")?.parse().ok()?;
        } else if t.starts_with("Links:") {
            st.links = word_after(t, "Links:")?.parse().ok()?;
            st.blockcount = word_after(t, "Blockcount:")?.parse().ok()?;
        } else if t.starts_with("BLOCKS:") || t.starts_with("EXTENTS:") {
            in_map = true;
        } else if t.starts_with("TOTAL:") {
            in_map = false;
        } else if in_map && !t.is_empty() {
            for entry in t.split(", ") {
                st.map.push(parse_entry(entry)?);
            }
        }
    }
    seen.then_some(st)
}

/// One map entry: `(LABEL):P`, `(L):P`, `(L1-L2[u]):P1-P2`.
fn parse_entry(s: &str) -> Option<MapEntry> {
    let (label, phys) = s.trim().strip_prefix('(')?.split_once("):")?;
    let range = |r: &str| -> Option<(u64, u64)> {
        match r.split_once('-') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => {
                let a = r.parse().ok()?;
                Some((a, a))
            }
        }
    };
    let (p0, p1) = range(phys)?;
    if !label.starts_with(|c: char| c.is_ascii_digit()) {
        return Some(MapEntry::Meta {
            label: label.to_string(),
            pblk: p0,
        });
    }
    let (lab, unwritten) = match label.strip_suffix("[u]") {
        Some(l) => (l, true),
        None => (label, false),
    };
    let (l0, l1) = range(lab)?;
    (l1 >= l0 && p1 >= p0 && l1 - l0 == p1 - p0).then_some(MapEntry::Data {
        lblk: l0,
        pblk: p0,
        len: l1 - l0 + 1,
        unwritten,
    })
}

/// Free block and inode counts of the superblock, from `stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FreeCounts {
    /// `Free blocks:`.
    pub blocks: u64,
    /// `Free inodes:`.
    pub inodes: u64,
}

/// Parse `debugfs stats` for the free counts.
pub fn parse_stats(out: &str) -> Option<FreeCounts> {
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
    };
    Some(FreeCounts {
        blocks: field("Free blocks:")?,
        inodes: field("Free inodes:")?,
    })
}

/// Run `cmds` in one debugfs process on `image` (read-only); the output section of each
/// command, in order (empty where the command printed nothing on stdout).
pub fn batch(image: &Path, cmds: &[String], scratch: &Scratch) -> Result<Vec<String>, String> {
    let file = scratch.path("debugfs.cmds");
    std::fs::write(&file, cmds.join("\n") + "\n").map_err(|e| format!("debugfs cmds: {e}"))?;
    let out = run(
        "debugfs",
        &["-f", &file.to_string_lossy(), &image.to_string_lossy()],
    )?;
    if !out.status.success() {
        return Err(format!("debugfs: {}", text(&out).trim()));
    }
    Ok(split_sections(&String::from_utf8_lossy(&out.stdout), cmds))
}

/// Split batch output at the `debugfs: CMD` echo lines, one section per command.
fn split_sections(out: &str, cmds: &[String]) -> Vec<String> {
    let mut sections = vec![String::new(); cmds.len()];
    let mut cur: Option<usize> = None;
    let mut next = 0;
    for line in out.lines() {
        if let Some(cmd) = line.strip_prefix("debugfs: ") {
            if next < cmds.len() && cmd.trim() == cmds[next].trim() {
                cur = Some(next);
                next += 1;
                continue;
            }
        }
        if let Some(i) = cur {
            sections[i].push_str(line);
            sections[i].push('\n');
        }
    }
    sections
}

/// The debugfs command for `stat` of `path` (quoted).
pub fn stat_cmd(path: &str) -> String {
    format!("stat \"{path}\"")
}

/// `stat` of every path plus `stats`, in one process: each path's inode (`None` if debugfs
/// did not find it) and the free counts.
pub fn describe(
    image: &Path,
    paths: &[String],
    scratch: &Scratch,
) -> Result<(Vec<Option<StatInode>>, FreeCounts), String> {
    let mut cmds: Vec<String> = paths.iter().map(|p| stat_cmd(p)).collect();
    cmds.push("stats".into());
    let sections = batch(image, &cmds, scratch)?;
    let stats = parse_stats(&sections[paths.len()])
        .ok_or_else(|| format!("debugfs stats on {}: no free counts", image.display()))?;
    let inodes = sections[..paths.len()]
        .iter()
        .map(|s| parse_stat(s))
        .collect();
    Ok((inodes, stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    const IND: &str = "Inode: 12   Type: regular    Mode:  0644   Flags: 0x0
Generation: 0    Version: 0x00000000:00000000
User:     0   Group:     0   Project:     0   Size: 20000
File ACL: 0
Links: 1   Blockcount: 42
Fragment:  Address: 0    Number: 0    Size: 0
Size of extra inode fields: 32
BLOCKS:
(0-11):1591-1602, (IND):1603, (12-19):1604-1611
TOTAL: 21
";

    const EXT: &str = "Inode: 13   Type: regular    Mode:  0644   Flags: 0x80000
User:     0   Group:     0   Project:     0   Size: 49152
Links: 1   Blockcount: 40
EXTENTS:
(ETB0):1660, (0):1620, (2):1622, (40-47[u]):1612-1619
";

    fn data(lblk: u64, pblk: u64, len: u64, unwritten: bool) -> MapEntry {
        MapEntry::Data {
            lblk,
            pblk,
            len,
            unwritten,
        }
    }

    #[test]
    fn parses_an_indirect_stat() {
        let st = parse_stat(IND).unwrap();
        assert_eq!(
            (st.flags, st.size, st.links, st.blockcount),
            (0, 20000, 1, 42)
        );
        assert_eq!(
            st.map,
            vec![
                data(0, 1591, 12, false),
                MapEntry::Meta {
                    label: "IND".into(),
                    pblk: 1603
                },
                data(12, 1604, 8, false)
            ]
        );
        assert_eq!(st.lookup(13), Some(1605));
        assert_eq!(st.lookup(20), None);
    }

    #[test]
    fn parses_an_extent_stat_with_unwritten_and_tree_blocks() {
        let st = parse_stat(EXT).unwrap();
        assert_eq!((st.flags, st.size, st.blockcount), (0x80000, 49152, 40));
        assert_eq!(st.map[0].to_string(), "(ETB0)->1660");
        assert_eq!(st.map[3], data(40, 1612, 8, true));
        assert_eq!(st.lookup(2), Some(1622));
        assert_eq!(st.lookup(41), None, "unwritten reads as zeroes");
    }

    #[test]
    fn rejects_what_is_not_a_stat_or_is_inconsistent() {
        assert_eq!(parse_stat(""), None);
        assert_eq!(parse_stat("/f: File not found by ext2_lookup\n"), None);
        assert_eq!(parse_entry("(0-3):10-11"), None, "lengths differ");
        assert_eq!(parse_entry("(x"), None);
        let empty = "Inode: 14   Type: regular    Mode:  0644   Flags: 0x80000\n\
                     User:     0   Group:     0   Project:     0   Size: 0\n\
                     Links: 1   Blockcount: 0\nEXTENTS:";
        assert_eq!(parse_stat(empty).unwrap().map, vec![]);
    }

    #[test]
    fn splits_batch_output_per_command() {
        let cmds = vec![stat_cmd("/a"), stat_cmd("/b"), "stats".to_string()];
        let out = "debugfs: stat \"/a\"\ndebugfs: stat \"/b\"\nInode: 12\nX\n\
                   debugfs: stats\nFree blocks:              6560\nFree inodes:  2035\n";
        let s = split_sections(out, &cmds);
        assert_eq!(
            s,
            vec![
                "",
                "Inode: 12\nX\n",
                "Free blocks:              6560\nFree inodes:  2035\n"
            ]
        );
        assert_eq!(
            parse_stats(&s[2]),
            Some(FreeCounts {
                blocks: 6560,
                inodes: 2035
            })
        );
    }
}
