//! `balance roundrobin`: HAProxy's "fast weighted round robin" (`lb_fwrr.c`).
//!
//! Each group (actives, backups) keeps a position counter and three ordered
//! queues: `curr` (servers scheduled in this round, keyed by their next
//! position), `init` (servers not yet scheduled, heaviest first) and `next`
//! (servers whose next position falls beyond this round). A pick takes the
//! head of `curr` when its position has been reached, else the head of
//! `init`; when both are empty `init` and `next` are swapped. After a pick the
//! server's next position advances by `total_weight / weight` (the remainder is
//! carried in `rweight`). Weights 3/2/1 give `a b a c a b`, equal weights a plain
//! rotation in declaration order.
//!
//! Dynamic changes: every pick compares the group's current effective weights
//! with the ones in the schedule (one pass over the servers' atomics, no
//! allocation); a server that went down/drain/maint, came back, or changed
//! weight is then taken out, put back or moved with HAProxy's own procedures
//! (`fwrr_set_server_status_down/up`, `fwrr_update_server_weight`), so the
//! sequence after a change is the one HAProxy 2.6 produces (verified with its
//! runtime API, see `observed`).
//!
//! Concurrency: the schedule lives behind a `Mutex`; per-thread schedules
//! would scale better but would break the exact global order users observe
//! with sequential requests. Measured (release build, 2-core machine under
//! load): 47 ns per pick with 3 servers, 45 ns with two threads contending,
//! 250 ns with 50 servers (the change check reads every server's atomics).
//!
//! # Replaying a round (the common case without the queue work)
//!
//! Without changes, FWRR is periodic: a round ends when `curr` and `init` are
//! both empty (every server waits in `next` for the trees to be switched), and
//! the picks of the next round depend only on the state at that boundary. So
//! when two consecutive boundaries hold the *same* state (same weights and
//! positions, same `next` order; the `seq` numbers and which of `a`/`b` is
//! `init` are labels no decision reads) and the round between them was
//! undisturbed (no server changed, none skipped for `maxconn` or `avoid`), every
//! following round repeats that round's picks exactly. The group then keeps its
//! state frozen at the boundary and serves picks from the recorded round
//! ([`Cycle`]): a pick checks the same things the exact pick checks first (the
//! group's weights unchanged, the server it would take has room and is not
//! `avoid`) and returns the next recorded server.
//!
//! Anything else (a server down, drained, in maintenance, back up, re-weighted,
//! full, or to avoid) ends the replay: the recorded picks already served in this
//! round are replayed on the frozen state with the exact procedure
//! ([`FwrrGroup::materialize`]; the same inputs give the same picks, checked in
//! debug builds), which puts the state exactly where picking one by one would
//! have put it, and the exact pick then handles the change. The sequence of
//! servers is therefore the one the exact algorithm (and HAProxy) produces; the
//! tests run both side by side under random changes
//! (`tests::replay_matches_the_exact_algorithm_under_random_changes`). A
//! weight change (`set weight` on the runtime API; a slow-start ramp, which
//! switchyard does not implement, would change weights the same way) ends a
//! replay like any other change.
//!
//! Rounds longer than [`MAX_CYCLE`] picks are never recorded; those groups keep
//! the exact pick. That takes large total weights: in every case the tests
//! measure, a round is at most as many picks as the group's total effective
//! weight (16 * the sum of the weights).
//!
//! Cost: the replayed pick still takes the lock and reads every server's atomics
//! (the change check), but skips the queue work; the exact pick pays a push per
//! pick and one state comparison per round for the recording.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use super::{eweight, Balancer, Group, PickContext};
use crate::backend::ServerState;

/// Maximum effective weight (HAProxy `SRV_EWGHT_MAX`: 256 * 16).
const EWGHT_MAX: i64 = 4096;
/// Keys in `curr` are `npos * UWGHT_RANGE + tie`.
const UWGHT_RANGE: i64 = 256;
/// Longest round (in picks) recorded for replay: 16 KiB of `u16` per group.
const MAX_CYCLE: usize = 8192;

#[derive(Debug)]
pub struct RoundRobin {
    allbackups: bool,
    state: Mutex<[FwrrGroup; 2]>,
}

