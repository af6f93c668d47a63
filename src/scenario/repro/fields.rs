//! The field parsers of the `.repro` reader: `key=value` pairs, numbers, files, and one parser
//! per line kind and per op. Each returns a message without the line number, which
//! [`decode`](super::decode) adds.

use crate::dev::{FaultOp, FaultRule, FaultWhen, Zone};
use crate::profile::{Bug, BugSet, Profile, PROFILES};
use crate::scenario::gen::geometry_problem;
use crate::scenario::{CrashPlan, FileSetup, Geometry, MigrateTo, Op, MAX_FILES};
use crate::units::Pblk;
use std::str::FromStr;

/// `key=value` pairs of one line.
pub(super) struct Kv<'a> {
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> Kv<'a> {
    pub(super) fn parse(tokens: &[&'a str]) -> Result<Kv<'a>, String> {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for t in tokens {
            let (k, v) = t
                .split_once('=')
                .ok_or_else(|| format!("expected key=value, got `{t}`"))?;
            if pairs.iter().any(|(seen, _)| *seen == k) {
                return Err(format!("key `{k}` given twice"));
            }
            pairs.push((k, v));
        }
        Ok(Kv { pairs })
    }

    fn take(&mut self, key: &str) -> Option<&'a str> {
        let i = self.pairs.iter().position(|(k, _)| *k == key)?;
        Some(self.pairs.remove(i).1)
    }

    pub(super) fn need(&mut self, key: &str) -> Result<&'a str, String> {
        self.take(key).ok_or_else(|| format!("missing key `{key}`"))
    }

    /// An optional key: parsed with `f`, or `default`.
    fn or<T>(
        &mut self,
        key: &str,
        default: T,
        f: impl Fn(&str, &str) -> Result<T, String>,
    ) -> Result<T, String> {
        self.take(key).map_or(Ok(default), |v| f(key, v))
    }

    pub(super) fn done(&self, what: &str) -> Result<(), String> {
        match self.pairs.first() {
            Some((k, _)) => Err(format!("unknown key `{k}` for {what}")),
            None => Ok(()),
        }
    }
}

pub(super) fn single<'a>(word: &str, args: &[&'a str]) -> Result<&'a str, String> {
    match args {
        [one] => Ok(one),
        _ => Err(format!("`{word}` takes one value")),
    }
}

/// A decimal number (digits only) of type `T`.
pub(super) fn num<T: FromStr>(key: &str, s: &str) -> Result<T, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad number `{s}` for {key}"));
    }
    s.parse()
        .map_err(|_| format!("number {s} out of range for {key}"))
}

pub(super) fn flag(key: &str, s: &str) -> Result<bool, String> {
    match s {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(format!("bad flag `{s}` for {key} (0 or 1)")),
    }
}

pub(super) fn parse_file(s: &str) -> Result<u8, String> {
    let digits = s
        .strip_prefix('f')
        .ok_or_else(|| format!("expected a file f0..f7, got `{s}`"))?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad file `{s}` (f0..f7)"));
    }
    digits
        .parse::<u8>()
        .ok()
        .filter(|&n| n < MAX_FILES)
        .ok_or_else(|| format!("file index {digits} out of range (f0..f7)"))
}

pub(super) fn parse_profile(name: &str) -> Result<String, String> {
    if Profile::by_name(name).is_some() {
        return Ok(name.to_string());
    }
    let known: Vec<&str> = PROFILES.iter().map(|p| p.name).collect();
    Err(format!(
        "unknown profile `{name}` (known: {})",
        known.join(", ")
    ))
}

pub(super) fn parse_bugs(list: &str) -> Result<BugSet, String> {
    if list == "-" {
        return Ok(BugSet::NONE);
    }
    list.split(',')
        .try_fold(BugSet::NONE, |set, id| match Bug::parse(id) {
            Some(b) if !id.is_empty() => Ok(set.with(b)),
            _ => Err(format!(
                "unknown bug id `{id}` (known: {})",
                BugSet::of(&Bug::ALL)
            )),
        })
}

pub(super) fn parse_geometry(args: &[&str]) -> Result<Geometry, String> {
    let d = Geometry::default();
    let mut kv = Kv::parse(args)?;
    let g = Geometry {
        block_size: kv.or("block_size", d.block_size, num)?,
        size_bytes: kv.or("size", d.size_bytes, num)?,
        extents: kv.or("extents", d.extents, flag)?,
        metadata_csum: kv.or("metadata_csum", d.metadata_csum, flag)?,
        journal_blocks: kv.or("journal_blocks", d.journal_blocks, num)?,
    };
    kv.done("geometry")?;
    match geometry_problem(&g) {
        Some(p) => Err(format!("unsupported geometry: {p}")),
        None => Ok(g),
    }
}

