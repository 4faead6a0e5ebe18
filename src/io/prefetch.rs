//! Reading ahead and writing behind: a thread produces the next items (decoding, resizing a
//! frame) or finishes the last ones (encoding and writing masks) while the caller works on the
//! current one — the single-threaded stretches between the networks, and frames that reuse,
//! leave a core idle that this work can use.

use crate::error::{Error, Result};
use std::sync::mpsc::sync_channel;
use std::thread::Scope;

/// `items`, produced on a thread of `scope` ahead of the consumer, in order: up to `depth`
/// wait in the channel while the producer works on one more. Dropping the returned iterator
/// stops the producer at its next item.
pub fn ahead<'scope, T: Send + 'scope>(
    scope: &'scope Scope<'scope, '_>,
    items: impl Iterator<Item = T> + Send + 'scope,
    depth: usize,
) -> impl Iterator<Item = T> + 'scope {
    let (tx, rx) = sync_channel(depth.max(1));
    scope.spawn(move || {
        for item in items {
            if tx.send(item).is_err() {
                break;
            }
        }
    });
    rx.into_iter()
}

/// How many finished frames may wait for the writer behind the tracker.
pub const WRITE_BEHIND: usize = 2;

/// Runs `body` with a `push` that hands items to `work` on a thread behind it, in order, up to
/// `depth` waiting. The first error of `work` stops it: `push` then fails, and that error is
/// what `behind` returns (before `body`'s own). Returns once every pushed item is handled.
pub fn behind<T: Send, R>(
    depth: usize,
    mut work: impl FnMut(T) -> Result<()> + Send,
    body: impl FnOnce(&mut dyn FnMut(T) -> Result<()>) -> Result<R>,
) -> Result<R> {
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<T>(depth.max(1));
        let worker = scope.spawn(move || -> Result<()> {
            for item in rx {
                work(item)?;
            }
            Ok(())
        });
        let mut push = |item: T| {
            tx.send(item)
                .map_err(|_| Error::Invalid("the writer stopped".into()))
        };
        let result = body(&mut push);
        drop(tx);
        let written = worker
            .join()
            .unwrap_or_else(|_| Err(Error::Invalid("the writer thread panicked".into())));
        written.and(result)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_handled_behind_in_order_and_the_first_error_is_returned() {
        let mut seen = Vec::new();
        let out = behind(
            2,
            |i: u32| {
                seen.push(i);
                Ok(())
            },
            |push| {
                (0..50).try_for_each(&mut *push)?;
                Ok(7)
            },
        );
        assert_eq!(out.unwrap(), 7);
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
        let failed: Result<()> = behind(
            1,
            |i: u32| match i {
                3 => Err(Error::Invalid("disk full".into())),
                _ => Ok(()),
            },
            |push| (0..1000).try_for_each(&mut *push),
        );
        assert!(failed.unwrap_err().to_string().contains("disk full"));
    }

    #[test]
    fn items_arrive_in_order_and_an_early_stop_ends_the_producer() {
        std::thread::scope(|s| {
            let all: Vec<u32> = ahead(s, 0..100u32, 2).collect();
            assert_eq!(all, (0..100).collect::<Vec<_>>());
            // An endless producer: the scope only returns if dropping the consumer stops it.
            let first: Vec<u64> = ahead(s, 0u64.., 3).take(5).collect();
            assert_eq!(first, vec![0, 1, 2, 3, 4]);
        });
    }
}