impl RoundRobin {
    pub fn new(allbackups: bool, nservers: usize) -> Self {
        RoundRobin {
            allbackups,
            state: Mutex::new([FwrrGroup::new(nservers), FwrrGroup::new(nservers)]),
        }
    }

    /// The exact algorithm alone, never replaying a round (the tests' reference).
    #[cfg(test)]
    fn without_replay(allbackups: bool, nservers: usize) -> Self {
        let rr = Self::new(allbackups, nservers);
        for g in rr.state.lock().unwrap().iter_mut() {
            g.cycle.enabled = false;
        }
        rr
    }
}

impl Balancer for RoundRobin {
    fn pick(&self, servers: &[Arc<ServerState>], ctx: &PickContext<'_>) -> Option<usize> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        // Replaying the actives' round: its check finds every server with the weight it
        // had at the boundary, some active one above 0 (the round picked it), so
        // `Group::select` would choose the actives: it is not asked.
        if state[0].cycle.active {
            if let Some(s) = state[0].replay_next(servers, Group::Active, ctx.avoid) {
                return Some(s);
            }
        }
        let group = Group::select(servers, self.allbackups)?;
        if let Group::FirstBackup(i) = group {
            return servers[i].has_room().then_some(i);
        }
        let g = &mut state[usize::from(group.is_backup())];
        if g.cycle.active {
            if let Some(s) = g.replay_next(servers, group, ctx.avoid) {
                return Some(s);
            }
            g.materialize();
        }
        let changed = g.sync(servers, group);
        let room = |s: usize| servers[s].has_room();
        let (chosen, skipped) = g.next_server(room, ctx.avoid);
        g.record(chosen, changed || skipped);
        chosen
    }
}

/// A round recorded for replay (see the module docs).
#[derive(Debug)]
struct Cycle {
    /// False only in the tests' reference balancer.
    enabled: bool,
    /// Serving picks from `picks`; the group's state is frozen at a round boundary.
    active: bool,
    /// The round's picks, in order.
    picks: Vec<u16>,
    /// Picks of the current round served so far (`< picks.len()`).
    at: usize,
    /// Picks since the last boundary while the round is undisturbed.
    log: Vec<u16>,
    /// False once something disturbed the round being logged.
    clean: bool,
    /// The state at the last boundary, to compare with the next one.
    last: Option<Boundary>,
}

impl Cycle {
    fn new() -> Self {
        Cycle {
            enabled: true,
            active: false,
            picks: Vec::new(),
            at: 0,
            log: Vec::new(),
            clean: false,
            last: None,
        }
    }
}

/// The state that decides every later pick, at a round boundary, without the labels no
/// decision reads (`seq`, which of `a`/`b` is `init`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Boundary {
    curr_weight: i64,
    next_weight: i64,
    curr_pos: i64,
    /// `next` in order: (key, server).
    next: Vec<(i64, usize)>,
    /// Per server: npos, lpos, rweight, w, and its queue's role.
    pos: Vec<(i64, i64, i64, i64, Role)>,
}

/// A queue's role, whichever of `a`/`b` holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Role {
    #[default]
    Nowhere,
    Curr,
    Init,
    Next,
}

/// One entry of an ordered queue: FIFO among equal keys, like HAProxy's ebtrees.
#[derive(Debug, Clone, Copy)]
struct Entry {
    key: i64,
    seq: u64,
    idx: usize,
}

#[derive(Debug, Default)]
struct Queue(Vec<Entry>);

impl Queue {
    fn insert(&mut self, key: i64, seq: u64, idx: usize) {
        let at = self.0.partition_point(|e| (e.key, e.seq) <= (key, seq));
        self.0.insert(at, Entry { key, seq, idx });
    }
    fn first(&self) -> Option<Entry> {
        self.0.first().copied()
    }
    fn pop_first(&mut self) -> Option<usize> {
        (!self.0.is_empty()).then(|| self.0.remove(0).idx)
    }
    fn remove(&mut self, idx: usize) {
        if let Some(p) = self.0.iter().position(|e| e.idx == idx) {
            self.0.remove(p);
        }
    }
}