pub(super) fn parse_setup(args: &[&str]) -> Result<FileSetup, String> {
    let [file, kind, writes @ ..] = args else {
        return Err("expected `setup fN indirect|extents write=OFF+LEN:TAG…`".into());
    };
    let indirect = match *kind {
        "indirect" => true,
        "extents" => false,
        k => return Err(format!("expected indirect or extents, got `{k}`")),
    };
    let writes = writes
        .iter()
        .map(|w| parse_setup_write(w))
        .collect::<Result<_, _>>()?;
    Ok(FileSetup {
        file: parse_file(file)?,
        indirect,
        writes,
    })
}

fn parse_setup_write(token: &str) -> Result<(u64, u32, u8), String> {
    let bad = || format!("expected write=OFF+LEN:TAG, got `{token}`");
    let spec = token.strip_prefix("write=").ok_or_else(bad)?;
    let (off, rest) = spec.split_once('+').ok_or_else(bad)?;
    let (len, tag) = rest.split_once(':').ok_or_else(bad)?;
    Ok((num("off", off)?, num("len", len)?, num("tag", tag)?))
}

pub(super) fn parse_schedule(args: &[&str]) -> Result<Vec<u8>, String> {
    match args {
        ["-"] => Ok(Vec::new()),
        [] => Err("`schedule` needs bytes or `-`".into()),
        _ => {
            let mut out = Vec::new();
            for arg in args {
                let (byte, times) = match arg.split_once('*') {
                    Some((b, n)) => (b, num::<usize>("schedule repeat", n)?),
                    None => (*arg, 1),
                };
                if !(1..=MAX_SCHEDULE_REPEAT).contains(&times) {
                    return Err(format!(
                        "repeat count {times} in `{arg}` not in 1..={MAX_SCHEDULE_REPEAT}"
                    ));
                }
                let byte: u8 = num("schedule", byte)?;
                out.resize(out.len() + times, byte);
            }
            Ok(out)
        }
    }
}

/// Most repeats of one `B*N` schedule item (a bound against absurd allocations).
const MAX_SCHEDULE_REPEAT: usize = 1 << 20;

fn per_mille(key: &str, s: &str) -> Result<u16, String> {
    let v: u16 = num(key, s)?;
    if v > 1000 {
        return Err(format!("{key}={v} above 1000 per mille"));
    }
    Ok(v)
}

pub(super) fn parse_crash(args: &[&str]) -> Result<CrashPlan, String> {
    let d = CrashPlan::default();
    let mut kv = Kv::parse(args)?;
    let at_write = |key: &str, v: &str| match v {
        "none" => Ok(None),
        _ => num(key, v).map(Some),
    };
    let c = CrashPlan {
        at_write: kv.or("at_write", d.at_write, at_write)?,
        fates_seed: kv.or("seed", d.fates_seed, num)?,
        keep_per_mille: kv.or("keep", d.keep_per_mille, per_mille)?,
        tear_per_mille: kv.or("tear", d.tear_per_mille, per_mille)?,
    };
    kv.done("crash")?;
    Ok(c)
}

pub(super) fn parse_fault(args: &[&str]) -> Result<FaultRule, String> {
    let mut kv = Kv::parse(args)?;
    let op = match kv.need("op")? {
        "read" => FaultOp::Read,
        "write" => FaultOp::Write,
        "flush" => FaultOp::Flush,
        o => return Err(format!("unknown fault op `{o}` (read, write or flush)")),
    };
    let when = parse_when(kv.need("when")?)?;
    let zone = kv.or("zone", None, |_, z| parse_zone(z))?;
    let sticky = kv.or("sticky", false, flag)?;
    kv.done("fault")?;
    Ok(FaultRule {
        op,
        when,
        zone,
        sticky,
    })
}

fn parse_when(w: &str) -> Result<FaultWhen, String> {
    match w {
        "always" => return Ok(FaultWhen::Always),
        "first-each" => return Ok(FaultWhen::FirstEach),
        _ => {}
    }
    match w.split_once(':') {
        Some(("nth", n)) => Ok(FaultWhen::Nth(num("nth", n)?)),
        Some(("block", b)) => Ok(FaultWhen::Block(Pblk(num("block", b)?))),
        _ => Err(format!(
            "bad when `{w}` (nth:N, block:N, always or first-each)"
        )),
    }
}

fn parse_zone(z: &str) -> Result<Option<Zone>, String> {
    if z == "any" {
        return Ok(None);
    }
    Zone::from_name(z).map(Some).ok_or_else(|| {
        let known: Vec<&str> = Zone::ALL.iter().map(|z| z.name()).collect();
        format!("unknown zone `{z}` (known: any, {})", known.join(", "))
    })
}

