//! Deterministic fault injection for the crash tests: named points in the code where a test
//! makes the process die, or the operation fail, exactly there.
//!
//! Compiled in only with the `fault-injection` feature, which `scripts/test` enables and release
//! builds never do. Without it [`point`] and [`fail`] are empty `#[inline(always)]` functions:
//! no environment read, no counter, and no point name left in an optimised binary.
//!
//! With it, `EDGEWARD_FAULT` (read once, at the first point reached) arms faults:
//! `NAME[@N][:crash|:fail]`, several separated by commas. `NAME` is a point below; `@N` fires on
//! the Nth time the point is reached, counted from 1 per process (default 1); `:crash` (the
//! default) kills the process, `:fail` makes the operation fail there (only where the table says
//! so). A fault that fires writes `fault point NAME reached` to stderr (the server's log) first,
//! so a test can see where it landed. A crash is SIGKILL to the process itself: no destructor,
//! no flush, no graceful shutdown, as with the OOM killer or a power cut. A malformed
//! `EDGEWARD_FAULT` (unknown point, `@0`, unknown mode, `:fail` on a crash-only point) is
//! written to stderr and kills the process at the first point reached, so a typo cannot disarm
//! a test in silence.
//!
//! | Point | Where it is reached | Modes |
//! |---|---|---|
//! | `upload.after_artifact` | `Packages::prepare`: a freshly compiled upload's artifact is on disk, no version refers to it yet (not reached when an artifact is reused) | crash |
//! | `upload.before_commit` | `Store::add_version`: the version's rows are written, the transaction not yet committed | crash |
//! | `upload.after_commit` | `Packages::commit`: the version is committed and current in the store, not yet serving, the client not yet answered | crash |
//! | `import.write` | `Store::secret_import` (the embedded backend's import, an upload's `secrets.json` seeds included): after each row written inside the transaction, before the commit | crash |
//! | `vault_import.write` | the Vault backend's import, after each entry written. `:fail` fails the import there as if the next write had failed, so the N entries written are undone | crash, fail |
//! | `vault_import.undo` | the Vault import's undo, before each entry is put back. `:fail` leaves that entry as imported (logged as `could not undo a partial import`) | crash, fail |
//! | `vault_import.done` | the Vault backend's import: every entry written, its journal not yet dropped | crash |
//!
//! `EDGEWARD_FAULT=import.write@100` crashes after the 100th row of an import, before its
//! commit; `EDGEWARD_FAULT=vault_import.write@50:fail,vault_import.undo@3:fail` fails a Vault
//! import after 50 writes and then the third step of its undo.

/// A fault point: its name in `EDGEWARD_FAULT` and whether it can fail as well as crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    /// The name, as written in `EDGEWARD_FAULT` and in the code.
    pub name: &'static str,
    /// Whether `:fail` is allowed: the code there calls [`fail`] and fails when it fires.
    pub can_fail: bool,
}

/// Every fault point in the code (the table in the module documentation).
pub const POINTS: &[Point] = &[
    Point {
        name: "upload.after_artifact",
        can_fail: false,
    },
    Point {
        name: "upload.before_commit",
        can_fail: false,
    },
    Point {
        name: "upload.after_commit",
        can_fail: false,
    },
    Point {
        name: "import.write",
        can_fail: false,
    },
    Point {
        name: "vault_import.write",
        can_fail: true,
    },
    Point {
        name: "vault_import.undo",
        can_fail: true,
    },
    Point {
        name: "vault_import.done",
        can_fail: false,
    },
];

/// Crash point `name`: kills the process here if `EDGEWARD_FAULT` says so. A no-op without the
/// `fault-injection` feature.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn point(_name: &'static str) {}

/// Fault point `name` where the caller can fail: `true` when a `:fail` fault fires here (the
/// caller then fails as the real operation would); kills the process for a crash fault. Always
/// `false` without the `fault-injection` feature.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn fail(_name: &'static str) -> bool {
    false
}