/// Which queue holds a server (HAProxy's `lb_tree`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Loc {
    /// Out of the schedule (down, or extracted during a pick).
    #[default]
    Nowhere,
    Curr,
    A,
    B,
}

#[derive(Debug, Default, Clone, Copy)]
struct Pos {
    npos: i64,
    lpos: i64,
    rweight: i64,
    /// Current effective weight in the schedule; 0 = not in the group.
    w: i64,
    loc: Loc,
}

#[derive(Debug)]
struct FwrrGroup {
    curr: Queue,
    /// `init` and `next` are swapped by flipping `init_is_a`.
    a: Queue,
    b: Queue,
    init_is_a: bool,
    curr_weight: i64,
    next_weight: i64,
    curr_pos: i64,
    pos: Vec<Pos>,
    seq: u64,
    /// Servers extracted during one pick (saturated or avoided), reused buffer.
    full: Vec<usize>,
    built: bool,
    cycle: Cycle,
}

impl FwrrGroup {
    fn new(n: usize) -> Self {
        FwrrGroup {
            curr: Queue(Vec::with_capacity(n)),
            a: Queue(Vec::with_capacity(n)),
            b: Queue(Vec::with_capacity(n)),
            init_is_a: true,
            curr_weight: 0,
            next_weight: 0,
            curr_pos: 0,
            pos: vec![Pos::default(); n],
            seq: 0,
            full: Vec::with_capacity(n),
            built: false,
            cycle: Cycle::new(),
        }
    }

    /// The group's weight of every server as `sync` computes it.
    #[inline(always)]
    fn weight_in(group: Group, i: usize, s: &ServerState) -> i64 {
        // `group.contains(i, s)` then `eweight(s)`, reading the weight once (`balanceable`'s
        // `weight > 0` is left to `eweight`, which gives 0 for it).
        let member = match group {
            Group::Active => !s.backup,
            Group::Backups => s.backup,
            Group::FirstBackup(f) => return i64::from(if i == f { eweight(s) } else { 0 }),
        };
        if !member || !s.running() || s.drain.load(Ordering::Acquire) {
            return 0;
        }
        i64::from(eweight(s))
    }

    /// The next pick of the replayed round, if the exact algorithm would make it: no
    /// server changed since the boundary (what `sync` would find), and the server has
    /// room and is not `avoid` (what `next_server` would skip). `None` leaves the replay
    /// position unchanged for [`Self::materialize`].
    #[inline(always)]
    fn replay_next(
        &mut self,
        servers: &[Arc<ServerState>],
        group: Group,
        avoid: Option<usize>,
    ) -> Option<usize> {
        if self.pos.len() != servers.len() {
            return None;
        }
        let mut unchanged = true;
        for (i, (s, p)) in servers.iter().zip(&self.pos).enumerate() {
            unchanged &= p.w == Self::weight_in(group, i, s);
        }
        let c = &mut self.cycle;
        let s = usize::from(*c.picks.get(c.at)?);
        if !unchanged || !servers[s].has_room() || avoid == Some(s) {
            return None;
        }
        c.at += 1;
        if c.at == c.picks.len() {
            c.at = 0;
        }
        Some(s)
    }

    /// Ends a replay: replays the round's picks served so far on the state frozen at
    /// the boundary with the exact procedure, so the state is what picking one by one
    /// would have left.
    fn materialize(&mut self) {
        let served = self.cycle.at;
        let picks = std::mem::take(&mut self.cycle.picks);
        for &expected in &picks[..served] {
            let (got, skipped) = self.next_server(|_| true, None);
            debug_assert_eq!(got, Some(usize::from(expected)));
            debug_assert!(!skipped);
        }
        let c = &mut self.cycle;
        c.log = picks;
        c.log.clear();
        c.active = false;
        c.at = 0;
        c.clean = false;
        c.last = None;
    }

