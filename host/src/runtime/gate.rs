//! A counting semaphore for admission that keeps permits on the thread that frees them.
//!
//! The data plane runs one single-threaded runtime per worker thread, and a package's
//! instance slots (and the budgets) are shared by all of them. A FIFO semaphore (tokio's)
//! hands a freed permit to the oldest waiter wherever it is, so under a queue about half the
//! hand-offs wake the other worker: an `eventfd` write on every one (a current-thread runtime
//! is woken from outside unconditionally) and often a return from `epoll_wait` on the other
//! side. At 64 connections on 2 workers that cost 13 µs of CPU per request, against 3 µs
//! on one worker (BENCHMARKS.md).
//!
//! A [`Gate`] is FIFO once its oldest waiter has waited [`YOUNG`]. Before that, a freed permit
//! goes to the oldest waiter on the freeing thread; when there is none there, it stays free
//! for the next request that thread parses (its sockets usually hold some) unless the oldest
//! waiter's thread holds none of the gate's permits (then nothing there would pick it up, and
//! it is handed over at once) or the waiter is a task of a multi-threaded runtime (which has
//! no thread of its own). A thread picks up what was left free at its next release or
//! arrival, and every waiter looks for itself when it turns [`YOUNG`], so a permit is never
//! left free past that while someone waits, and no waiter waits more than about [`YOUNG`]
//! behind a later one.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::time::Instant;

/// How long the oldest waiter may wait while later ones on the freeing thread go first.
pub const YOUNG: Duration = Duration::from_millis(2);

/// A thread, as the gate tells waiters apart.
type Home = u64;

/// This thread's [`Home`], numbered on first use.
fn here() -> Home {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static HOME: Home = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    HOME.with(|h| *h)
}

/// Permits, shared by cloning.
#[derive(Clone)]
pub struct Gate {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("free", &self.free())
            .finish_non_exhaustive()
    }
}

struct Inner {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    free: u32,
    next: u64,
    /// Waiters by arrival: the first is the oldest.
    waiters: BTreeMap<u64, Waiter>,
    /// The same waiters by thread, so finding a thread's oldest (or that it has none) does not
    /// walk the others' (a queue can hold thousands).
    by_home: Vec<(Home, BTreeSet<u64>)>,
    /// Permits held, by the thread that took them (a handful of threads).
    held: Vec<(Home, u32)>,
}

struct Waiter {
    n: u32,
    home: Home,
    /// Waits on a single-threaded runtime, whose thread frees what it took: a permit may be
    /// left free for that thread. (A task of a multi-threaded runtime moves between threads.)
    pinned: bool,
    since: Instant,
    granted: Arc<AtomicBool>,
    waker: Option<Waker>,
}

/// Permits held, given back on drop.
pub struct Permit {
    inner: Arc<Inner>,
    n: u32,
    home: Home,
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit").field("n", &self.n).finish()
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.inner.release(self.n, self.home, here());
    }
}

impl Gate {
    /// A gate of `permits`.
    pub fn new(permits: u32) -> Gate {
        Gate {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    free: permits,
                    ..State::default()
                }),
            }),
        }
    }

    /// Permits free now.
    pub fn free(&self) -> u32 {
        self.inner.lock().free
    }

    /// `n` permits if this thread may take them now without waiting, else `None`.
    pub fn try_acquire(&self, n: u32) -> Option<Permit> {
        self.try_acquire_from(n, here())
    }

    fn try_acquire_from(&self, n: u32, home: Home) -> Option<Permit> {
        let (taken, wake) = {
            let mut state = self.inner.lock();
            let wake = state.hand_out(home);
            (state.take(n, home), wake)
        };
        wake_all(wake);
        taken.then(|| permit(&self.inner, n, home))
    }

    /// `n` permits, waiting in the queue for them. A gate never closes; bound the wait with a
    /// timeout (dropping the wait leaves the queue and loses no permit).
    pub fn acquire(&self, n: u32) -> Acquire {
        self.acquire_from(n, here())
    }

    fn acquire_from(&self, n: u32, home: Home) -> Acquire {
        let (wait, wake) = {
            let mut state = self.inner.lock();
            // What was left free for this thread goes to its waiters before a newcomer.
            let wake = state.hand_out(home);
            let wait = if state.take(n, home) {
                Wait::Ready
            } else {
                let id = state.next;
                state.next += 1;
                let granted = Arc::new(AtomicBool::new(false));
                let since = Instant::now();
                let pinned = tokio::runtime::Handle::try_current().is_ok_and(|h| {
                    h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread
                });
                state.enqueue(
                    id,
                    Waiter {
                        n,
                        home,
                        pinned,
                        since,
                        granted: granted.clone(),
                        waker: None,
                    },
                );
                Wait::Queued {
                    id,
                    granted,
                    look: Some(Box::pin(tokio::time::sleep_until(since + YOUNG))),
                }
            };
            (wait, wake)
        };
        wake_all(wake);
        Acquire {
            inner: self.inner.clone(),
            n,
            home,
            wait,
        }
    }
}

