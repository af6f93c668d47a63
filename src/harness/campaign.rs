//! The campaign loop of `e4fuzz run`: generate inputs, execute, deduplicate, minimize, write
//! `.repro` files, report.
//!
//! Each worker `j` of `jobs` owns a `ChaCha8Rng` seeded with `seed·K + j` ([`WORKER_SEED_K`]),
//! so workers never share inputs and a worker's input sequence depends only on the seed. An
//! input is a random byte string of 64 to 4095 bytes, decoded by
//! [`Scenario::from_fuzz_bytes`]; the campaign's profile and bugs are set on it. Every
//! execution is deterministic; which executions run in a time budget is not.
//!
//! Findings are deduplicated across workers by [`super::Finding::key`]. A new one is minimized
//! ([`super::minimize()`]) by the worker that found it, written under the output directory as
//! `<oracle>-<crc32c of the key>.repro` (with `#` comment lines naming the oracle, the cause and
//! the campaign), and only then reported.

use super::minimize::{minimize, MinimizeOpts};
use super::{consistency, execute_with, ExecOpts, Finding, FsckScope};
use crate::crc::crc32c_raw;
use crate::error::{Error, Result};
use crate::profile::BugSet;
use crate::scenario::Scenario;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Worker `j` of a campaign with seed `s` seeds its generator with `s·K + j`.
pub const WORKER_SEED_K: u64 = 1_000_003;
/// Input lengths: 64 to 4095 bytes.
const INPUT_LEN: std::ops::Range<usize> = 64..4096;

/// What a campaign runs.
#[derive(Clone, Debug)]
pub struct CampaignOpts {
    /// Profile name (validated by the caller).
    pub profile: String,
    /// Extra seeded bugs.
    pub bugs: BugSet,
    /// Stop after this long (`None`: no time limit).
    pub time: Option<Duration>,
    /// Stop after this many executions in all (`None`: no limit).
    pub execs: Option<u64>,
    /// The campaign seed.
    pub seed: u64,
    /// Worker threads (at least 1).
    pub jobs: usize,
    /// Where `.repro` files go.
    pub out: PathBuf,
    /// Check one execution in N with the external e2fsck (`None` or 0: never).
    pub e2fsck_sample: Option<u64>,
    /// Judge one execution in N with the real kernel as well ([`super::exec::kernel_checks`]
    /// on its kept crash state; `None` or 0: never; skipped where loop mounts are unavailable).
    pub kernel_sample: Option<u64>,
    /// Stop once this many distinct findings are reported (`None`: run out the budget).
    pub max_findings: Option<usize>,
    /// Which crash states the scenarios draw.
    pub crash_model: CrashModel,
}

/// Which crash states a campaign's scenarios draw (`run --crash-model`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum CrashModel {
    /// The generated fates: each write not yet durable at a crash point is kept, lost or torn
    /// at 512-byte sectors, as drawn (the device reorders writes between flushes).
    #[default]
    Reorder,
    /// Every write issued before the crash point reaches the media whole: the crash states
    /// dm-log-writes replays (fstests' log-writes tests), in issue order, with no write lost
    /// or torn. What block-level reordering and torn writes add shows against it.
    Prefix,
}

impl CrashModel {
    /// Set `s`'s crash fates to this model's (`Reorder` keeps the drawn ones).
    pub fn apply(self, s: &mut Scenario) {
        if self == CrashModel::Prefix {
            s.crash.keep_per_mille = 1000;
            s.crash.tear_per_mille = 0;
        }
    }
}

/// One reported finding.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    /// The finding (of the minimized scenario).
    pub finding: Finding,
    /// The seeded bugs switched on (`"-"` for none).
    pub bug: String,
    /// The `.repro` file written.
    pub repro: PathBuf,
    /// Seconds since the campaign started.
    pub time_s: f64,
}

/// The result of a campaign.
#[derive(Clone, Debug, Default)]
pub struct CampaignReport {
    /// Executions run.
    pub execs: u64,
    /// Crash states checked.
    pub crash_states: u64,
    /// Executions also judged by the real kernel (`--kernel-sample`).
    pub kernel_checks: u64,
    /// Wall-clock seconds.
    pub elapsed_s: f64,
    /// The findings, in the order reported.
    pub findings: Vec<Found>,
}

impl CampaignReport {
    /// The `--json` object: `{"execs","crash_states","elapsed_s","findings":[{"oracle","bug",
    /// "repro","time_s"}]}` (plus each finding's `cause`).
    pub fn to_json(&self) -> serde_json::Value {
        let findings: Vec<serde_json::Value> = self
            .findings
            .iter()
            .map(|f| {
                serde_json::json!({
                    "oracle": f.finding.oracle,
                    "bug": f.bug,
                    "repro": f.repro.display().to_string(),
                    "time_s": f.time_s,
                    "cause": f.finding.cause,
                })
            })
            .collect();
        serde_json::json!({
            "execs": self.execs,
            "crash_states": self.crash_states,
            "kernel_checks": self.kernel_checks,
            "elapsed_s": self.elapsed_s,
            "findings": findings,
        })
    }
}

