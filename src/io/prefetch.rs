//! Reading ahead: a thread produces the next items (decoding, resizing a frame) while the
//! caller works on the current one — the single-threaded stretches between the networks leave
//! a core idle that decoding can use.

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

#[cfg(test)]
mod tests {
    use super::*;

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
