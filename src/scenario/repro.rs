//! The `.repro` text codec: versioned, line-based, human-readable, one op per line, and an exact
//! round trip: `decode(encode(s)) == s` for every scenario that
//! [`validate`](super::gen::validate) accepts, and `encode(decode(t)) == t` for every canonical
//! text (every text `encode` writes). `decode` checks syntax, names and ranges, not whether ops
//! make sense (a hand-written `.repro` may write to a missing file, to test `ENOENT`).
//!
//! # Format, version 1
//!
//! ```text
//! e4fuzz-repro v1
//! profile fixed
//! bugs S1,T3
//! geometry block_size=1024 size=16777216 extents=1 metadata_csum=1 journal_blocks=1024
//! setup f0 indirect write=0+3000:7 write=20480+100:2
//! thread 0
//!   create f1
//!   write f1 off=0 len=3000 tag=7
//!   mmap-write f0 off=1024 len=10 tag=3
//!   migrate f0 to=extents
//! thread 1
//!   punch f0 off=0 len=4096
//! schedule 0 1 1 0 3
//! crash at_write=57 seed=123 keep=500 tear=100
//! fault op=write when=nth:3 zone=journal sticky=0
//! ```
//!
//! | line | meaning |
//! |---|---|
//! | `e4fuzz-repro v1` | magic and version: always the first line |
//! | `profile NAME` | a profile of `crate::profile::PROFILES` |
//! | `bugs ID,ID…` or `bugs -` | seeded bugs on top of the profile (ids of `crate::profile::Bug`) |
//! | `geometry k=v…` | `block_size`, `size` (bytes), `extents`, `metadata_csum` (0/1), `journal_blocks` |
//! | `setup fN indirect\|extents write=OFF+LEN:TAG…` | a file made before the workload |
//! | `thread N` | starts thread N (0 to 3, in order); the op lines after it are its ops |
//! | `schedule B B…` or `schedule -` | scheduling decisions, one byte each; `B*N` is `N` times `B` |
//! | `crash at_write=N\|none seed=N keep=N tear=N` | the crash plan (per-mille values ≤ 1000) |
//! | `fault op=read\|write\|flush when=nth:N\|block:N\|always\|first-each zone=NAME\|any sticky=0\|1` | one fault rule |
//! | `fault-crash at_write=N` | the fault plan's own crash point (only when set) |
//!
//! Ops (`fN` is a file `f0`..`f7`; offsets and lengths in bytes): `create fN`,
//! `write fN off= len= tag=`, `mmap-write fN off= len= tag=`, `read fN off= len=`, `fiemap fN`,
//! `truncate fN size=`, `punch fN off= len=`, `fallocate fN off= len=`, `fsync fN`, `sync`,
//! `unlink fN`, `writeback`, `commit`, `checkpoint`, `migrate fN to=extents|indirect`.
//!
//! # Reading
//!
//! Blank lines and lines starting with `#` are ignored, as is indentation. After the first line,
//! lines may come in any order, except that op lines belong to the last `thread` line above
//! them; `profile`, `bugs`, `geometry`, `schedule`, `crash` and `fault-crash` appear at most
//! once. A missing line leaves [`Scenario::default()`]'s value (so `e4fuzz-repro v1` alone is the
//! default scenario); so does a missing key of `geometry` or `crash` (and of `fault`'s `zone` and
//! `sticky`). Op keys are all required. `key=value` pairs may come in any order. Every error is
//! `Error::Invalid("line N: …")`: one line, never a panic.
//!
//! `encode` writes the lines in the order of the table, every key, numbers in decimal.

mod fields;

use self::fields::{num, parse_bugs, parse_crash, parse_fault, parse_geometry, parse_op};
use self::fields::{parse_profile, parse_schedule, parse_setup, single, Kv};
use super::{CrashPlan, FileSetup, MigrateTo, Op, Scenario};
use super::{MAX_OPS_PER_THREAD, MAX_THREADS};
use crate::dev::{FaultOp, FaultRule, FaultWhen, Zone};
use crate::{Error, Result};

