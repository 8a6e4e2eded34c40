//! A per-thread LIFO pool of read buffers: connections hold a buffer only while
//! bytes must be held.
//!
//! Each worker thread runs its own current-thread runtime, so the pool is a
//! thread-local stack: taking and giving back never lock. A keep-alive client
//! connection waiting for its next request, and an idle pooled server connection,
//! hold no buffer (HAProxy takes a buffer from its pool only when data must be kept,
//! and gives it back once it is empty). The connection takes one when its socket is
//! readable, reads into it, and gives it back once everything read was consumed. A
//! handful of buffers then serves every connection of a thread: 10,000 idle
//! keep-alive connections cost no 16 KiB each, and the kernel copies each request
//! into the same few pages, which stay in the caches and the TLB (with one buffer
//! per connection, each of 1,000 connections' reads touched a page of its own).
//!
//! Invariants:
//! - every buffer in the pool is empty, its write position at the start of its
//!   allocation (rewound), and its capacity exactly [`READ_CHUNK`]: [`take`] returns
//!   a buffer ready for one read of up to 16 KiB, pooled or new;
//! - [`give`] keeps only such buffers: one holding bytes (pipelined data) stays with
//!   its connection, a grown or shrunken one (a long body's 64 KiB, a buffer a split
//!   left smaller) is dropped, so the pool never holds more than [`MAX_POOLED`] ×
//!   16 KiB per thread;
//! - last in, first out: the buffer given back last, the one most likely in the
//!   caches, is taken first;
//! - the pool is borrowed only inside this module's functions, never across an `.await`;
//!   both run on the thread of the connection's task (a task stays on its worker
//!   thread; a buffer given back on another thread would simply join that thread's
//!   pool).

use std::cell::RefCell;

use bytes::BytesMut;

use super::body::READ_CHUNK;

/// At most this many buffers wait in each thread's pool (1 MiB per thread): about
/// the number of reads a thread has in progress at once under load; beyond it,
/// buffers given back are freed.
pub const MAX_POOLED: usize = 64;

/// A thread's pool: the buffers, and the fewest it held since the last [`trim`] (the
/// ones below that mark were never taken in the period).
struct Pool {
    bufs: Vec<BytesMut>,
    low: usize,
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool {
            bufs: Vec::new(),
            low: 0,
        })
    };
}

/// A buffer for one read: the one given back last, else a new one. Empty, with
/// room for [`READ_CHUNK`] bytes from the start of its allocation.
pub fn take() -> BytesMut {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        let b = p.bufs.pop();
        p.low = p.low.min(p.bufs.len());
        b
    })
    .unwrap_or_else(|| BytesMut::with_capacity(READ_CHUNK))
}

/// Frees the buffers that stayed in this thread's pool through the whole period since
/// the last call (the oldest ones, at the bottom of the stack; `memory::every_period` calls it
/// once a second on every worker thread): what a burst of
/// connections left behind goes back to the allocator once the burst is over, so a
/// process returns to its idle memory (`ws-idle`: up to [`MAX_POOLED`] × 16 KiB stayed
/// otherwise). Under steady load the pool keeps what the period used. Returns how many
/// were freed.
pub fn trim() -> usize {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        let n = p.low.min(p.bufs.len());
        p.bufs.drain(..n);
        p.low = p.bufs.len();
        n
    })
}

/// Gives a buffer back: kept when it is empty and of the usual capacity (after moving
/// its position back to the start), while the pool holds fewer than [`MAX_POOLED`];
/// anything else is dropped.
pub fn give(mut buf: BytesMut) {
    if !buf.is_empty() {
        return;
    }
    rewind(&mut buf);
    if buf.capacity() != READ_CHUNK {
        return;
    }
    POOL.with(|p| {
        let mut pool = p.borrow_mut();
        if pool.bufs.len() < MAX_POOLED {
            pool.bufs.push(buf);
        }
    });
}

/// Gives `buf` back to the pool when it is empty, leaving an empty buffer without
/// allocation in its place; a buffer holding bytes stays.
pub fn release(buf: &mut BytesMut) {
    if buf.is_empty() && buf.capacity() != 0 {
        give(std::mem::take(buf));
    }
}

/// Makes room for one read in `buf`: a buffer without allocation takes one from the
/// pool; an empty one reads at the start of its allocation ([`rewind`]); one with
/// less than 4 KiB of room grows by [`READ_CHUNK`].
pub fn make_room(buf: &mut BytesMut) {
    if buf.capacity() == 0 {
        *buf = take();
        return;
    }
    rewind(buf);
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(READ_CHUNK);
    }
}

