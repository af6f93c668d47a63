//! The fuzzing commands: `run` (the campaign), `repro` and `minimize`. Flags are parsed here
//! and handed to [`crate::harness`]; the output formats are here too.

use super::{EXIT_FINDING, EXIT_OK};
use crate::error::{Error, Result};
use crate::harness::campaign::{CampaignOpts, CampaignReport, CrashModel, Found, Progress};
use crate::harness::exec::{execute_images, Images};
use crate::harness::minimize::{minimize, MinimizeOpts};
use crate::harness::{run_campaign, ExecOpts, Verdict};
use crate::oracle::kernel;
use crate::profile::{Bug, BugSet, Profile};
use crate::scenario::Scenario;
use clap::Args;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `e4fuzz run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Engine profile (see `e4fuzz profiles`).
    #[arg(long, default_value = "fixed")]
    profile: String,
    /// A seeded bug to switch on (repeatable).
    #[arg(long = "bug", value_name = "ID")]
    bugs: Vec<String>,
    /// Time budget in seconds (default 60 unless --execs is given).
    #[arg(long, value_name = "SECS")]
    time: Option<f64>,
    /// Stop after this many executions.
    #[arg(long, value_name = "N")]
    execs: Option<u64>,
    /// Campaign seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Where minimized `.repro` files of findings go.
    #[arg(long, default_value = "findings")]
    out: PathBuf,
    /// Check one execution in N with the external e2fsck.
    #[arg(long, value_name = "N")]
    e2fsck_sample: Option<u64>,
    /// Judge one execution in N with the real kernel too (the `kernel` oracle of `repro
    /// --kernel`: its journal replay of the kept crash state, and each migration alone; root
    /// and loop mounts; ~0.25 s a check). Without loop mounts: one line saying why, and the
    /// campaign runs without it.
    #[arg(long, value_name = "N")]
    kernel_sample: Option<u64>,
    /// Stop once N distinct findings are reported (1: stop at the first, as libFuzzer does).
    #[arg(long, value_name = "N")]
    max_findings: Option<usize>,
    /// Which crash states to check: `reorder` keeps, loses or tears each write not yet
    /// durable at a crash point, as the scenario draws; `prefix` keeps every write issued
    /// before it, whole and in order (dm-log-writes' replay), to see what reordering adds.
    #[arg(long, value_enum, default_value = "reorder")]
    crash_model: CrashModel,
    /// Print one JSON object at the end.
    #[arg(long)]
    json: bool,
}

/// `e4fuzz repro`.
#[derive(Args, Debug)]
pub struct ReproArgs {
    /// `.repro` files or raw fuzzer artifacts.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Replay with this profile instead of the recorded one.
    #[arg(long)]
    profile: Option<String>,
    /// Replay with these seeded bugs instead of the recorded ones (repeatable).
    #[arg(long = "bug", value_name = "ID")]
    bugs: Vec<String>,
    /// Write before.img, crash.img and recovered.img here.
    #[arg(long, value_name = "DIR")]
    export: Option<PathBuf>,
    /// Print one JSON object instead of the text report.
    #[arg(long)]
    json: bool,
    /// Also judge with the real kernel (the `kernel` oracle; needs root and loop mounts).
    ///
    /// The kernel's journal replay of the kept crash state (a read-only loop mount) is compared
    /// with ours: files, maps, bytes and every block. For each distinct migration of the
    /// scenario whose file exists before the workload, `chattr +e`/`-e` of that file alone on
    /// the before image is compared with our migrate of it: errno, map, bytes, free counts.
    /// Only images `e2fsck -fn` passes after replay are mounted. Disagreements are `kernel`
    /// findings (exit 1); without loop mounts one line "kernel oracle skipped: REASON".
    #[arg(long)]
    kernel: bool,
}

/// `e4fuzz minimize`.
#[derive(Args, Debug)]
pub struct MinimizeArgs {
    /// A `.repro` file or raw fuzzer artifact whose scenario has a finding.
    file: PathBuf,
    /// Output file (default: FILE with `.min.repro`).
    #[arg(short = 'o', value_name = "OUT")]
    out: Option<PathBuf>,
}