/// Crash point `name`: kills the process here if `EDGEWARD_FAULT` says so. A no-op without the
/// `fault-injection` feature.
#[cfg(feature = "fault-injection")]
pub fn point(name: &'static str) {
    // `:fail` on a crash-only point is refused when EDGEWARD_FAULT is parsed.
    armed::reached(name);
}

/// Fault point `name` where the caller can fail: `true` when a `:fail` fault fires here (the
/// caller then fails as the real operation would); kills the process for a crash fault. Always
/// `false` without the `fault-injection` feature.
#[cfg(feature = "fault-injection")]
pub fn fail(name: &'static str) -> bool {
    armed::reached(name)
}

#[cfg(feature = "fault-injection")]
mod armed {
    use super::POINTS;
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// What a fault does when it fires.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) enum Mode {
        /// SIGKILL to the process itself.
        Crash,
        /// The caller fails.
        Fail,
    }

    /// One armed fault: fires on the `nth` hit of `point`.
    #[derive(Debug)]
    pub(super) struct Fault {
        pub(super) point: &'static str,
        pub(super) nth: u64,
        pub(super) mode: Mode,
        /// Hits of `point` so far. Every fault on a point counts every hit, so each holds the
        /// point's own count.
        hits: AtomicU64,
    }

    /// The faults one `EDGEWARD_FAULT` arms.
    #[derive(Debug, Default)]
    pub(super) struct Faults(pub(super) Vec<Fault>);

    impl Faults {
        /// Parses `NAME[@N][:crash|:fail]`, comma-separated; an empty spec arms nothing.
        pub(super) fn parse(spec: &str) -> Result<Faults, String> {
            let mut faults = Vec::new();
            for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let (head, mode) = match item.split_once(':') {
                    None => (item, Mode::Crash),
                    Some((head, "crash")) => (head, Mode::Crash),
                    Some((head, "fail")) => (head, Mode::Fail),
                    Some((_, other)) => {
                        return Err(format!("{item:?}: unknown mode {other:?} (crash or fail)"));
                    }
                };
                let (name, nth) = match head.split_once('@') {
                    None => (head, 1),
                    Some((name, n)) => match n.parse::<u64>() {
                        Ok(n) if n >= 1 => (name, n),
                        _ => return Err(format!("{item:?}: {n:?} is not a count from 1")),
                    },
                };
                let point = POINTS
                    .iter()
                    .find(|p| p.name == name)
                    .ok_or_else(|| format!("{item:?}: there is no fault point {name:?}"))?;
                if mode == Mode::Fail && !point.can_fail {
                    return Err(format!("{item:?}: point {name} can crash but not fail"));
                }
                faults.push(Fault {
                    point: point.name,
                    nth,
                    mode,
                    hits: AtomicU64::new(0),
                });
            }
            Ok(Faults(faults))
        }

        /// Counts one hit of `point`; the mode of a fault that fires on it (a crash wins over
        /// a failure armed for the same hit).
        pub(super) fn hit(&self, point: &str) -> Option<Mode> {
            let mut fired = None;
            for fault in self.0.iter().filter(|f| f.point == point) {
                let n = fault.hits.fetch_add(1, Ordering::SeqCst) + 1;
                if n == fault.nth && (fired.is_none() || fault.mode == Mode::Crash) {
                    fired = Some(fault.mode);
                }
            }
            fired
        }
    }

    /// The faults of this process, from `EDGEWARD_FAULT`.
    fn armed() -> &'static Faults {
        static FAULTS: OnceLock<Faults> = OnceLock::new();
        FAULTS.get_or_init(|| {
            let Some(spec) = std::env::var_os("EDGEWARD_FAULT") else {
                return Faults::default();
            };
            match spec.to_str().map(Faults::parse) {
                Some(Ok(faults)) => faults,
                Some(Err(e)) => die(&format!("EDGEWARD_FAULT is malformed: {e}")),
                None => die("EDGEWARD_FAULT is not UTF-8"),
            }
        })
    }

    /// Counts a hit of `point`; when a fault fires, reports it and crashes, or returns `true`
    /// for a failure.
    pub(super) fn reached(point: &'static str) -> bool {
        match armed().hit(point) {
            None => false,
            Some(mode) => {
                eprintln!("fault point {point} reached");
                match mode {
                    Mode::Crash => crash(),
                    Mode::Fail => true,
                }
            }
        }
    }

    fn die(why: &str) -> ! {
        eprintln!("{why}; killing the process");
        crash()
    }

    /// SIGKILL to this process. Sent to itself and unblockable, it is delivered before `kill`
    /// returns; `abort` is only there for the type and for a `kill` that failed.
    fn crash() -> ! {
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        std::process::abort()
    }
}