/// `n` permits of `inner`, taken on `home`.
fn permit(inner: &Arc<Inner>, n: u32, home: Home) -> Permit {
    Permit {
        inner: inner.clone(),
        n,
        home,
    }
}

fn wake_all(wakers: Vec<Waker>) {
    for waker in wakers {
        waker.wake();
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is counters and a queue, each change whole under the lock: a panic
        // elsewhere while it was held leaves nothing half-done.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Gives back `n` permits taken on `owner` and freed on `home`, and hands out what fits.
    fn release(&self, n: u32, owner: Home, home: Home) {
        let wake = {
            let mut state = self.lock();
            state.give_back(n, owner);
            state.hand_out(home)
        };
        wake_all(wake);
    }
}

impl State {
    fn held_by(&mut self, home: Home) -> &mut u32 {
        let at = match self.held.iter().position(|(h, _)| *h == home) {
            Some(at) => at,
            None => {
                self.held.push((home, 0));
                self.held.len() - 1
            }
        };
        &mut self.held[at].1
    }

    fn enqueue(&mut self, id: u64, waiter: Waiter) {
        match self.by_home.iter_mut().find(|(h, _)| *h == waiter.home) {
            Some((_, ids)) => {
                ids.insert(id);
            }
            None => self.by_home.push((waiter.home, BTreeSet::from([id]))),
        }
        self.waiters.insert(id, waiter);
    }

    fn dequeue(&mut self, id: u64) -> Option<Waiter> {
        let waiter = self.waiters.remove(&id)?;
        if let Some(at) = self.by_home.iter().position(|(h, _)| *h == waiter.home) {
            self.by_home[at].1.remove(&id);
            if self.by_home[at].1.is_empty() {
                self.by_home.swap_remove(at);
            }
        }
        Some(waiter)
    }

    /// `home`'s waiters, oldest first; `None` when it has none.
    fn waiting_on(&self, home: Home) -> Option<&BTreeSet<u64>> {
        self.by_home
            .iter()
            .find(|(h, _)| *h == home)
            .map(|(_, ids)| ids)
    }

    fn holding(&self, home: Home) -> u32 {
        self.held
            .iter()
            .find(|(h, _)| *h == home)
            .map_or(0, |(_, n)| *n)
    }

    fn give_back(&mut self, n: u32, owner: Home) {
        self.free += n;
        let held = self.held_by(owner);
        *held = held.saturating_sub(n);
        if *held == 0 {
            self.held.retain(|(_, n)| *n > 0);
        }
    }

    /// Whether the oldest waiter (if any) is younger than [`YOUNG`] at `now`.
    fn oldest_young(&self, now: Instant) -> bool {
        self.waiters
            .first_key_value()
            .is_none_or(|(_, w)| now.saturating_duration_since(w.since) < YOUNG)
    }

    /// Takes `n` free permits for a newcomer on `home`: when nobody waits, or when the permits
    /// were left free on purpose ([`State::hand_out`]): the oldest waiter is young and none
    /// waits on `home` (those go first).
    fn take(&mut self, n: u32, home: Home) -> bool {
        if self.free < n {
            return false;
        }
        let may = self.waiters.is_empty()
            || (self.oldest_young(Instant::now()) && self.waiting_on(home).is_none());
        if !may {
            return false;
        }
        self.free -= n;
        *self.held_by(home) += n;
        true
    }

    /// Grants waiters while the free permits suffice, called on `home`: while the oldest
    /// waiter is young, the oldest on `home` that fits, else the oldest of all unless its
    /// thread (a single-threaded runtime's) holds permits of its own (then it stays free for
    /// `home` or that thread to pick up);
    /// once the oldest is old, strictly in order (a large request at the head is not
    /// overtaken). Returns the wakers to call once the lock is released.
    fn hand_out(&mut self, home: Home) -> Vec<Waker> {
        let mut wake = Vec::new();
        let mut now = None;
        while let Some((&oldest, first)) = self.waiters.first_key_value() {
            let now = *now.get_or_insert_with(Instant::now);
            let pick = if now.saturating_duration_since(first.since) < YOUNG {
                let local = self.waiting_on(home).and_then(|ids| {
                    ids.iter()
                        .find(|id| self.waiters.get(id).is_some_and(|w| w.n <= self.free))
                        .copied()
                });
                let (n, its, pinned) = (first.n, first.home, first.pinned);
                local.or_else(|| {
                    let leave = pinned && its != home && self.holding(its) > 0;
                    (n <= self.free && !leave).then_some(oldest)
                })
            } else {
                (first.n <= self.free).then_some(oldest)
            };
            let Some(id) = pick else { break };
            let Some(w) = self.dequeue(id) else {
                break;
            };
            self.free -= w.n;
            *self.held_by(w.home) += w.n;
            w.granted.store(true, Ordering::Release);
            wake.extend(w.waker);
        }
        wake
    }
}

/// A wait for permits ([`Gate::acquire`]).
pub struct Acquire {
    inner: Arc<Inner>,
    n: u32,
    home: Home,
    wait: Wait,
}

enum Wait {
    /// Granted (at once, or by a release); the permit not yet taken.
    Ready,
    Queued {
        id: u64,
        granted: Arc<AtomicBool>,
        /// When the waiter turns [`YOUNG`] and looks for a permit left free itself.
        look: Option<Pin<Box<tokio::time::Sleep>>>,
    },
    /// The permit was taken.
    Done,
}

impl Future for Acquire {
    type Output = Permit;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Permit> {
        let this = &mut *self;
        if let Wait::Queued { id, granted, look } = &mut this.wait
            && !granted.load(Ordering::Acquire)
        {
            let looks = look
                .as_mut()
                .is_some_and(|s| s.as_mut().poll(cx).is_ready());
            if looks {
                *look = None;
            }
            let wake = {
                let mut state = this.inner.lock();
                let wake = if looks {
                    state.hand_out(this.home)
                } else {
                    Vec::new()
                };
                if let Some(w) = state.waiters.get_mut(id) {
                    if !w.waker.as_ref().is_some_and(|k| k.will_wake(cx.waker())) {
                        w.waker = Some(cx.waker().clone());
                    }
                    drop(state);
                    wake_all(wake);
                    return Poll::Pending;
                }
                // Granted between the load and the lock, or just now.
                wake
            };
            wake_all(wake);
        }
        this.wait = Wait::Done;
        Poll::Ready(permit(&this.inner, this.n, this.home))
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.wait, Wait::Done) {
            Wait::Done => {}
            // Granted but never taken: give it back.
            Wait::Ready => self.inner.release(self.n, self.home, here()),
            Wait::Queued { id, .. } => {
                let wake = {
                    let mut state = self.inner.lock();
                    if state.dequeue(id).is_none() {
                        // Granted while leaving: the permits go back.
                        state.give_back(self.n, self.home);
                    }
                    // Leaving may let those behind a large request in.
                    state.hand_out(here())
                };
                wake_all(wake);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Wake;

    /// Counts its wakes.
    #[derive(Default)]
    struct Count(std::sync::atomic::AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn poll(acquire: &mut Acquire) -> Option<Permit> {
        let waker = Waker::from(Arc::new(Count::default()));
        match Pin::new(acquire).poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(p) => Some(p),
            Poll::Pending => None,
        }
    }

    const A: Home = 1_000_001;
    const B: Home = 1_000_002;

    impl Gate {
        /// Frees `permit` as if on `home`.
        fn release_on(&self, permit: Permit, home: Home) {
            let (n, owner) = (permit.n, permit.home);
            std::mem::forget(permit);
            self.inner.release(n, owner, home);
        }
    }

    /// A gate of two permits, one held on each of A and B, and a waiter on B (busy: it holds
    /// one).
    async fn busy_on_both() -> (Gate, Permit, Permit, Acquire) {
        let gate = Gate::new(2);
        let held_a = gate.acquire_from(1, A).await;
        let held_b = gate.acquire_from(1, B).await;
        let mut on_b = gate.acquire_from(1, B);
        assert!(poll(&mut on_b).is_none());
        (gate, held_a, held_b, on_b)
    }

    #[tokio::test(start_paused = true)]
    async fn a_freed_permit_goes_to_a_waiter_on_its_thread_while_the_oldest_is_young() {
        let (gate, held_a, _held_b, mut on_b) = busy_on_both().await;
        let mut on_a = gate.acquire_from(1, A);
        assert!(poll(&mut on_b).is_none() && poll(&mut on_a).is_none());
        // Freed on A with B's waiter young: A's later waiter gets it.
        gate.release_on(held_a, A);
        let p = poll(&mut on_a).expect("the waiter on the freeing thread");
        assert!(poll(&mut on_b).is_none());
        // Freed on A again, nobody waiting on A, B busy: it stays free for B's thread (or
        // A's next request) to pick up, without waking B's thread.
        gate.release_on(p, A);
        assert!(poll(&mut on_b).is_none());
        assert_eq!(gate.free(), 1);
        // B's thread picks it up at its next arrival: its waiter first.
        assert!(gate.try_acquire_from(1, B).is_none());
        assert!(poll(&mut on_b).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_permit_left_free_is_found_by_its_waiter_when_it_turns_young() {
        let (gate, held_a, _held_b, on_b) = busy_on_both().await;
        gate.release_on(held_a, A);
        assert_eq!(gate.free(), 1, "left free: B's thread is busy");
        // Nothing else happens: the waiter's own look finds it.
        let got = tokio::time::timeout(YOUNG * 2, on_b).await;
        assert!(got.is_ok(), "the waiter took the permit left free");
    }

    #[tokio::test(start_paused = true)]
    async fn a_thread_holding_nothing_is_handed_a_freed_permit_at_once() {
        let gate = Gate::new(1);
        let held = gate.acquire_from(1, A).await;
        let mut on_b = gate.acquire_from(1, B);
        assert!(poll(&mut on_b).is_none());
        gate.release_on(held, A);
        assert!(poll(&mut on_b).is_some(), "B holds nothing: handed over");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiter_of_a_multi_threaded_runtime_is_handed_a_freed_permit_at_once() {
        // Its task may run on any thread: nothing is left free for "its" thread.
        let (gate, held_a, _held_b, mut on_b) = busy_on_both().await;
        gate.release_on(held_a, A);
        assert!(poll(&mut on_b).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn once_the_oldest_has_waited_young_it_is_served_first() {
        let (gate, held, _held_b, mut on_b) = busy_on_both().await;
        tokio::time::advance(YOUNG).await;
        let mut on_a = gate.acquire_from(1, A);
        gate.release_on(held, A);
        assert!(poll(&mut on_a).is_none());
        assert!(
            poll(&mut on_b).is_some(),
            "strict FIFO once the oldest is old"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn newcomers_on_another_thread_cannot_keep_a_permit_from_an_old_waiter() {
        // A tenant flooding thread A with requests while B's waiter waits: while it is young
        // a newcomer may take what was left free, but not once it is old.
        let (gate, held_a, _held_b, mut on_b) = busy_on_both().await;
        gate.release_on(held_a, A);
        assert_eq!(gate.free(), 1, "left free for B's busy thread");
        let early = gate
            .try_acquire_from(1, A)
            .expect("a newcomer while B's waiter is young");
        gate.release_on(early, A);
        tokio::time::advance(YOUNG).await;
        for _ in 0..100 {
            assert!(gate.try_acquire_from(1, A).is_none());
            let mut queued = gate.acquire_from(1, A);
            assert!(poll(&mut queued).is_none());
        }
        assert!(poll(&mut on_b).is_some(), "the old waiter was served first");
    }

    #[tokio::test(start_paused = true)]
    async fn a_large_request_at_the_head_is_not_overtaken_once_old() {
        let gate = Gate::new(4);
        let held = gate.acquire_from(4, A).await;
        let mut large = gate.acquire_from(3, B);
        let mut small = gate.acquire_from(1, A);
        assert!(poll(&mut large).is_none() && poll(&mut small).is_none());
        tokio::time::advance(YOUNG).await;
        drop(held);
        // 4 free: the large one first, then the small one fits too.
        let both = (poll(&mut large), poll(&mut small));
        assert!(both.0.is_some() && both.1.is_some());
        assert_eq!(gate.free(), 0);

        let gate = Gate::new(4);
        let held = gate.acquire_from(4, A).await;
        let mut large = gate.acquire_from(4, B);
        let mut small = gate.acquire_from(1, A);
        let mut later = gate.acquire_from(1, A);
        assert!(
            [&mut large, &mut small, &mut later]
                .into_iter()
                .all(|a| poll(a).is_none())
        );
        tokio::time::advance(YOUNG).await;
        let (rest, one) = (held.n - 1, held.home);
        std::mem::forget(held);
        gate.inner.release(1, one, A);
        assert!(
            poll(&mut small).is_none(),
            "the old large request at the head holds the line"
        );
        gate.inner.release(rest, one, A);
        let whole = poll(&mut large);
        assert!(whole.is_some());
        assert!(poll(&mut small).is_none() && poll(&mut later).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_given_up_leaves_the_queue_and_loses_no_permit() {
        let gate = Gate::new(2);
        let held = gate.acquire(2).await;
        let gone = tokio::time::timeout(Duration::from_millis(5), gate.acquire(1)).await;
        assert!(gone.is_err());
        drop(held);
        assert_eq!(gate.free(), 2);
        // Granted but dropped before it was polled: the permit comes back.
        let held = gate.acquire(2).await;
        let mut waiting = gate.acquire(1);
        assert!(poll(&mut waiting).is_none());
        drop(held);
        assert_eq!(gate.free(), 1, "one granted to the waiter");
        drop(waiting);
        assert_eq!(gate.free(), 2);
        // A large waiter leaving lets the one behind it in.
        let held = gate.acquire(1).await;
        let mut large = gate.acquire(2);
        let mut small = gate.acquire(1);
        assert!(poll(&mut large).is_none() && poll(&mut small).is_none());
        drop(large);
        assert!(poll(&mut small).is_some());
        drop(held);
        let state = gate.inner.lock();
        assert!(state.held.is_empty() && state.by_home.is_empty() && state.waiters.is_empty());
    }

    #[test]
    fn many_threads_never_hold_more_than_the_permits_and_give_all_back() {
        use std::sync::atomic::AtomicUsize;
        const PERMITS: u32 = 3;
        let gate = Gate::new(PERMITS);
        let holding = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let served = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (gate, holding, most, served) =
                    (gate.clone(), holding.clone(), most.clone(), served.clone());
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async move {
                        let mut tasks = tokio::task::JoinSet::new();
                        for i in 0..200u32 {
                            let (gate, holding, most, served) =
                                (gate.clone(), holding.clone(), most.clone(), served.clone());
                            tasks.spawn(async move {
                                let n = 1 + (i + t) % 2;
                                // Some give up early; the rest wait as long as it takes.
                                let wait = if i % 7 == 0 {
                                    Duration::from_micros(50)
                                } else {
                                    Duration::from_secs(60)
                                };
                                let Ok(permit) = tokio::time::timeout(wait, gate.acquire(n)).await
                                else {
                                    return;
                                };
                                let now =
                                    holding.fetch_add(n as usize, Ordering::SeqCst) + n as usize;
                                most.fetch_max(now, Ordering::SeqCst);
                                tokio::task::yield_now().await;
                                holding.fetch_sub(n as usize, Ordering::SeqCst);
                                served.fetch_add(1, Ordering::SeqCst);
                                drop(permit);
                            });
                        }
                        while tasks.join_next().await.is_some() {}
                    });
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(most.load(Ordering::SeqCst) <= PERMITS as usize);
        let patient = (0..200).filter(|i| i % 7 != 0).count();
        assert!(served.load(Ordering::SeqCst) >= 4 * patient);
        assert_eq!(gate.free(), PERMITS);
        let state = gate.inner.lock();
        assert!(state.waiters.is_empty() && state.held.is_empty() && state.by_home.is_empty());
    }
}