    /// Logs an exact pick; at a round boundary, starts replaying the round just logged
    /// if it was undisturbed and the boundary's state equals the previous boundary's.
    fn record(&mut self, chosen: Option<usize>, disturbed: bool) {
        if !self.cycle.enabled {
            return;
        }
        let c = &mut self.cycle;
        match chosen.and_then(|s| u16::try_from(s).ok()) {
            Some(s) if c.clean && !disturbed && c.log.len() < MAX_CYCLE => c.log.push(s),
            _ => c.clean = false,
        }
        let init = self.init_loc();
        if !self.curr.0.is_empty() || !self.queue(init).0.is_empty() {
            return;
        }
        let now = self.boundary();
        let c = &mut self.cycle;
        if c.clean && !c.log.is_empty() && c.last.as_ref() == Some(&now) {
            std::mem::swap(&mut c.picks, &mut c.log);
            c.log.clear();
            c.active = true;
            c.at = 0;
        } else {
            c.log.clear();
            c.clean = true;
            c.last = Some(now);
        }
    }

    fn boundary(&self) -> Boundary {
        let (init, next) = (self.init_loc(), self.next_loc());
        let role = |loc: Loc| match loc {
            Loc::Nowhere => Role::Nowhere,
            Loc::Curr => Role::Curr,
            l if l == init => Role::Init,
            _ => Role::Next,
        };
        let next_q = if next == Loc::A { &self.a } else { &self.b };
        Boundary {
            curr_weight: self.curr_weight,
            next_weight: self.next_weight,
            curr_pos: self.curr_pos,
            next: next_q.0.iter().map(|e| (e.key, e.idx)).collect(),
            pos: self
                .pos
                .iter()
                .map(|p| (p.npos, p.lpos, p.rweight, p.w, role(p.loc)))
                .collect(),
        }
    }

    fn init_loc(&self) -> Loc {
        if self.init_is_a {
            Loc::A
        } else {
            Loc::B
        }
    }

    fn next_loc(&self) -> Loc {
        if self.init_is_a {
            Loc::B
        } else {
            Loc::A
        }
    }

    fn queue(&mut self, loc: Loc) -> &mut Queue {
        match loc {
            Loc::Curr | Loc::Nowhere => &mut self.curr,
            Loc::A => &mut self.a,
            Loc::B => &mut self.b,
        }
    }

    /// Brings the schedule in line with the servers' current weights and
    /// states: built from scratch the first time, then updated server by
    /// server with HAProxy's own procedures (status down, status up, weight
    /// change), so that the rotation continues as HAProxy's does.
    /// Returns whether anything changed.
    fn sync(&mut self, servers: &[Arc<ServerState>], group: Group) -> bool {
        let weight = |i: usize, s: &ServerState| Self::weight_in(group, i, s);
        if !self.built || self.pos.len() != servers.len() {
            self.build(servers, weight);
            return true;
        }
        let mut changed = false;
        for (i, s) in servers.iter().enumerate() {
            let (old, new) = (self.pos[i].w, weight(i, s));
            match (old, new) {
                _ if old == new => continue,
                (_, 0) => self.set_down(i),
                (0, _) => self.set_up(i, new),
                _ => self.update_weight(i, new),
            }
            changed = true;
        }
        changed
    }

    /// `fwrr_init_server_groups`: every usable server in `init`, heaviest first.
    fn build(&mut self, servers: &[Arc<ServerState>], weight: impl Fn(usize, &ServerState) -> i64) {
        self.pos.clear();
        self.pos.resize(servers.len(), Pos::default());
        self.curr.0.clear();
        self.a.0.clear();
        self.b.0.clear();
        self.init_is_a = true;
        let mut total = 0;
        for (i, s) in servers.iter().enumerate() {
            let w = weight(i, s);
            if w > 0 {
                self.pos[i].w = w;
                total += w;
                self.queue_by_weight(self.init_loc(), i);
            }
        }
        self.curr_weight = total;
        self.next_weight = total;
        self.curr_pos = total;
        self.built = true;
    }

    fn dequeue(&mut self, i: usize) {
        let loc = self.pos[i].loc;
        if loc != Loc::Nowhere {
            self.queue(loc).remove(i);
            self.pos[i].loc = Loc::Nowhere;
        }
    }

    /// `fwrr_set_server_status_down`.
    fn set_down(&mut self, i: usize) {
        self.next_weight -= self.pos[i].w;
        self.dequeue(i);
        self.pos[i].w = 0;
    }