#[cfg(all(test, feature = "fault-injection"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::armed::{Faults, Mode};

    fn one(spec: &str) -> (&'static str, u64, Mode) {
        let faults = Faults::parse(spec).unwrap();
        assert_eq!(faults.0.len(), 1, "{spec}");
        let f = &faults.0[0];
        (f.point, f.nth, f.mode)
    }

    #[test]
    fn specs_parse_with_their_defaults() {
        let cases = [
            (
                "upload.after_artifact",
                ("upload.after_artifact", 1, Mode::Crash),
            ),
            ("import.write@100", ("import.write", 100, Mode::Crash)),
            ("import.write@7:crash", ("import.write", 7, Mode::Crash)),
            (
                "vault_import.write:fail",
                ("vault_import.write", 1, Mode::Fail),
            ),
            (
                "vault_import.write@50:fail",
                ("vault_import.write", 50, Mode::Fail),
            ),
            (
                " vault_import.undo@3:fail ",
                ("vault_import.undo", 3, Mode::Fail),
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(one(spec), want, "{spec}");
        }
    }

    #[test]
    fn several_faults_and_an_empty_spec() {
        let faults = Faults::parse("vault_import.write@50:fail,vault_import.undo@3:fail").unwrap();
        let got: Vec<_> = faults.0.iter().map(|f| (f.point, f.nth, f.mode)).collect();
        assert_eq!(
            got,
            [
                ("vault_import.write", 50, Mode::Fail),
                ("vault_import.undo", 3, Mode::Fail)
            ]
        );
        assert!(Faults::parse("").unwrap().0.is_empty());
        assert!(Faults::parse(" , ").unwrap().0.is_empty());
    }

    #[test]
    fn malformed_specs_are_refused() {
        for spec in [
            "nope",
            "import.writes",
            "import.write@0",
            "import.write@",
            "import.write@-1",
            "import.write@x",
            "import.write:explode",
            "import.write:",
            "import.write:fail",
            "upload.after_commit:fail",
            "upload.after_commit,nope",
            "@3",
        ] {
            assert!(Faults::parse(spec).is_err(), "{spec} was accepted");
        }
    }

    #[test]
    fn a_fault_fires_once_on_the_nth_hit_of_its_point() {
        let faults = Faults::parse("vault_import.write@3:fail").unwrap();
        let hits: Vec<_> = (0..5).map(|_| faults.hit("vault_import.write")).collect();
        assert_eq!(hits, [None, None, Some(Mode::Fail), None, None]);
        assert_eq!(
            faults.hit("vault_import.undo"),
            None,
            "other points are not counted"
        );
    }

    #[test]
    fn points_count_apart_and_a_crash_wins_a_shared_hit() {
        let faults = Faults::parse(
            "vault_import.write@2:fail,vault_import.undo@1:fail,vault_import.write@2:crash",
        )
        .unwrap();
        assert_eq!(faults.hit("vault_import.write"), None);
        assert_eq!(faults.hit("vault_import.undo"), Some(Mode::Fail));
        assert_eq!(faults.hit("vault_import.write"), Some(Mode::Crash));
    }

    #[test]
    fn every_point_has_one_entry() {
        let mut names: Vec<_> = super::POINTS.iter().map(|p| p.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), super::POINTS.len());
    }
}