/// First word of every `.repro` file.
pub const MAGIC: &str = "e4fuzz-repro";
/// The format version this build writes and reads.
pub const VERSION: &str = "v1";

/// The canonical `.repro` text of `s`.
pub fn encode(s: &Scenario) -> String {
    let g = &s.geometry;
    let bugs = if s.bugs.is_empty() {
        "-".to_string()
    } else {
        s.bugs.to_string()
    };
    let mut lines = vec![
        format!("{MAGIC} {VERSION}"),
        format!("profile {}", s.profile),
        format!("bugs {bugs}"),
        format!(
            "geometry block_size={} size={} extents={} metadata_csum={} journal_blocks={}",
            g.block_size,
            g.size_bytes,
            u8::from(g.extents),
            u8::from(g.metadata_csum),
            g.journal_blocks
        ),
    ];
    lines.extend(s.setup.iter().map(setup_line));
    for (t, ops) in s.threads.iter().enumerate() {
        lines.push(format!("thread {t}"));
        lines.extend(ops.iter().map(|op| format!("  {}", op_line(op))));
    }
    lines.push(schedule_line(&s.schedule));
    lines.push(crash_line(&s.crash));
    lines.extend(s.faults.rules.iter().map(fault_line));
    if let Some(w) = s.faults.crash_at_write {
        lines.push(format!("fault-crash at_write={w}"));
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

fn setup_line(f: &FileSetup) -> String {
    let kind = if f.indirect { "indirect" } else { "extents" };
    let mut line = format!("setup f{} {kind}", f.file);
    for (off, len, tag) in &f.writes {
        line.push_str(&format!(" write={off}+{len}:{tag}"));
    }
    line
}

/// The op's line (without indentation).
pub fn op_line(op: &Op) -> String {
    match *op {
        Op::Create { file } => format!("create f{file}"),
        Op::Write {
            file,
            off,
            len,
            tag,
        } => format!("write f{file} off={off} len={len} tag={tag}"),
        Op::MmapWrite {
            file,
            off,
            len,
            tag,
        } => format!("mmap-write f{file} off={off} len={len} tag={tag}"),
        Op::Read { file, off, len } => format!("read f{file} off={off} len={len}"),
        Op::Fiemap { file } => format!("fiemap f{file}"),
        Op::Truncate { file, size } => format!("truncate f{file} size={size}"),
        Op::Punch { file, off, len } => format!("punch f{file} off={off} len={len}"),
        Op::Fallocate { file, off, len } => format!("fallocate f{file} off={off} len={len}"),
        Op::Fsync { file } => format!("fsync f{file}"),
        Op::Sync => "sync".into(),
        Op::Unlink { file } => format!("unlink f{file}"),
        Op::Writeback => "writeback".into(),
        Op::Commit => "commit".into(),
        Op::Checkpoint => "checkpoint".into(),
        Op::Migrate { file, to } => format!("migrate f{file} to={}", migrate_name(to)),
    }
}

fn migrate_name(to: MigrateTo) -> &'static str {
    match to {
        MigrateTo::Extents => "extents",
        MigrateTo::Indirect => "indirect",
    }
}

fn schedule_line(schedule: &[u8]) -> String {
    if schedule.is_empty() {
        return "schedule -".into();
    }
    // Runs of four equal bytes or more are written `B*N`.
    let mut items = Vec::new();
    for run in schedule.chunk_by(|a, b| a == b) {
        match run.len() {
            n @ 4.. => items.push(format!("{}*{n}", run[0])),
            _ => items.extend(run.iter().map(u8::to_string)),
        }
    }
    format!("schedule {}", items.join(" "))
}

fn crash_line(c: &CrashPlan) -> String {
    let at = c.at_write.map_or("none".to_string(), |w| w.to_string());
    format!(
        "crash at_write={at} seed={} keep={} tear={}",
        c.fates_seed, c.keep_per_mille, c.tear_per_mille
    )
}

fn fault_line(r: &FaultRule) -> String {
    let op = match r.op {
        FaultOp::Read => "read",
        FaultOp::Write => "write",
        FaultOp::Flush => "flush",
    };
    let when = match r.when {
        FaultWhen::Nth(n) => format!("nth:{n}"),
        FaultWhen::Block(b) => format!("block:{}", b.0),
        FaultWhen::Always => "always".into(),
        FaultWhen::FirstEach => "first-each".into(),
    };
    let zone = r.zone.map_or("any", Zone::name);
    format!(
        "fault op={op} when={when} zone={zone} sticky={}",
        u8::from(r.sticky)
    )
}

/// Parse a `.repro` text (see the module doc); errors name the line.
pub fn decode(text: &str) -> Result<Scenario> {
    let mut lines = text.lines();
    check_magic(lines.next()).map_err(|e| Error::Invalid(format!("line 1: {e}")))?;
    let mut dec = Decoder::default();
    // Lines whose data is made in memory whole (setup writes, writes, stores, reads): checked
    // against the image's size once the geometry is known.
    let mut data_lines = Vec::new();
    for (i, raw) in lines.enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |e| Error::Invalid(format!("line {}: {e}", i + 2));
        dec.line(line).map_err(at)?;
        if let Some(len) = dec.data_len(line) {
            data_lines.push((i + 2, len));
        }
    }
    let s = dec.finish();
    let max = s.geometry.size_bytes;
    if let Some((n, len)) = data_lines.into_iter().find(|&(_, len)| len > max) {
        return Err(Error::Invalid(format!(
            "line {n}: {len} bytes, longer than the image ({max} bytes): the data is made in \
             memory whole"
        )));
    }
    Ok(s)
}