/// `fN key=value…` with exactly `keys`: the file and the values, in `keys` order.
fn file_op<'a>(word: &str, args: &[&'a str], keys: &[&str]) -> Result<(u8, Vec<&'a str>), String> {
    let Some((first, rest)) = args.split_first() else {
        return Err(format!("`{word}` needs a file (f0..f7)"));
    };
    let file = parse_file(first)?;
    let mut kv = Kv::parse(rest)?;
    let values = keys.iter().map(|k| kv.need(k)).collect::<Result<_, _>>()?;
    kv.done(word)?;
    Ok((file, values))
}

/// The op named `word`, or `None` if `word` names no op.
pub(super) fn parse_op(word: &str, args: &[&str]) -> Result<Option<Op>, String> {
    let file_only = |make: fn(u8) -> Op| file_op(word, args, &[]).map(|(f, _)| make(f));
    let bare = |op: Op| match args {
        [] => Ok(op),
        _ => Err(format!("`{word}` takes no operands")),
    };
    let op = match word {
        "create" => file_only(|file| Op::Create { file })?,
        "fiemap" => file_only(|file| Op::Fiemap { file })?,
        "fsync" => file_only(|file| Op::Fsync { file })?,
        "unlink" => file_only(|file| Op::Unlink { file })?,
        "sync" => bare(Op::Sync)?,
        "writeback" => bare(Op::Writeback)?,
        "commit" => bare(Op::Commit)?,
        "checkpoint" => bare(Op::Checkpoint)?,
        "write" | "mmap-write" => {
            let (file, v) = file_op(word, args, &["off", "len", "tag"])?;
            let (off, len, tag) = (num("off", v[0])?, num("len", v[1])?, num("tag", v[2])?);
            if word == "write" {
                Op::Write {
                    file,
                    off,
                    len,
                    tag,
                }
            } else {
                Op::MmapWrite {
                    file,
                    off,
                    len,
                    tag,
                }
            }
        }
        "read" => {
            let (file, v) = file_op(word, args, &["off", "len"])?;
            Op::Read {
                file,
                off: num("off", v[0])?,
                len: num("len", v[1])?,
            }
        }
        "punch" | "fallocate" => {
            let (file, v) = file_op(word, args, &["off", "len"])?;
            let (off, len) = (num("off", v[0])?, num("len", v[1])?);
            if word == "punch" {
                Op::Punch { file, off, len }
            } else {
                Op::Fallocate { file, off, len }
            }
        }
        "truncate" => {
            let (file, v) = file_op(word, args, &["size"])?;
            Op::Truncate {
                file,
                size: num("size", v[0])?,
            }
        }
        "migrate" => {
            let (file, v) = file_op(word, args, &["to"])?;
            let to = match v[0] {
                "extents" => MigrateTo::Extents,
                "indirect" => MigrateTo::Indirect,
                t => return Err(format!("bad migrate target `{t}` (extents or indirect)")),
            };
            Op::Migrate { file, to }
        }
        _ => return Ok(None),
    };
    Ok(Some(op))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_plain_decimal() {
        assert_eq!(num::<u64>("off", "007"), Ok(7));
        assert_eq!(num::<u8>("tag", "255"), Ok(255));
        assert_eq!(
            num::<u8>("tag", "256"),
            Err("number 256 out of range for tag".into())
        );
        for bad in ["", "+1", "-1", "0x10", "1e3", " 1"] {
            assert_eq!(
                num::<u64>("off", bad),
                Err(format!("bad number `{bad}` for off"))
            );
        }
        assert_eq!(flag("extents", "1"), Ok(true));
        assert_eq!(
            flag("extents", "true"),
            Err("bad flag `true` for extents (0 or 1)".into())
        );
    }

    #[test]
    fn files_and_key_values() {
        assert_eq!(parse_file("f7"), Ok(7));
        assert_eq!(
            parse_file("f8"),
            Err("file index 8 out of range (f0..f7)".into())
        );
        assert_eq!(parse_file("f"), Err("bad file `f` (f0..f7)".into()));
        let mut kv = Kv::parse(&["a=1", "b=", "c=x=y"]).unwrap();
        assert_eq!(kv.need("c"), Ok("x=y"));
        assert_eq!(kv.need("c"), Err("missing key `c`".into()));
        assert_eq!(kv.or("b", 5u8, num), Err("bad number `` for b".into()));
        assert_eq!(kv.done("test"), Err("unknown key `a` for test".into()));
        assert_eq!(parse_bugs("s1,t3"), Ok(BugSet::of(&[Bug::S1, Bug::T3])));
        assert_eq!(
            parse_when("block:18446744073709551615"),
            Ok(FaultWhen::Block(Pblk(u64::MAX)))
        );
        assert_eq!(parse_zone("tree-meta"), Ok(Some(Zone::TreeMeta)));
    }
}
