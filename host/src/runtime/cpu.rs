//! Fair turns on the CPU between projects, for guests that keep computing.
//!
//! The epoch ticks every millisecond. A guest that has computed [`FIRST_SLICE`] (5 ms) without
//! a break, or a millisecond while its project already has a busy guest, is *busy*: from then
//! on it runs one tick per *turn*. Ordinary requests compute far less and never yield, nor
//! wait for a turn. At most `slots` turns are out at once, engine-wide (default: one fewer
//! than the CPUs), and they go round the projects with waiting guests, one project after
//! another, first come first served within a project. A project's 64 spinning guests therefore
//! share one turn in every round with the other busy projects, and leave the remaining CPUs
//! to the requests of everyone else, which never wait for a turn at all.
//!
//! A turn ends at the guest's next tick (it then queues again), when the execution ends, or
//! when it has been held for [`TURN_LEASE`] (a guest that went off to wait for I/O holding a
//! turn does not keep it from the others; the epoch ticker takes lapsed turns back).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// How long a turn may be held before it is taken back: two ticks.
pub const TURN_LEASE: Duration = Duration::from_millis(2 * super::EPOCH_TICK.as_millis() as u64);

/// The turns of the engine.
#[derive(Debug)]
pub struct Cpu {
    /// Turns out at once; 0 lets every guest run untaken.
    slots: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    /// Turns out: id, project, when it lapses.
    out: Vec<(u64, Arc<str>, Instant)>,
    /// Projects with guests waiting, in the order their next turn comes.
    ring: VecDeque<Arc<str>>,
    /// Each waiting project's guests, first come first.
    waiting: HashMap<Arc<str>, VecDeque<oneshot::Sender<u64>>>,
}

impl State {
    /// Takes back lapsed turns and hands free ones round the waiting projects.
    fn pump(&mut self, slots: usize, now: Instant) {
        self.out.retain(|(_, _, lapse)| *lapse > now);
        while self.out.len() < slots {
            let Some(project) = self.ring.pop_front() else {
                break;
            };
            let Some(queue) = self.waiting.get_mut(&project) else {
                continue;
            };
            let waiter = queue.pop_front();
            if queue.is_empty() {
                self.waiting.remove(&project);
            } else {
                self.ring.push_back(project.clone());
            }
            let Some(waiter) = waiter else { continue };
            let id = self.next_id;
            self.next_id += 1;
            // A guest that stopped waiting (its execution ended) gets nothing.
            if waiter.send(id).is_ok() {
                self.out.push((id, project, now + TURN_LEASE));
            }
        }
    }
}

/// A turn on the CPU, given back on drop.
#[derive(Debug)]
pub struct Turn {
    cpu: Arc<Cpu>,
    id: u64,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut state = self.cpu.lock();
        state.out.retain(|(id, _, _)| *id != self.id);
        state.pump(self.cpu.slots, Instant::now());
    }
}

impl Cpu {
    /// Turns for `slots` busy guests at once (0: no turns, every guest runs when it may).
    pub fn new(slots: usize) -> Arc<Cpu> {
        Arc::new(Cpu {
            slots,
            state: Mutex::default(),
        })
    }

    /// The default: one fewer than the CPUs, at least one.
    pub fn default_slots() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
    }

    /// Turns out at once.
    pub fn slots(&self) -> usize {
        self.slots
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it: a poisoned state is still a consistent one.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `project` has a guest taking turns or waiting for one.
    pub fn busy(&self, project: &str) -> bool {
        if self.slots == 0 {
            return false;
        }
        let state = self.lock();
        state.waiting.contains_key(project) || state.out.iter().any(|(_, p, _)| &**p == project)
    }

    /// Waits for a turn for a guest of `project`, in its project's place in the round.
    pub async fn turn(self: Arc<Self>, project: Arc<str>) -> Turn {
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.lock();
            match state.waiting.get_mut(&project) {
                Some(queue) => queue.push_back(tx),
                None => {
                    state.waiting.insert(project.clone(), VecDeque::from([tx]));
                    state.ring.push_back(project);
                }
            }
            state.pump(self.slots, Instant::now());
        }
        // The sender is only dropped unsent with the whole state: run untaken then.
        let id = rx.await.unwrap_or(u64::MAX);
        Turn { cpu: self, id }
    }

    /// Takes back lapsed turns and hands them on; the epoch ticker calls this each tick, so
    /// no waiting guest needs a timer of its own.
    pub fn tick(&self) {
        if self.slots > 0 {
            self.lock().pump(self.slots, Instant::now());
        }
    }
}