fn check_magic(line: Option<&str>) -> Result<(), String> {
    let expected = format!("expected `{MAGIC} {VERSION}`");
    let mut words = line.unwrap_or("").split_whitespace();
    if words.next() != Some(MAGIC) {
        return Err(format!("not a .repro file: {expected} first"));
    }
    match words.next() {
        None => Err(format!("missing version: {expected}")),
        Some(VERSION) => match words.next() {
            None => Ok(()),
            Some(w) => Err(format!("unexpected `{w}` after the version")),
        },
        Some(v) => Err(format!(
            "unsupported .repro version `{v}` (this build reads {VERSION})"
        )),
    }
}

/// The scenario being read, and which once-only lines were seen.
#[derive(Default)]
struct Decoder {
    s: Scenario,
    seen: Vec<&'static str>,
    threads: Vec<Vec<Op>>,
}

/// Keywords that may appear once.
const ONCE: [&str; 6] = [
    "profile",
    "bugs",
    "geometry",
    "schedule",
    "crash",
    "fault-crash",
];

impl Decoder {
    fn line(&mut self, line: &str) -> Result<(), String> {
        let mut words = line.split_whitespace();
        let word = words.next().unwrap_or_default();
        let args: Vec<&str> = words.collect();
        if let Some(&key) = ONCE.iter().find(|&&k| k == word) {
            if self.seen.contains(&key) {
                return Err(format!("`{key}` given twice"));
            }
            self.seen.push(key);
        }
        match word {
            "profile" => self.s.profile = parse_profile(single(word, &args)?)?,
            "bugs" => self.s.bugs = parse_bugs(single(word, &args)?)?,
            "geometry" => self.s.geometry = parse_geometry(&args)?,
            "setup" => self.setup(parse_setup(&args)?)?,
            "thread" => self.thread(single(word, &args)?)?,
            "schedule" => self.s.schedule = parse_schedule(&args)?,
            "crash" => self.s.crash = parse_crash(&args)?,
            "fault" => self.s.faults.rules.push(parse_fault(&args)?),
            "fault-crash" => {
                let mut kv = Kv::parse(&args)?;
                let w = num("at_write", kv.need("at_write")?)?;
                kv.done("fault-crash")?;
                self.s.faults.crash_at_write = Some(w);
            }
            _ => self.op(word, &args)?,
        }
        Ok(())
    }