/// The profile named `name` (an `Error::Invalid` naming the choices if there is none).
fn parse_profile(name: &str) -> Result<Profile> {
    Profile::by_name(name).ok_or_else(|| {
        let names: Vec<&str> = crate::profile::PROFILES.iter().map(|p| p.name).collect();
        Error::Invalid(format!(
            "unknown profile {name:?} (one of {})",
            names.join(", ")
        ))
    })
}

fn parse_bugs(ids: &[String]) -> Result<BugSet> {
    let mut set = BugSet::NONE;
    for id in ids {
        for part in id.split(',').filter(|p| !p.trim().is_empty()) {
            let bug = Bug::parse(part).ok_or_else(|| {
                Error::Invalid(format!("unknown bug {part:?} (see e4fuzz profiles)"))
            })?;
            set = set.with(bug);
        }
    }
    Ok(set)
}

/// `e4fuzz run`: the campaign.
pub fn run(a: RunArgs) -> Result<i32> {
    parse_profile(&a.profile)?;
    let bugs = parse_bugs(&a.bugs)?;
    if a.jobs == 0 {
        return Err(Error::Invalid("--jobs must be at least 1".into()));
    }
    if a.max_findings == Some(0) {
        return Err(Error::Invalid("--max-findings must be at least 1".into()));
    }
    let time = match (a.time, a.execs) {
        (Some(t), _) if !(t.is_finite() && t >= 0.0) => {
            return Err(Error::Invalid(format!("bad --time {t}")))
        }
        (Some(t), _) => Some(Duration::from_secs_f64(t)),
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs(60)),
    };
    let opts = CampaignOpts {
        profile: a.profile,
        bugs,
        time,
        execs: a.execs,
        seed: a.seed,
        jobs: a.jobs,
        out: a.out,
        e2fsck_sample: a.e2fsck_sample,
        kernel_sample: a.kernel_sample.filter(|&n| n > 0),
        max_findings: a.max_findings,
        crash_model: a.crash_model,
    };
    if opts.kernel_sample.is_some() {
        if let Err(why) = kernel::available() {
            eprintln!("kernel oracle skipped: {why}");
        }
    }
    let bar = Bar::new();
    let report = run_campaign(&opts, &bar)?;
    bar.finish();
    if a.json {
        println!("{}", report.to_json());
    } else {
        print_report(&report);
    }
    Ok(if report.findings.is_empty() {
        EXIT_OK
    } else {
        EXIT_FINDING
    })
}

fn print_report(r: &CampaignReport) {
    let secs = r.elapsed_s.max(1e-9);
    println!(
        "{} executions ({:.0}/s), {} crash states ({:.0}/s) in {:.1} s; {} findings",
        r.execs,
        r.execs as f64 / secs,
        r.crash_states,
        r.crash_states as f64 / secs,
        r.elapsed_s,
        r.findings.len()
    );
    if r.kernel_checks > 0 {
        println!("{} executions also judged by the kernel", r.kernel_checks);
    }
    for f in &r.findings {
        println!(
            "  {:<14} bug {:<6} {:>7.1} s  {}  {}",
            f.finding.oracle,
            f.bug,
            f.time_s,
            f.repro.display(),
            f.finding.cause
        );
    }
}