/// Moves an empty buffer's write position back to the start of its allocation.
///
/// Consuming a message (`advance`) moves a `BytesMut`'s start forward, and
/// reads only reclaim the front once less than 4 KiB is left: with 16 KiB
/// buffers, each `recv` of a small message wrote the next cache lines of a
/// buffer, lines last touched some 100 messages earlier and long evicted, so
/// every copy into user space started with cache misses (`ka64`: 99% of the
/// `recv` calls, strace). A rewound buffer takes each message into the same
/// first lines, which stay cached.
///
/// It never allocates: asking for one byte more than the room after the
/// current position can only be met by the consumed bytes before it, so an
/// empty buffer whose position is already at the start is left as it is.
pub fn rewind(buf: &mut BytesMut) {
    if buf.is_empty() {
        let _ = buf.try_reclaim(buf.capacity() + 1);
    }
}

/// Buffers waiting in this thread's pool.
pub fn pooled() -> usize {
    POOL.with(|p| p.borrow().bufs.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Buf;

    /// Each test runs on a thread of its own, so its pool starts empty.
    fn fresh() {
        assert_eq!(pooled(), 0);
    }

    #[test]
    fn the_buffer_given_back_last_is_taken_first() {
        fresh();
        let (a, b) = (take(), take());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        assert_ne!(pa, pb);
        give(a);
        give(b);
        assert_eq!(pooled(), 2);
        assert_eq!(take().as_ptr(), pb);
        assert_eq!(take().as_ptr(), pa);
        assert_eq!(pooled(), 0);
        // An empty pool allocates.
        let c = take();
        assert_eq!((c.len(), c.capacity()), (0, READ_CHUNK));
    }

    #[test]
    fn trim_frees_what_the_period_did_not_use() {
        fresh();
        let bufs: Vec<_> = (0..5).map(|_| take()).collect();
        let ptrs: Vec<_> = bufs.iter().map(|b| b.as_ptr()).collect();
        bufs.into_iter().for_each(give);
        // The period that filled the pool began with it empty: nothing to free yet.
        assert_eq!((trim(), pooled()), (0, 5));
        // Two taken and given back: the three below them were never used.
        let (a, b) = (take(), take());
        give(b);
        give(a);
        assert_eq!((trim(), pooled()), (3, 2));
        // The two kept are the hot ones, the last given back first.
        assert_eq!(take().as_ptr(), ptrs[4]);
        assert_eq!(take().as_ptr(), ptrs[3]);
        assert_eq!(pooled(), 0);
        // An idle period frees everything.
        give(BytesMut::with_capacity(READ_CHUNK));
        assert_eq!((trim(), pooled()), (0, 1));
        assert_eq!((trim(), pooled()), (1, 0));
    }

    #[test]
    fn a_used_buffer_comes_back_rewound() {
        fresh();
        let mut a = take();
        let start = a.as_ptr();
        a.extend_from_slice(&[b'x'; 300]);
        a.advance(300);
        assert_ne!(a.as_ptr(), start);
        give(a);
        let b = take();
        assert_eq!((b.as_ptr(), b.len(), b.capacity()), (start, 0, READ_CHUNK));
    }

    #[test]
    fn only_empty_buffers_of_the_usual_size_are_kept() {
        fresh();
        let mut holding = take();
        holding.extend_from_slice(b"GET / HTTP/1.1\r\n");
        give(holding);
        give(BytesMut::with_capacity(4 * READ_CHUNK));
        give(BytesMut::with_capacity(READ_CHUNK / 2));
        give(BytesMut::new());
        // A buffer split in two: neither half has the whole allocation.
        let mut whole = take();
        let front = whole.split_to(0);
        let mut back = whole.split_off(100);
        drop(front);
        back.clear();
        whole.clear();
        give(back);
        assert_eq!(pooled(), 0);
        // `release` leaves bytes with their connection and takes empty buffers.
        let mut kept = take();
        kept.extend_from_slice(b"next");
        release(&mut kept);
        assert_eq!((&kept[..], pooled()), (&b"next"[..], 0));
        kept.advance(4);
        release(&mut kept);
        assert_eq!((kept.capacity(), pooled()), (0, 1));
        release(&mut kept);
        assert_eq!(pooled(), 1);
    }

    #[test]
    fn the_pool_is_bounded() {
        fresh();
        let bufs: Vec<BytesMut> = (0..MAX_POOLED + 10).map(|_| take()).collect();
        for b in bufs {
            give(b);
        }
        assert_eq!(pooled(), MAX_POOLED);
    }

    #[test]
    fn make_room_takes_from_the_pool_only_without_allocation() {
        fresh();
        let pooled_buf = take();
        let p = pooled_buf.as_ptr();
        give(pooled_buf);
        let mut none = BytesMut::new();
        make_room(&mut none);
        assert_eq!(
            (none.as_ptr(), none.capacity(), pooled()),
            (p, READ_CHUNK, 0)
        );
        // A buffer with bytes keeps them and its allocation.
        let mut some = BytesMut::with_capacity(READ_CHUNK);
        some.extend_from_slice(b"abc");
        let q = some.as_ptr();
        make_room(&mut some);
        assert_eq!((&some[..], some.as_ptr()), (&b"abc"[..], q));
    }
}