    /// The longest data `line`, just read, carries: a setup write, a write, a store or a read.
    fn data_len(&self, line: &str) -> Option<u64> {
        match line.split_whitespace().next() {
            Some("setup") => self
                .s
                .setup
                .last()?
                .writes
                .iter()
                .map(|w| u64::from(w.1))
                .max(),
            Some("write" | "mmap-write" | "read") => match *self.threads.last()?.last()? {
                Op::Write { len, .. } | Op::MmapWrite { len, .. } | Op::Read { len, .. } => {
                    Some(u64::from(len))
                }
                _ => None,
            },
            _ => None,
        }
    }

    fn setup(&mut self, f: FileSetup) -> Result<(), String> {
        if self.s.setup.iter().any(|g| g.file == f.file) {
            return Err(format!("f{} set up twice", f.file));
        }
        self.s.setup.push(f);
        Ok(())
    }

    fn thread(&mut self, n: &str) -> Result<(), String> {
        let n: usize = num("thread", n)?;
        if n >= MAX_THREADS {
            return Err(format!(
                "thread {n}: at most {MAX_THREADS} threads (0 to 3)"
            ));
        }
        if n != self.threads.len() {
            let next = self.threads.len();
            return Err(format!(
                "expected `thread {next}` (threads are numbered in order)"
            ));
        }
        self.threads.push(Vec::new());
        Ok(())
    }

    fn op(&mut self, word: &str, args: &[&str]) -> Result<(), String> {
        let Some(op) = parse_op(word, args)? else {
            return Err(format!("unknown keyword `{word}`"));
        };
        let t = self.threads.len().saturating_sub(1);
        let Some(ops) = self.threads.last_mut() else {
            return Err(format!("`{word}` before any `thread` line"));
        };
        if ops.len() >= MAX_OPS_PER_THREAD {
            return Err(format!("thread {t}: more than {MAX_OPS_PER_THREAD} ops"));
        }
        ops.push(op);
        Ok(())
    }