/// What a guest's epoch callback decides at a tick.
pub enum AtTick {
    /// Carry on computing, no yield (it has not computed long enough to be busy, or it has
    /// only just been resumed).
    Continue,
    /// Yield to the executor, after this future (waiting for a turn, where one is needed).
    Yield(Pin<Box<dyn Future<Output = ()> + Send>>),
}

/// How long a guest computes before it is busy: longer than almost any request needs, so
/// ordinary requests never yield or wait for a turn at all.
pub const FIRST_SLICE: Duration = Duration::from_millis(5);

/// One execution's account: what it has computed, since when, and the turn it holds.
pub struct Turns {
    cpu: Arc<Cpu>,
    project: Arc<str>,
    held: Arc<Mutex<Option<Turn>>>,
    /// The later of its last resume and its last tick: it has computed since then.
    mark: Arc<Mutex<Instant>>,
    /// What it has computed since its last yield.
    computed: Duration,
}

/// Marks a guest's resumption: what it computes is counted from there, not from before a wait
/// (for its turn on the thread, for I/O). See [`Turns::resumed`].
#[derive(Clone)]
pub struct Resumed(Arc<Mutex<Instant>>);

impl Resumed {
    /// The guest runs again now.
    pub fn now(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }
}

impl Turns {
    /// What marks this execution's resumptions. Its future is polled each time it runs again
    /// after waiting: the time it waited, behind the other guests of a busy thread or for
    /// I/O, is not computing, and counted as such it made light guests look busy at their
    /// first tick under load, so that they queued for turns.
    pub fn resumed(&self) -> Resumed {
        Resumed(self.mark.clone())
    }

    /// For one execution of `project`, starting now.
    pub fn new(cpu: Arc<Cpu>, project: Arc<str>) -> Turns {
        Turns {
            cpu,
            project,
            held: Arc::default(),
            mark: Arc::new(Mutex::new(Instant::now())),
            computed: Duration::ZERO,
        }
    }