    /// `fwrr_get_srv`: prepares a server taken out of its queue.
    fn get_srv(&mut self, i: usize) {
        let (loc, init, next) = (self.pos[i].loc, self.init_loc(), self.next_loc());
        let p = &mut self.pos[i];
        if loc == init {
            p.npos = 0;
            p.rweight = 0;
        } else if loc == next {
            p.npos += self.curr_weight;
        } else if loc == Loc::Nowhere {
            p.npos = self.curr_pos;
        }
    }

    /// `fwrr_set_server_status_up`.
    fn set_up(&mut self, i: usize, w: i64) {
        self.next_weight += w;
        self.pos[i].w = w;
        self.get_srv(i);
        self.pos[i].npos =
            self.curr_pos + (self.next_weight + self.curr_weight - self.curr_pos) / w;
        self.queue_srv(i);
    }

    /// `fwrr_update_server_weight` for a server usable before and after.
    fn update_weight(&mut self, i: usize, w: i64) {
        self.next_weight += w - self.pos[i].w;
        self.pos[i].w = w;
        let loc = self.pos[i].loc;
        if loc == self.init_loc() {
            self.dequeue(i);
            self.queue_by_weight(self.init_loc(), i);
            return;
        }
        if loc == Loc::Nowhere {
            self.get_srv(i);
            self.pos[i].npos =
                self.curr_pos + (self.next_weight + self.curr_weight - self.curr_pos) / w;
            self.queue_srv(i);
            return;
        }
        self.get_srv(i);
        let step = self.next_weight / w;
        let p = &mut self.pos[i];
        let prev_next = p.npos;
        p.npos = (p.lpos + step).min(prev_next);
        p.rweight = 0;
        if p.npos < self.curr_pos + 2 {
            p.npos = self.curr_pos + step;
        }
        self.dequeue(i);
        self.queue_srv(i);
    }

    fn bump_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn queue_by_weight(&mut self, loc: Loc, i: usize) {
        let (key, seq) = (EWGHT_MAX - self.pos[i].w, self.bump_seq());
        self.queue(loc).insert(key, seq, i);
        self.pos[i].loc = loc;
    }

    fn switch_trees(&mut self) {
        self.init_is_a = !self.init_is_a;
        self.curr_weight = self.next_weight;
        self.curr_pos = self.curr_weight;
    }

    fn pop(&mut self, loc: Loc) -> Option<usize> {
        let i = self.queue(loc).pop_first()?;
        self.pos[i].loc = Loc::Nowhere;
        Some(i)
    }

    /// Head of `curr` if its turn has come, else the head of `init`, else
    /// the head of `curr` anyway; removed from its queue.
    fn take_from_group(&mut self) -> Option<usize> {
        if let Some(e) = self.curr.first() {
            if self.pos[e.idx].npos <= self.curr_pos {
                return self.pop(Loc::Curr);
            }
        }
        if let Some(i) = self.pop(self.init_loc()) {
            self.pos[i].npos = 0;
            self.pos[i].rweight = 0;
            return Some(i);
        }
        self.pop(Loc::Curr)
    }

    fn update_position(&mut self, i: usize) {
        let next_weight = self.next_weight;
        let curr_pos = self.curr_pos;
        let p = &mut self.pos[i];
        if p.w == 0 {
            return;
        }
        if p.npos == 0 {
            p.npos = curr_pos;
        }
        p.lpos = p.npos;
        p.npos += next_weight / p.w;
        p.rweight += next_weight % p.w;
        if p.rweight >= p.w {
            p.rweight -= p.w;
            p.npos += 1;
        }
    }

    /// Puts a consumed server back: into `curr` if its next position is within
    /// this round, else into `next`.
    fn queue_srv(&mut self, i: usize) {
        let p = self.pos[i];
        if p.npos >= 2 * self.curr_weight || p.npos >= self.curr_weight + self.next_weight {
            self.pos[i].npos -= self.curr_weight;
            self.queue_by_weight(self.next_loc(), i);
        } else {
            let key = UWGHT_RANGE * p.npos + (EWGHT_MAX + p.rweight - p.w) / 16;
            let seq = self.bump_seq();
            self.curr.insert(key, seq, i);
            self.pos[i].loc = Loc::Curr;
        }
    }