    fn finish(mut self) -> Scenario {
        if !self.threads.is_empty() {
            self.s.threads = self.threads;
        }
        self.s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev::FaultPlan;
    use crate::profile::{Bug, BugSet, PROFILES};
    use crate::scenario::gen::tests::{buffers, XorShift};
    use crate::scenario::gen::{generate, validate};
    use crate::scenario::Geometry;
    use crate::units::Pblk;

    const GOLDEN: &str = "\
e4fuzz-repro v1
profile mainline
bugs S1,T3
geometry block_size=4096 size=33554432 extents=1 metadata_csum=0 journal_blocks=2048
setup f0 indirect write=0+3000:7 write=20480+100:2
setup f2 extents
thread 0
  create f1
  write f1 off=0 len=3000 tag=7
  mmap-write f0 off=1024 len=10 tag=3
  migrate f0 to=extents
  fsync f1
thread 1
  punch f0 off=0 len=4096
  read f0 off=512 len=2048
  fiemap f2
  truncate f2 size=70000
  fallocate f2 off=4096 len=8192
  sync
  writeback
  commit
  migrate f2 to=indirect
thread 2
  create f4
  unlink f4
schedule 0 1 1 0 3
crash at_write=57 seed=123 keep=500 tear=100
fault op=write when=nth:3 zone=journal sticky=0
fault op=read when=block:70 zone=any sticky=1
fault op=flush when=always zone=any sticky=0
fault op=read when=first-each zone=tree-meta sticky=0
fault-crash at_write=9
";

    fn golden() -> Scenario {
        let (f0, f1, f2, f4) = (0, 1, 2, 4);
        Scenario {
            geometry: Geometry {
                block_size: 4096,
                size_bytes: 32 << 20,
                extents: true,
                metadata_csum: false,
                journal_blocks: 2048,
            },
            profile: "mainline".into(),
            bugs: BugSet::of(&[Bug::S1, Bug::T3]),
            setup: vec![
                FileSetup {
                    file: f0,
                    indirect: true,
                    writes: vec![(0, 3000, 7), (20480, 100, 2)],
                },
                FileSetup {
                    file: f2,
                    indirect: false,
                    writes: vec![],
                },
            ],
            threads: vec![
                vec![
                    Op::Create { file: f1 },
                    Op::Write {
                        file: f1,
                        off: 0,
                        len: 3000,
                        tag: 7,
                    },
                    Op::MmapWrite {
                        file: f0,
                        off: 1024,
                        len: 10,
                        tag: 3,
                    },
                    Op::Migrate {
                        file: f0,
                        to: MigrateTo::Extents,
                    },
                    Op::Fsync { file: f1 },
                ],
                vec![
                    Op::Punch {
                        file: f0,
                        off: 0,
                        len: 4096,
                    },
                    Op::Read {
                        file: f0,
                        off: 512,
                        len: 2048,
                    },
                    Op::Fiemap { file: f2 },
                    Op::Truncate {
                        file: f2,
                        size: 70000,
                    },
                    Op::Fallocate {
                        file: f2,
                        off: 4096,
                        len: 8192,
                    },
                    Op::Sync,
                    Op::Writeback,
                    Op::Commit,
                    Op::Migrate {
                        file: f2,
                        to: MigrateTo::Indirect,
                    },
                ],
                vec![Op::Create { file: f4 }, Op::Unlink { file: f4 }],
            ],
            schedule: vec![0, 1, 1, 0, 3],
            crash: CrashPlan {
                at_write: Some(57),
                fates_seed: 123,
                keep_per_mille: 500,
                tear_per_mille: 100,
            },
            faults: FaultPlan {
                rules: vec![
                    FaultRule::new(FaultOp::Write, FaultWhen::Nth(3)).in_zone(Zone::Journal),
                    FaultRule::new(FaultOp::Read, FaultWhen::Block(Pblk(70))).sticky(),
                    FaultRule::new(FaultOp::Flush, FaultWhen::Always),
                    FaultRule::new(FaultOp::Read, FaultWhen::FirstEach).in_zone(Zone::TreeMeta),
                ],
                crash_at_write: Some(9),
            },
        }
    }

    #[test]
    fn golden_text_round_trips() {
        assert_eq!(decode(GOLDEN), Ok(golden()));
        assert_eq!(encode(&golden()), GOLDEN);
        assert_eq!(validate(&golden()), Ok(()));
        assert_eq!(Scenario::from_any(GOLDEN.as_bytes()), Ok(golden()));
        assert_eq!(Scenario::from_any(&[0, 1]), Ok(generate(&[0, 1])));
        assert!(Scenario::from_any(b"e4fuzz-repro v1\n\xFF").is_err());
    }

    #[test]
    fn long_runs_of_a_schedule_byte_are_written_b_times_n() {
        let mut s = golden();
        s.schedule = [vec![0; 85], vec![1], vec![7; 3], vec![2; 4]].concat();
        let text = encode(&s);
        assert!(text.contains("\nschedule 0*85 1 7 7 7 2*4\n"), "{text}");
        assert_eq!(decode(&text), Ok(s));
        let line = |l: &str| decode(&GOLDEN.replace("schedule 0 1 1 0 3", l)).map(|s| s.schedule);
        assert_eq!(line("schedule 3*1 0*2 5"), Ok(vec![3, 0, 0, 5]));
    }

    #[test]
    fn comments_order_indentation_and_defaults() {
        assert_eq!(decode("e4fuzz-repro v1"), Ok(Scenario::default()));
        assert_eq!(
            decode("e4fuzz-repro v1\r\n\r\n# nothing\r\n"),
            Ok(Scenario::default())
        );
        // Lines reordered, keys reordered, comments, CRLF, no indentation.
        let mut lines: Vec<&str> = GOLDEN.lines().collect();
        let header = lines.remove(0);
        lines.rotate_left(3); // setup, threads, … first; profile, bugs, geometry last
        let shuffled = format!(
            "{header}\r\n# a comment\n\n{}\n",
            lines
                .join("\n")
                .replace("  ", "")
                .replace("seed=123 keep=500", "keep=500 seed=123")
        );
        assert_eq!(decode(&shuffled), Ok(golden()));
        let partial =
            "e4fuzz-repro v1\ngeometry block_size=4096\ncrash seed=5\nfault op=read when=always";
        let s = decode(partial).unwrap();
        assert_eq!(
            s.geometry,
            Geometry {
                block_size: 4096,
                ..Geometry::default()
            }
        );
        assert_eq!(
            s.crash,
            CrashPlan {
                fates_seed: 5,
                ..CrashPlan::default()
            }
        );
        assert_eq!(
            s.faults.rules,
            vec![FaultRule::new(FaultOp::Read, FaultWhen::Always)]
        );
        assert_eq!(
            encode(&Scenario::default()),
            "\
e4fuzz-repro v1
profile fixed
bugs -
geometry block_size=1024 size=16777216 extents=1 metadata_csum=1 journal_blocks=1024
thread 0
schedule -
crash at_write=none seed=0 keep=500 tear=100
"
        );
    }

    /// A generated scenario with the parts the generator leaves alone drawn too.
    fn enrich(mut s: Scenario, rng: &mut XorShift) -> Scenario {
        let r = rng.next();
        s.profile = PROFILES[usize::try_from(r % 5).unwrap()].name.into();
        for b in Bug::ALL {
            if rng.next() % 5 == 0 {
                s.bugs = s.bugs.with(b);
            }
        }
        if r & 0x100 != 0 {
            let zone = Zone::ALL[usize::try_from(r % 9).unwrap()];
            let rule = FaultRule::new(FaultOp::Read, FaultWhen::Block(Pblk(rng.next())));
            s.faults.rules.push(rule.in_zone(zone));
            s.faults
                .rules
                .push(FaultRule::new(FaultOp::Flush, FaultWhen::Always).sticky());
        }
        if r & 0x200 != 0 {
            s.faults.crash_at_write = Some(rng.next());
            s.crash.at_write = Some(u64::MAX);
        }
        s
    }

    #[test]
    fn generated_scenarios_round_trip() {
        let mut rng = XorShift(11);
        for (i, buf) in buffers().iter().enumerate() {
            let s = enrich(generate(buf), &mut rng);
            let text = encode(&s);
            assert_eq!(decode(&text), Ok(s), "input {i}:\n{text}");
            assert!(text.lines().all(|l| l == l.trim_end() && !l.is_empty()));
        }
    }

    const H: &str = "e4fuzz-repro v1\n";

    #[test]
    fn malformed_texts_name_the_line() {
        let ops65 = format!("{H}thread 0\n{}", "  sync\n".repeat(65));
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "line 1: not a .repro file: expected `e4fuzz-repro v1` first"),
            ("# c\ne4fuzz-repro v1\n".into(), "line 1: not a .repro file: expected `e4fuzz-repro v1` first"),
            ("e4fuzz-repro\n".into(), "line 1: missing version: expected `e4fuzz-repro v1`"),
            ("e4fuzz-repro v2\n".into(), "line 1: unsupported .repro version `v2` (this build reads v1)"),
            ("e4fuzz-repro v1 x\n".into(), "line 1: unexpected `x` after the version"),
            (format!("{H}frobnicate f0\n"), "line 2: unknown keyword `frobnicate`"),
            (format!("{H}geometry block_size=1024 color=red\n"), "line 2: unknown key `color` for geometry"),
            (format!("{H}geometry block_size=1024 block_size=4096\n"), "line 2: key `block_size` given twice"),
            (format!("{H}geometry block_size=512\n"), "line 2: unsupported geometry: block size 512 (1024, 2048 or 4096)"),
            (format!("{H}geometry extents=yes\n"), "line 2: bad flag `yes` for extents (0 or 1)"),
            (format!("{H}geometry size=1073742848\n"), "line 2: unsupported geometry: image of 1073742848 bytes (at most 1073741824: a scenario's image is held in memory)"),
            (format!("{H}setup f1 extents write=0+16777217:1\n"), "line 2: 16777217 bytes, longer than the image (16777216 bytes): the data is made in memory whole"),
            (format!("{H}thread 0\n  read f0 off=0 len=40000000\ngeometry size=33554432\n"), "line 3: 40000000 bytes, longer than the image (33554432 bytes): the data is made in memory whole"),
            (format!("{H}thread 0\n  write f0 off=0 len=1 tag=0 mode=3\n"), "line 3: unknown key `mode` for write"),
            (format!("{H}thread 0\n  write f0 off=x len=1 tag=0\n"), "line 3: bad number `x` for off"),
            (format!("{H}thread 0\n  write f0 off=-1 len=1 tag=0\n"), "line 3: bad number `-1` for off"),
            (format!("{H}thread 0\n  write f0 off=0 len=4294967296 tag=0\n"), "line 3: number 4294967296 out of range for len"),
            (format!("{H}thread 0\n  write f0 off=0 len=1\n"), "line 3: missing key `tag`"),
            (format!("{H}thread 0\n  write 0 off=0 len=1 tag=0\n"), "line 3: expected a file f0..f7, got `0`"),
            (format!("{H}thread 0\n  fsync f8\n"), "line 3: file index 8 out of range (f0..f7)"),
            (format!("{H}thread 0\n  fsync f99999999999999999999\n"), "line 3: file index 99999999999999999999 out of range (f0..f7)"),
            (format!("{H}thread 0\n  fsync fx\n"), "line 3: bad file `fx` (f0..f7)"),
            (format!("{H}thread 0\n  fsync\n"), "line 3: `fsync` needs a file (f0..f7)"),
            (format!("{H}thread 0\n  sync now\n"), "line 3: `sync` takes no operands"),
            (format!("{H}thread 0\n  migrate f0 to=sideways\n"), "line 3: bad migrate target `sideways` (extents or indirect)"),
            (format!("{H}setup f9 indirect\n"), "line 2: file index 9 out of range (f0..f7)"),
            (format!("{H}setup f1 indirect\nsetup f1 extents\n"), "line 3: f1 set up twice"),
            (format!("{H}setup f1\n"), "line 2: expected `setup fN indirect|extents write=OFF+LEN:TAG…`"),
            (format!("{H}setup f1 mapped\n"), "line 2: expected indirect or extents, got `mapped`"),
            (format!("{H}setup f0 indirect write=1+2\n"), "line 2: expected write=OFF+LEN:TAG, got `write=1+2`"),
            (format!("{H}thread 0\nthread 1\nthread 2\nthread 3\nthread 4\n"), "line 6: thread 4: at most 4 threads (0 to 3)"),
            (format!("{H}thread 1\n"), "line 2: expected `thread 0` (threads are numbered in order)"),
            (format!("{H}  sync\n"), "line 2: `sync` before any `thread` line"),
            (ops65, "line 67: thread 0: more than 64 ops"),
            (format!("{H}bugs S1,S99\n"), "line 2: unknown bug id `S99` (known: S1,S2,S3,S4,S5,S6,S7,S8,S9,S10,S14,S16,S17,T2,T3,T4,U1,U2,U3,S18,U4,S15,U5)"),
            (format!("{H}bugs\n"), "line 2: `bugs` takes one value"),
            (format!("{H}profile nope\n"), "line 2: unknown profile `nope` (known: fixed, mainline, merged-2008, thread-v1, pre-patch)"),
            (format!("{H}\n# c\nprofile fixed\nprofile fixed\n"), "line 5: `profile` given twice"),
            (format!("{H}schedule 1 256\n"), "line 2: number 256 out of range for schedule"),
            (format!("{H}schedule\n"), "line 2: `schedule` needs bytes or `-`"),
            (format!("{H}schedule 0*0\n"), "line 2: repeat count 0 in `0*0` not in 1..=1048576"),
            (format!("{H}schedule 0*9999999\n"), "line 2: repeat count 9999999 in `0*9999999` not in 1..=1048576"),
            (format!("{H}schedule 256*2\n"), "line 2: number 256 out of range for schedule"),
            (format!("{H}schedule 1*x\n"), "line 2: bad number `x` for schedule repeat"),
            (format!("{H}crash keep=1001\n"), "line 2: keep=1001 above 1000 per mille"),
            (format!("{H}crash at_write=soon\n"), "line 2: bad number `soon` for at_write"),
            (format!("{H}fault op=write when=nth:1 zone=swap\n"), "line 2: unknown zone `swap` (known: any, superblock, group-desc, bitmap, inode-table, journal, tree-meta, dir-data, data, unknown)"),
            (format!("{H}fault op=write when=sometimes\n"), "line 2: bad when `sometimes` (nth:N, block:N, always or first-each)"),
            (format!("{H}fault op=trim when=always\n"), "line 2: unknown fault op `trim` (read, write or flush)"),
            (format!("{H}fault when=always\n"), "line 2: missing key `op`"),
            (format!("{H}fault op=read when=always sticky\n"), "line 2: expected key=value, got `sticky`"),
            (format!("{H}fault-crash at_write=1 now=1\n"), "line 2: unknown key `now` for fault-crash"),
        ];
        for (text, err) in cases {
            assert_eq!(
                decode(&text),
                Err(Error::Invalid(err.to_string())),
                "{text}"
            );
        }
    }

    /// Whatever `decode` accepts re-encodes to a text that decodes to the same scenario.
    fn decode_is_total(text: &str) {
        if let Ok(s) = decode(text) {
            assert_eq!(decode(&encode(&s)), Ok(s), "{text}");
        }
    }

    #[test]
    fn random_texts_never_panic() {
        let mut rng = XorShift(0xDEC0DE);
        for _ in 0..2000 {
            let n = usize::try_from(rng.next() % 300).unwrap();
            let mut bytes = rng.bytes(n);
            if rng.next() % 2 == 0 {
                bytes.splice(0..0, H.bytes());
            }
            decode_is_total(&String::from_utf8_lossy(&bytes));
        }
        // Token-level mutations of the golden text.
        let words: Vec<&str> = GOLDEN.split_whitespace().collect();
        let junk = [
            "=",
            "f",
            "-",
            "99999999999999999999999",
            "nth:",
            "+",
            ":",
            "",
            "\n",
            "thread",
            "0",
        ];
        for _ in 0..3000 {
            let mut tokens: Vec<String> = GOLDEN.split(' ').map(str::to_string).collect();
            for _ in 0..1 + rng.next() % 3 {
                let i = usize::try_from(rng.next()).unwrap() % tokens.len();
                let r = usize::try_from(rng.next()).unwrap();
                tokens[i] = match r % 4 {
                    0 => junk[r / 4 % junk.len()].to_string(),
                    1 => words[r / 4 % words.len()].to_string(),
                    2 => tokens[i].chars().take(r / 4 % 8).collect(),
                    _ => format!("{}{}", tokens[i], junk[r / 4 % junk.len()]),
                };
            }
            let text = tokens.join(" ");
            if !text.starts_with(H) {
                continue;
            }
            decode_is_total(&text);
        }
    }
}