/// Live progress (the CLI shows it on a terminal).
pub trait Progress: Sync {
    /// Called after executions and findings.
    fn update(&self, execs: u64, crash_states: u64, findings: usize, elapsed: Duration);
    /// Called once per reported finding.
    fn found(&self, found: &Found);
    /// Checked before each execution: true ends the campaign (default: never).
    fn should_stop(&self) -> bool {
        false
    }
}

/// No progress output.
pub struct Quiet;

impl Progress for Quiet {
    fn update(&self, _: u64, _: u64, _: usize, _: Duration) {}
    fn found(&self, _: &Found) {}
}

/// State shared by the workers.
struct Shared<'a> {
    opts: &'a CampaignOpts,
    progress: &'a dyn Progress,
    start: Instant,
    execs: AtomicU64,
    crash_states: AtomicU64,
    kernel_checks: AtomicU64,
    stop: AtomicBool,
    keys: Mutex<BTreeSet<String>>,
    found: Mutex<Vec<Found>>,
    error: Mutex<Option<Error>>,
}

/// Run a campaign (module doc).
pub fn run_campaign(opts: &CampaignOpts, progress: &dyn Progress) -> Result<CampaignReport> {
    std::fs::create_dir_all(&opts.out)
        .map_err(|e| Error::host(format!("{}: {e}", opts.out.display())))?;
    let shared = Shared {
        opts,
        progress,
        start: Instant::now(),
        execs: AtomicU64::new(0),
        crash_states: AtomicU64::new(0),
        kernel_checks: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        keys: Mutex::new(BTreeSet::new()),
        found: Mutex::new(Vec::new()),
        error: Mutex::new(None),
    };
    std::thread::scope(|scope| {
        for j in 0..opts.jobs.max(1) {
            let shared = &shared;
            scope.spawn(move || worker(shared, j as u64));
        }
    });
    if let Some(e) = lock(&shared.error).take() {
        return Err(e);
    }
    let report = CampaignReport {
        execs: shared.execs.load(Ordering::Relaxed),
        crash_states: shared.crash_states.load(Ordering::Relaxed),
        kernel_checks: shared.kernel_checks.load(Ordering::Relaxed),
        elapsed_s: shared.start.elapsed().as_secs_f64(),
        findings: std::mem::take(&mut *lock(&shared.found)),
    };
    Ok(report)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The scenario of one generated input.
pub fn scenario_of(input: &[u8], profile: &str, bugs: BugSet) -> Scenario {
    let mut s = Scenario::from_fuzz_bytes(input);
    s.profile = profile.to_string();
    s.bugs = bugs;
    s
}

fn worker(sh: &Shared<'_>, j: u64) {
    let o = sh.opts;
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed.wrapping_mul(WORKER_SEED_K).wrapping_add(j));
    let mut local = 0u64;
    while !sh.stop.load(Ordering::Relaxed) && !sh.progress.should_stop() {
        let n = sh.execs.fetch_add(1, Ordering::Relaxed);
        if o.execs.is_some_and(|max| n >= max) || o.time.is_some_and(|t| sh.start.elapsed() >= t) {
            sh.execs.fetch_sub(1, Ordering::Relaxed);
            sh.stop.store(true, Ordering::Relaxed);
            break;
        }
        let len = rng.random_range(INPUT_LEN);
        let mut input = vec![0u8; len];
        rng.fill(&mut input[..]);
        let mut s = scenario_of(&input, &o.profile, o.bugs);
        o.crash_model.apply(&mut s);
        let exec = exec_opts(o.e2fsck_sample, local);
        let kernel = o.kernel_sample.is_some_and(|n| n > 0 && local % n == 0)
            && crate::oracle::kernel::available().is_ok();
        local += 1;
        let v = if kernel {
            judged_by_kernel(sh, &s, exec)
        } else {
            execute_with(&s, &exec)
        };
        sh.crash_states.fetch_add(v.crash_states, Ordering::Relaxed);
        for f in &v.findings {
            if lock(&sh.keys).insert(f.key()) {
                if let Err(e) = report(sh, &s, f) {
                    *lock(&sh.error) = Some(e);
                    sh.stop.store(true, Ordering::Relaxed);
                }
            }
        }
        let found = lock(&sh.found).len();
        sh.progress.update(
            sh.execs.load(Ordering::Relaxed),
            sh.crash_states.load(Ordering::Relaxed),
            found,
            sh.start.elapsed(),
        );
    }
}