/// The progress line: an indicatif spinner on stderr, only when stderr is a terminal.
struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    fn new() -> Bar {
        if !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let pb = indicatif::ProgressBar::new_spinner();
        pb.enable_steady_tick(Duration::from_millis(200));
        Bar(Some(pb))
    }

    fn finish(&self) {
        if let Some(pb) = &self.0 {
            pb.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn update(&self, execs: u64, crash_states: u64, findings: usize, elapsed: Duration) {
        if let Some(pb) = &self.0 {
            let s = elapsed.as_secs_f64().max(1e-9);
            pb.set_message(format!(
                "{execs} execs ({:.0}/s), {crash_states} crash states ({:.0}/s), {findings} findings",
                execs as f64 / s,
                crash_states as f64 / s
            ));
        }
    }

    fn found(&self, f: &Found) {
        if let Some(pb) = &self.0 {
            pb.println(format!(
                "found {}: {} ({})",
                f.finding.oracle,
                f.finding.cause,
                f.repro.display()
            ));
        }
    }
}

/// Read a scenario file (`.repro` or raw artifact).
fn load(path: &Path) -> Result<Scenario> {
    let data = std::fs::read(path).map_err(|e| Error::host(format!("{}: {e}", path.display())))?;
    Scenario::from_any(&data).map_err(|e| match e {
        Error::Invalid(why) => Error::Invalid(format!("{}: {why}", path.display())),
        e => Error::Invalid(format!("{}: {e}", path.display())),
    })
}

/// `e4fuzz repro`: replay each file, print what happened; exit 1 on a finding.
pub fn repro(a: ReproArgs) -> Result<i32> {
    let profile = a.profile.as_deref().map(parse_profile).transpose()?;
    let bugs = parse_bugs(&a.bugs)?;
    let mut any = false;
    let mut json = Vec::new();
    for file in &a.files {
        let mut s = load(file)?;
        if let Some(p) = profile {
            s.profile = p.name.to_string();
            s.bugs = BugSet::NONE;
        }
        if !a.bugs.is_empty() {
            s.bugs = bugs;
        }
        let opts = ExecOpts {
            keep_images: a.export.is_some() || a.kernel,
            ..ExecOpts::default()
        };
        let (mut v, images) = execute_images(&s, &opts);
        if let Some(why) = &v.rejected {
            return Err(Error::Invalid(format!(
                "{}: cannot run: {why}",
                file.display()
            )));
        }
        let kernel = a.kernel.then(|| kernel_checks(&s, images.as_ref(), &mut v));
        any |= !v.is_clean();
        if let (Some(dir), Some(img)) = (&a.export, &images) {
            let dir = if a.files.len() > 1 {
                dir.join(file.file_stem().unwrap_or_default())
            } else {
                dir.clone()
            };
            export(&dir, img)?;
        }
        if a.json {
            let mut j = verdict_json(file, &v);
            if let Some(k) = &kernel {
                j["kernel"] = k.to_json();
            }
            json.push(j);
        } else {
            print_repro(file, &s, &v);
            if let Some(k) = &kernel {
                k.print();
            }
        }
    }
    if a.json {
        println!("{}", serde_json::json!({ "files": json }));
    }
    Ok(if any { EXIT_FINDING } else { EXIT_OK })
}

/// The kernel oracle's outcome for one scenario of `repro --kernel`.
struct KernelOutcome {
    /// Why nothing was checked (no loop mounts, no kept images).
    skipped: Option<String>,
    /// The checks run.
    checks: Vec<kernel::Check>,
}

/// Run the kernel checks on the kept images and add their problems to `v` as `kernel`
/// findings.
fn kernel_checks(s: &Scenario, images: Option<&Images>, v: &mut Verdict) -> KernelOutcome {
    let Some(img) = images else {
        return KernelOutcome {
            skipped: Some("no crash state was kept".into()),
            checks: vec![],
        };
    };
    match crate::harness::exec::kernel_checks(s, img, v) {
        Err(why) => KernelOutcome {
            skipped: Some(why),
            checks: vec![],
        },
        Ok(checks) => KernelOutcome {
            skipped: None,
            checks,
        },
    }
}

impl KernelOutcome {
    fn print(&self) {
        println!("-- kernel");
        if let Some(why) = &self.skipped {
            println!("kernel oracle skipped: {why}");
        }
        for c in &self.checks {
            match &c.outcome {
                Err(why) => println!("kernel {}: skipped: {why}", c.name),
                Ok(r) => println!(
                    "kernel {}: {} ({}) in {} ms",
                    c.name,
                    if r.problems.is_empty() {
                        "agrees".to_string()
                    } else {
                        format!("DISAGREES, {} problems", r.problems.len())
                    },
                    r.compared,
                    r.elapsed.as_millis()
                ),
            }
            for n in c.outcome.iter().flat_map(|r| &r.notes) {
                println!("  note: {n}");
            }
        }
    }

    fn to_json(&self) -> serde_json::Value {
        let checks: Vec<serde_json::Value> = self
            .checks
            .iter()
            .map(|c| match &c.outcome {
                Err(why) => serde_json::json!({ "check": c.name, "skipped": why }),
                Ok(r) => serde_json::json!({
                    "check": c.name,
                    "agrees": r.problems.is_empty(),
                    "problems": r.problems.iter().map(|p| p.cause.clone()).collect::<Vec<_>>(),
                    "compared": r.compared,
                    "notes": r.notes,
                    "ms": r.elapsed.as_millis() as u64,
                }),
            })
            .collect();
        serde_json::json!({ "skipped": self.skipped, "checks": checks })
    }
}

fn export(dir: &Path, img: &crate::harness::exec::Images) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::host(format!("{}: {e}", dir.display())))?;
    img.before.save(&dir.join("before.img"))?;
    img.crash.save(&dir.join("crash.img"))?;
    img.recovered.save(&dir.join("recovered.img"))
}

