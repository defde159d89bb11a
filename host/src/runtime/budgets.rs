//! Fair shares of the engine between projects: instance slots and aggregate linear memory have
//! platform-wide budgets, and each project may hold at most its share of both, so a project
//! that saturates its share waits (then gets 503 `capacity`) while the others carry on.
//!
//! An execution holds, besides its package's own slot: one instance and its `memory-mb` of its
//! project's share, and one instance and its `memory-mb` of the platform's budget, all taken
//! within the package's queue wait and given back when the instance is gone.

use super::gate::{Gate, Permit};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The platform's budgets and each project's share of them.
#[derive(Debug, Clone, Copy)]
pub struct Shares {
    /// Instances alive at once, platform-wide.
    pub instances: u32,
    /// Linear memory of the instances alive at once, platform-wide, MiB (each instance counts
    /// its package's `memory-mb`).
    pub memory_mb: u32,
    /// Instances one project may have alive at once.
    pub project_instances: u32,
    /// Linear memory one project's instances may hold at once, MiB.
    pub project_memory_mb: u32,
    /// Busy guests (past their first tick) computing at once, taken in turn by project; 0
    /// turns the turns off (module `cpu`).
    pub cpu_slots: u32,
}

impl Default for Shares {
    fn default() -> Self {
        Shares {
            instances: 1000,
            memory_mb: 16 * 1024,
            project_instances: 250,
            project_memory_mb: 4 * 1024,
            cpu_slots: super::cpu::Cpu::default_slots() as u32,
        }
    }
}

/// What one execution holds of the budgets, given back on drop.
#[derive(Debug)]
pub struct Admitted {
    _permits: [Permit; 4],
}

/// Which budget a request could not get into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Full(pub String);

/// One project's share: its instances and memory (MiB). Looked up once per package version
/// (held in its `Deployed`), not per request.
#[derive(Debug)]
pub struct ProjectShare {
    project: Arc<str>,
    instances: Gate,
    memory: Gate,
}

/// The budgets, shared by every execution.
#[derive(Debug)]
pub struct Budgets {
    shares: Shares,
    instances: Gate,
    memory: Gate,
    projects: Mutex<HashMap<String, Arc<ProjectShare>>>,
    cpu: Arc<super::cpu::Cpu>,
}

impl Budgets {
    /// Budgets of `shares`.
    pub fn new(shares: Shares) -> Budgets {
        Budgets {
            shares,
            instances: Gate::new(shares.instances),
            memory: Gate::new(shares.memory_mb),
            projects: Mutex::default(),
            cpu: super::cpu::Cpu::new(shares.cpu_slots as usize),
        }
    }

    /// The budgets in force.
    pub fn shares(&self) -> Shares {
        self.shares
    }

    /// The engine's turns on the CPU.
    pub fn cpu(&self) -> &Arc<super::cpu::Cpu> {
        &self.cpu
    }

    /// Turns on the CPU for busy guests, for one execution of `share`'s project.
    pub fn turns(&self, share: &ProjectShare) -> super::cpu::Turns {
        super::cpu::Turns::new(self.cpu.clone(), share.project.clone())
    }

    /// `project`'s share, the same for every version of every package of it.
    pub fn share(&self, project: &str) -> Arc<ProjectShare> {
        let fresh = || {
            Arc::new(ProjectShare {
                project: Arc::from(project),
                instances: Gate::new(self.shares.project_instances),
                memory: Gate::new(self.shares.project_memory_mb),
            })
        };
        let Ok(mut projects) = self.projects.lock() else {
            return fresh();
        };
        projects
            .entry(project.to_string())
            .or_insert_with(fresh)
            .clone()
    }

    /// Takes an instance and `memory_mb` of the project's `share` and of the platform's
    /// budget, waiting at most `wait` in all.
    pub async fn admit(
        &self,
        share: &ProjectShare,
        memory_mb: u32,
        wait: Duration,
    ) -> Result<Admitted, Full> {
        let deadline = tokio::time::Instant::now() + wait;
        let project = &*share.project;
        // An instance larger than a share counts as the whole share (it could never fit
        // otherwise): it then runs alone in it.
        let memory_mb = memory_mb
            .min(self.shares.project_memory_mb)
            .min(self.shares.memory_mb);
        let s = self.shares;
        let a = take(&share.instances, 1, deadline, || {
            format!(
                "project {project} has {} instances running, its share",
                s.project_instances
            )
        })
        .await?;
        let b = take(&share.memory, memory_mb, deadline, || {
            format!(
                "project {project}'s running instances hold {} MiB of memory, its share",
                s.project_memory_mb
            )
        })
        .await?;
        let c = take(&self.instances, 1, deadline, || {
            format!(
                "the platform has {} instances running, its budget",
                s.instances
            )
        })
        .await?;
        let d = take(&self.memory, memory_mb, deadline, || {
            format!(
                "the platform's running instances hold {} MiB of memory, its budget",
                s.memory_mb
            )
        })
        .await?;
        Ok(Admitted {
            _permits: [a, b, c, d],
        })
    }
}

/// `n` permits of `gate`, at once when free (no timer), else waiting until `deadline`; the
/// message of the refusal is made only when there is one.
async fn take(
    gate: &Gate,
    n: u32,
    deadline: tokio::time::Instant,
    what: impl FnOnce() -> String,
) -> Result<Permit, Full> {
    if let Some(permit) = gate.try_acquire(n) {
        return Ok(permit);
    }
    tokio::time::timeout_at(deadline, gate.acquire(n))
        .await
        .map_err(|_| Full(what()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_project_at_its_share_waits_while_another_gets_in() {
        let b = Budgets::new(Shares {
            instances: 10,
            memory_mb: 1000,
            project_instances: 2,
            project_memory_mb: 300,
            cpu_slots: 1,
        });
        let wait = Duration::from_millis(100);
        let (a, bb) = (b.share("a"), b.share("b"));
        let a1 = b.admit(&a, 100, wait).await.unwrap();
        let _a2 = b.admit(&a, 100, wait).await.unwrap();
        let full = b.admit(&a, 100, wait).await.unwrap_err();
        assert!(
            full.0.contains("project a") && full.0.contains("instances"),
            "{full:?}"
        );
        // Another project is not held up by a's saturation.
        let _b1 = b.admit(&bb, 100, wait).await.unwrap();
        // Memory share: two instances of 200 MiB do not fit in 300.
        drop(a1);
        let full = b.admit(&b.share("a"), 250, wait).await.unwrap_err();
        assert!(full.0.contains("memory"), "{full:?}");
        // What is given back is free again.
        let _a3 = b.admit(&a, 100, wait).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn the_platform_budget_bounds_all_projects_together() {
        let b = Budgets::new(Shares {
            instances: 3,
            memory_mb: 10_000,
            project_instances: 2,
            project_memory_mb: 10_000,
            cpu_slots: 1,
        });
        let wait = Duration::from_millis(100);
        let _x = [
            b.admit(&b.share("a"), 1, wait).await.unwrap(),
            b.admit(&b.share("a"), 1, wait).await.unwrap(),
            b.admit(&b.share("b"), 1, wait).await.unwrap(),
        ];
        let full = b.admit(&b.share("c"), 1, wait).await.unwrap_err();
        assert!(full.0.contains("platform"), "{full:?}");
    }
}