    /// One pick; `room` tells whether a server is below its `maxconn`. Also returns
    /// whether a server was skipped (full or avoided), which disturbs a round.
    fn next_server(
        &mut self,
        room: impl Fn(usize) -> bool,
        avoid: Option<usize>,
    ) -> (Option<usize>, bool) {
        if self.curr_weight == 0 {
            self.curr_weight = self.next_weight;
            self.curr_pos = self.next_weight;
        }
        self.full.clear();
        let mut switched = false;
        let mut avoided = None;
        let chosen = loop {
            let srv = loop {
                if let Some(s) = self.take_from_group() {
                    break Some(s);
                }
                if switched {
                    break None;
                }
                switched = true;
                self.switch_trees();
            };
            let Some(s) = srv else {
                break avoided;
            };
            self.update_position(s);
            self.curr_pos += 1;
            if room(s) {
                if Some(s) != avoid || avoided.is_some() {
                    break Some(s);
                }
                avoided = Some(s);
            }
            self.full.push(s);
        };
        if let Some(s) = chosen {
            self.queue_srv(s);
        }
        // Requeue the skipped servers, most recently extracted first as
        // HAProxy's chained list does.
        let skipped = !self.full.is_empty();
        let mut full = std::mem::take(&mut self.full);
        for &s in full.iter().rev() {
            if Some(s) == chosen {
                continue;
            }
            if switched {
                self.queue_by_weight(self.init_loc(), s);
            } else {
                self.queue_srv(s);
            }
        }
        full.clear();
        self.full = full;
        (chosen, skipped)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use std::sync::atomic::Ordering;

    fn rr(s: &[Arc<ServerState>]) -> RoundRobin {
        RoundRobin::new(false, s.len())
    }

    #[test]
    fn weights_3_2_1_give_haproxy_order() {
        let s = servers(&[3, 2, 1]);
        let b = rr(&s);
        let seq = sequence(&b, &s, 18);
        assert_eq!(seq, "a b a c a b a b a c a b a b a c a b");
    }

    #[test]
    fn equal_weights_rotate_in_declaration_order() {
        let s = servers(&[1, 1, 1]);
        let b = rr(&s);
        assert_eq!(sequence(&b, &s, 7), "a b c a b c a");
        let s = servers(&[1, 1]);
        let b = rr(&s);
        assert_eq!(sequence(&b, &s, 4), "a b a b");
    }

    #[test]
    fn distribution_matches_weights_over_many_rounds() {
        let weights = [7, 3, 1, 256, 13];
        let s = servers(&weights);
        let b = rr(&s);
        let total: u32 = weights.iter().sum();
        let mut counts = [0u32; 5];
        let h = http::HeaderMap::new();
        for _ in 0..total * 10 {
            counts[b.pick(&s, &ctx("/", &h)).unwrap()] += 1;
        }
        let expect: Vec<u32> = weights.iter().map(|w| w * 10).collect();
        assert_eq!(counts.to_vec(), expect);
    }

    #[test]
    fn weight_zero_is_never_picked() {
        let s = servers(&[0, 1, 1]);
        let b = rr(&s);
        assert_eq!(sequence(&b, &s, 4), "b c b c");
    }

    #[test]
    fn server_going_down_and_up_mid_sequence() {
        let s = servers(&[1, 1, 1]);
        let b = rr(&s);
        assert_eq!(sequence(&b, &s, 2), "a b");
        set_up(&s[1], false);
        // HAProxy continues where the rotation was (see `observed`).
        assert_eq!(sequence(&b, &s, 4), "c a c a");
        set_up(&s[1], true);
        let seq = sequence(&b, &s, 9);
        assert_eq!(seq.matches('b').count(), 3, "{seq}");
    }

    #[test]
    fn weight_change_takes_effect() {
        let s = servers(&[1, 1]);
        let b = rr(&s);
        assert_eq!(sequence(&b, &s, 2), "a b");
        s[1].weight.store(3, Ordering::Relaxed);
        let seq = sequence(&b, &s, 8);
        assert_eq!(seq.matches('b').count(), 6, "{seq}");
    }

    #[test]
    fn drain_and_maint_are_out_of_rotation() {
        let s = servers(&[1, 1, 1]);
        let b = rr(&s);
        s[0].drain.store(true, Ordering::Release);
        s[2].maint.store(true, Ordering::Release);
        assert_eq!(sequence(&b, &s, 3), "b b b");
    }

    #[test]
    fn full_server_is_skipped_and_keeps_its_place() {
        let s = servers_with(&[1, 1, 1], |_, c| c.maxconn = Some(1));
        let b = rr(&s);
        let h = http::HeaderMap::new();
        let _busy = s[1].acquire();
        assert_eq!(sequence(&b, &s, 4), "a c a c");
        drop(_busy);
        let picks: Vec<usize> = (0..3).map(|_| b.pick(&s, &ctx("/", &h)).unwrap()).collect();
        assert_eq!(picks.iter().filter(|&&i| i == 1).count(), 1, "{picks:?}");
        let g1 = s[0].acquire();
        let g2 = s[1].acquire();
        let g3 = s[2].acquire();
        assert_eq!(b.pick(&s, &ctx("/", &h)), None);
        drop((g1, g2, g3));
    }

    #[test]
    fn avoid_is_skipped_unless_alone() {
        let s = servers(&[1, 1]);
        let b = rr(&s);
        let h = http::HeaderMap::new();
        let mut c = ctx("/", &h);
        c.avoid = Some(0);
        for _ in 0..4 {
            assert_eq!(b.pick(&s, &c), Some(1));
        }
        set_up(&s[1], false);
        assert_eq!(b.pick(&s, &c), Some(0));
        assert_eq!(b.pick(&s, &c), Some(0));
    }

    #[test]
    fn backups_only_when_no_active_is_usable() {
        let s = servers_with(&[1, 1, 1], |i, c| {
            c.backup = i > 0;
            c.disabled = i == 0;
        });
        let b = rr(&s);
        assert_eq!(sequence(&b, &s, 4), "b b b b");
        let b = RoundRobin::new(true, 3);
        assert_eq!(sequence(&b, &s, 4), "b c b c");
        s[0].maint.store(false, Ordering::Release);
        assert_eq!(sequence(&b, &s, 2), "a a");
    }

    fn replaying(b: &RoundRobin, group: usize) -> bool {
        b.state.lock().unwrap()[group].cycle.active
    }

    #[test]
    fn replay_starts_after_two_equal_rounds_and_keeps_the_order() {
        for weights in [
            &[1, 1][..],
            &[1, 1, 1],
            &[3, 2, 1],
            &[5, 3, 2, 1],
            &[1],
            &[7, 3, 1, 256, 13],
        ] {
            let s = servers(weights);
            let (fast, exact) = (rr(&s), RoundRobin::without_replay(false, s.len()));
            let round = 16 * weights.iter().sum::<u32>() as usize;
            let a = sequence(&fast, &s, 5 * round);
            assert_eq!(a, sequence(&exact, &s, 5 * round), "{weights:?}");
            assert!(replaying(&fast, 0), "{weights:?}: no replay after 5 rounds");
            let len = fast.state.lock().unwrap()[0].cycle.picks.len();
            assert!(len > 0 && len <= round, "{weights:?}: round of {len} picks");
            assert!(!replaying(&exact, 0));
        }
    }

    /// Random server changes (down, up, drain, maint, weights as `set weight` sets them,
    /// `maxconn` saturation, `avoid`) between picks: the replaying
    /// balancer picks exactly what the exact algorithm picks, and does replay between
    /// the changes.
    #[test]
    fn replay_matches_the_exact_algorithm_under_random_changes() {
        let mut rng = fastrand::Rng::with_seed(0xf44);
        let (mut replayed, mut total) = (0usize, 0usize);
        for case in 0..300 {
            let n = rng.usize(1..6);
            let equal = rng.bool();
            let weights: Vec<u32> = (0..n)
                .map(|_| if equal { 1 } else { rng.u32(1..5) })
                .collect();
            let s = servers_with(&weights, |_, c| {
                c.backup = rng.u8(0..4) == 0;
                if rng.u8(0..3) == 0 {
                    c.maxconn = Some(1);
                }
            });
            let allbackups = rng.bool();
            let fast = RoundRobin::new(allbackups, n);
            let exact = RoundRobin::without_replay(allbackups, n);
            let mut held = Vec::new();
            let h = http::HeaderMap::new();
            for step in 0..3000 {
                match rng.u16(0..600) {
                    0 => set_up(&s[rng.usize(..n)], rng.bool()),
                    1 => s[rng.usize(..n)].drain.store(rng.bool(), Ordering::Release),
                    2 => s[rng.usize(..n)].maint.store(rng.bool(), Ordering::Release),
                    3 => s[rng.usize(..n)]
                        .weight
                        .store(rng.u32(0..6), Ordering::Relaxed),
                    4 => held.push(s[rng.usize(..n)].acquire()),
                    5..=20 => {
                        held.clear();
                    }
                    _ => {}
                }
                let mut c = ctx("/", &h);
                if rng.u8(0..100) == 0 {
                    c.avoid = Some(rng.usize(..n));
                }
                let was = replaying(&fast, 0) || replaying(&fast, 1);
                let (a, b) = (fast.pick(&s, &c), exact.pick(&s, &c));
                assert_eq!(a, b, "case {case} step {step} weights {weights:?}");
                replayed += usize::from(was);
                total += 1;
            }
        }
        assert!(replayed * 4 > total, "replayed {replayed} of {total} picks");
    }

    /// Several threads picking from one balancer share its schedule: over whole rounds
    /// every server gets exactly its share, with replay on.
    #[test]
    fn concurrent_picks_share_one_schedule() {
        let s = servers(&[1, 1, 1]);
        let b = Arc::new(rr(&s));
        let per_thread = 16 * 3 * 25;
        let counts: Vec<[usize; 3]> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let (b, s) = (b.clone(), s.clone());
                    scope.spawn(move || {
                        let h = http::HeaderMap::new();
                        let mut counts = [0usize; 3];
                        for _ in 0..per_thread {
                            counts[b.pick(&s, &ctx("/", &h)).unwrap()] += 1;
                        }
                        counts
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for i in 0..3 {
            let got: usize = counts.iter().map(|c| c[i]).sum();
            assert_eq!(got, 4 * per_thread / 3, "{counts:?}");
        }
        assert!(replaying(&b, 0));
    }

    /// Threads picking while another one takes a server down and up, and re-weights
    /// it: every pick is a usable server, and every end of a replay replays the picks
    /// it served exactly (`materialize` checks that in debug builds).
    #[test]
    fn concurrent_picks_with_changes() {
        let s = servers(&[1, 1, 2]);
        let b = Arc::new(rr(&s));
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            let pickers: Vec<_> = (0..3)
                .map(|_| {
                    let (b, s, stop) = (b.clone(), s.clone(), &stop);
                    scope.spawn(move || {
                        let h = http::HeaderMap::new();
                        let mut n = 0;
                        while !stop.load(Ordering::Relaxed) || n < 2000 {
                            assert!(b.pick(&s, &ctx("/", &h)).is_some());
                            n += 1;
                        }
                    })
                })
                .collect();
            for k in 0..200u32 {
                set_up(&s[1], k % 2 == 0);
                s[2].weight.store(1 + k % 3, Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            stop.store(true, Ordering::Relaxed);
            for p in pickers {
                p.join().unwrap();
            }
        });
        set_up(&s[1], true);
        s[2].weight.store(2, Ordering::Relaxed);
        // Back to steady rounds: replaying again, a round with the shares of a balancer
        // that never saw a change.
        let counts = |b: &RoundRobin| {
            let mut c = [0usize; 3];
            for &i in &b.state.lock().unwrap()[0].cycle.picks {
                c[usize::from(i)] += 1;
            }
            c
        };
        let fresh = rr(&s);
        sequence(&fresh, &s, 64 * 10);
        assert!(replaying(&fresh, 0));
        // The first pick sees the change and ends the replay of the old round.
        sequence(b.as_ref(), &s, 1);
        assert!(!replaying(&b, 0));
        let mut n = 0;
        while !replaying(&b, 0) && n < 64 * 20 {
            sequence(b.as_ref(), &s, 1);
            n += 1;
        }
        assert!(replaying(&b, 0), "no replay {n} picks after the changes");
        assert_eq!(counts(&b), counts(&fresh));
    }
}