    /// At an epoch tick. A guest that holds a turn gives it back and queues for the next.
    /// Another that has computed less than half a tick since it was last resumed carries on
    /// (the epoch moved while it waited to run). One that has computed [`FIRST_SLICE`] since its
    /// last yield, or a little while its project is already busy, is busy: it queues for a
    /// turn. With no turns (`--cpu-slots 0`) it just yields every [`FIRST_SLICE`]. A wait for
    /// a turn ends at `deadline` at the latest, turn or not: the next tick stops the guest.
    pub fn at_tick(&mut self, deadline: std::time::Instant) -> AtTick {
        let now = Instant::now();
        let ran = {
            let mut mark = self.mark.lock().unwrap_or_else(|e| e.into_inner());
            let ran = now.saturating_duration_since(*mark);
            *mark = now;
            ran
        };
        self.computed += ran;
        // A turn lasts until the next tick, however little of it was left.
        let held = self
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .is_some();
        if !held && ran < super::EPOCH_TICK / 2 {
            return AtTick::Continue;
        }
        let busy = self.cpu.slots() > 0
            && (held || self.computed >= FIRST_SLICE || self.cpu.busy(&self.project));
        if !busy && self.computed < FIRST_SLICE {
            return AtTick::Continue;
        }
        self.computed = Duration::ZERO;
        let mark = self.mark.clone();
        if !busy {
            return AtTick::Yield(Box::pin(async move {
                tokio::task::yield_now().await;
                *mark.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
            }));
        }
        let (cpu, project, held) = (self.cpu.clone(), self.project.clone(), self.held.clone());
        AtTick::Yield(Box::pin(async move {
            if let Ok(turn) = tokio::time::timeout_at(deadline.into(), cpu.turn(project)).await {
                *held.lock().unwrap_or_else(|e| e.into_inner()) = Some(turn);
            }
            // Let the executor look at its sockets before the guest computes again: a
            // single-threaded runtime otherwise polls them only when its queue runs dry, which
            // may be many turns away.
            tokio::task::yield_now().await;
            *mark.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Time spent waiting before a resumption is not computing: a guest that waited 10 ms to
    /// run and then computed a tick's worth carries on at its tick, where counting from its
    /// creation would have made it busy (over [`FIRST_SLICE`]) and sent it to wait for a turn.
    #[tokio::test(start_paused = true)]
    async fn a_wait_before_a_resumption_does_not_count_as_computing() {
        let cpu = Cpu::new(1);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut turns = Turns::new(cpu.clone(), Arc::from("a"));
        let resumed = turns.resumed();
        tokio::time::advance(Duration::from_millis(10)).await;
        resumed.now();
        tokio::time::advance(Duration::from_micros(900)).await;
        assert!(matches!(turns.at_tick(deadline), AtTick::Continue));
        assert!(!cpu.busy("a"));

        // Without the resumption, the same wait counts: busy, it yields for a turn.
        let mut unmarked = Turns::new(cpu.clone(), Arc::from("b"));
        tokio::time::advance(Duration::from_micros(10_900)).await;
        assert!(matches!(unmarked.at_tick(deadline), AtTick::Yield(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn turns_go_round_the_projects() {
        let cpu = Cpu::new(1);
        let a: Arc<str> = Arc::from("a");
        let b: Arc<str> = Arc::from("b");
        let first = cpu.clone().turn(a.clone()).await;
        // Three of a's guests queue, then one of b's: b's comes second, not fourth.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for (i, p) in [(1, &a), (2, &a), (3, &a), (4, &b)] {
            let (cpu, p, tx) = (cpu.clone(), p.clone(), tx.clone());
            tokio::spawn(async move {
                let turn = cpu.turn(p).await;
                tx.send(i).unwrap();
                tokio::task::yield_now().await;
                drop(turn);
            });
            tokio::task::yield_now().await;
        }
        assert!(cpu.busy("a"), "a is busy: its guests queue sooner");
        assert!(!cpu.busy("c"));
        drop(first);
        let mut order = Vec::new();
        for _ in 0..4 {
            order.push(rx.recv().await.unwrap());
        }
        assert_eq!(order, [1, 4, 2, 3]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_turn_held_past_its_lease_is_taken_back() {
        let cpu = Cpu::new(1);
        let _stuck = cpu.clone().turn(Arc::from("a")).await;
        let t = tokio::time::Instant::now();
        let next = tokio::spawn(cpu.clone().turn(Arc::from("b")));
        while !next.is_finished() {
            tokio::time::sleep(Duration::from_millis(1)).await;
            cpu.tick();
        }
        let waited = t.elapsed();
        assert!(
            waited >= TURN_LEASE && waited < TURN_LEASE * 2,
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_guest_that_stops_waiting_gives_up_its_place() {
        let cpu = Cpu::new(1);
        let held = cpu.clone().turn(Arc::from("a")).await;
        let gone = tokio::spawn(cpu.clone().turn(Arc::from("b")));
        tokio::task::yield_now().await;
        gone.abort();
        let _ = gone.await;
        drop(held);
        // The slot went to no one: the next guest gets it at once.
        let t = tokio::time::Instant::now();
        let _next = cpu.clone().turn(Arc::from("c")).await;
        assert_eq!(t.elapsed(), Duration::ZERO);
    }

    #[test]
    fn no_slots_means_no_turns() {
        let cpu = Cpu::new(0);
        let mut turns = Turns::new(cpu.clone(), Arc::from("a"));
        std::thread::sleep(FIRST_SLICE);
        // Computed a whole slice: with no turns it only yields.
        assert!(matches!(
            turns.at_tick(std::time::Instant::now() + Duration::from_secs(1)),
            AtTick::Yield(_)
        ));
        assert!(!cpu.busy("a"));
    }
}