fn verdict_json(file: &Path, v: &Verdict) -> serde_json::Value {
    let findings: Vec<serde_json::Value> = v
        .findings
        .iter()
        .map(|f| {
            serde_json::json!({
                "oracle": f.oracle,
                "cause": f.cause,
                "op": f.op_index.map(|(t, i)| format!("T{t}.{i}")),
                "crash_point": f.crash_point,
            })
        })
        .collect();
    serde_json::json!({
        "file": file.display().to_string(),
        "findings": findings,
        "crash_states": v.crash_states,
        "device_writes": v.device_writes,
    })
}

fn print_repro(file: &Path, s: &Scenario, v: &Verdict) {
    println!("== {}", file.display());
    print!("{}", s.to_repro());
    println!("-- trace");
    print!("{}", v.trace);
    println!("-- verdict");
    println!(
        "{} crash states, {} device writes: {}",
        v.crash_states,
        v.device_writes,
        if v.is_clean() {
            "no finding"
        } else {
            "FINDING"
        }
    );
    for f in &v.findings {
        println!("oracle {}: {}", f.oracle, f);
    }
}

/// `e4fuzz minimize`: write the smallest scenario that keeps the first finding's oracle.
pub fn minimize_cmd(a: MinimizeArgs) -> Result<i32> {
    let s = load(&a.file)?;
    let out = a.out.unwrap_or_else(|| a.file.with_extension("min.repro"));
    let Some(m) = minimize(&s, &MinimizeOpts::default()) else {
        println!("{}: no finding, nothing to minimize", a.file.display());
        return Ok(EXIT_OK);
    };
    let finding = m.verdict.findings.iter().find(|f| f.oracle == m.oracle);
    let mut text = m.scenario.to_repro();
    if let Some(f) = finding {
        text.push_str(&format!("# oracle: {}\n# cause: {}\n", f.oracle, f.cause));
    }
    std::fs::write(&out, text).map_err(|e| Error::host(format!("{}: {e}", out.display())))?;
    let ops = |s: &Scenario| s.threads.iter().map(Vec::len).sum::<usize>();
    println!(
        "{}: oracle {} kept in {} executions: {} threads / {} ops / {} setup files -> {} / {} / {}; \
         written to {}",
        a.file.display(),
        m.oracle,
        m.execs,
        s.threads.len(),
        ops(&s),
        s.setup.len(),
        m.scenario.threads.len(),
        ops(&m.scenario),
        m.scenario.setup.len(),
        out.display()
    );
    Ok(EXIT_FINDING)
}