/// The options of the campaign's `local`-th execution on a worker: the consistency checker on
/// every state when it is in process, else (e2fsck) on the last state of one execution in
/// `sample` (default [`consistency::DEFAULT_SAMPLE`]); with an in-process checker, the e2fsck
/// second opinion on one execution in `sample` (none without `--e2fsck-sample`).
fn exec_opts(sample: Option<u64>, local: u64) -> ExecOpts {
    let every = sample.unwrap_or(consistency::DEFAULT_SAMPLE);
    let sampled = every > 0 && local % every == 0;
    let fsck = match (consistency::IN_PROCESS, sampled) {
        (true, _) => FsckScope::Every,
        (false, true) => FsckScope::Last,
        (false, false) => FsckScope::Off,
    };
    ExecOpts {
        trace: false,
        fsck,
        e2fsck_sample: consistency::IN_PROCESS && sample.is_some() && sampled,
        ..ExecOpts::default()
    }
}

/// Execute `s` keeping its images, then judge the kept crash state with the real kernel.
fn judged_by_kernel(sh: &Shared<'_>, s: &Scenario, exec: ExecOpts) -> super::Verdict {
    let keep = ExecOpts {
        keep_images: true,
        ..exec
    };
    let (mut v, images) = super::exec::execute_images(s, &keep);
    if let Some(img) = images {
        if super::exec::kernel_checks(s, &img, &mut v).is_ok() {
            sh.kernel_checks.fetch_add(1, Ordering::Relaxed);
        }
    }
    v
}

/// Minimize, write the `.repro`, then report.
fn report(sh: &Shared<'_>, s: &Scenario, f: &Finding) -> Result<()> {
    let opts = MinimizeOpts {
        oracle: Some(f.oracle),
        ..MinimizeOpts::default()
    };
    let (scenario, finding) = match minimize(s, &opts) {
        Some(m) => {
            let g = m.verdict.findings.iter().find(|g| g.oracle == f.oracle);
            (m.scenario, g.cloned().unwrap_or_else(|| f.clone()))
        }
        None => (s.clone(), f.clone()),
    };
    // The minimized finding may be one reported already under another cause.
    if finding.key() != f.key() && !lock(&sh.keys).insert(finding.key()) {
        return Ok(());
    }
    let name = format!(
        "{}-{:08x}.repro",
        f.oracle,
        crc32c_raw(0, f.key().as_bytes())
    );
    let path = sh.opts.out.join(name);
    let mut text = scenario.to_repro();
    text.push_str(&format!(
        "# oracle: {}\n# cause: {}\n# found by: e4fuzz run --profile {} --seed {}\n",
        finding.oracle, finding.cause, sh.opts.profile, sh.opts.seed
    ));
    if finding.oracle == "kernel" {
        text.push_str("# replay with: e4fuzz repro FILE --kernel\n");
    }
    std::fs::write(&path, text).map_err(|e| Error::host(format!("{}: {e}", path.display())))?;
    let bugs = crate::profile::Profile::by_name(&sh.opts.profile)
        .map_or(sh.opts.bugs, |p| p.with_bugs(sh.opts.bugs).bugs);
    let found = Found {
        finding,
        bug: if bugs.is_empty() {
            "-".into()
        } else {
            bugs.to_string()
        },
        repro: path,
        time_s: sh.start.elapsed().as_secs_f64(),
    };
    sh.progress.found(&found);
    let mut all = lock(&sh.found);
    all.push(found);
    if sh.opts.max_findings.is_some_and(|max| all.len() >= max) {
        sh.stop.store(true, Ordering::Relaxed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_campaign_counts_and_reports_json() {
        let dir = std::env::temp_dir().join(format!("e4fuzz-camp-{}", std::process::id()));
        let opts = CampaignOpts {
            profile: "fixed".into(),
            bugs: BugSet::NONE,
            time: None,
            execs: Some(6),
            seed: 3,
            jobs: 2,
            out: dir.clone(),
            e2fsck_sample: None,
            kernel_sample: None,
            max_findings: None,
            crash_model: Default::default(),
        };
        let r = run_campaign(&opts, &Quiet).unwrap();
        assert_eq!(r.execs, 6);
        assert!(r.crash_states >= 6, "{}", r.crash_states);
        let j = r.to_json();
        assert_eq!(j["execs"], 6);
        assert!(j["findings"].is_array());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn worker_inputs_depend_on_the_seed_only() {
        let input = |seed: u64, j: u64| {
            let mut rng =
                ChaCha8Rng::seed_from_u64(seed.wrapping_mul(WORKER_SEED_K).wrapping_add(j));
            let len = rng.random_range(INPUT_LEN);
            let mut v = vec![0u8; len];
            rng.fill(&mut v[..]);
            v
        };
        assert_eq!(input(1, 0), input(1, 0));
        assert_ne!(input(1, 0), input(1, 1));
        let s = scenario_of(&input(1, 0), "mainline", BugSet::NONE);
        assert_eq!(s.profile, "mainline");
    }
}
