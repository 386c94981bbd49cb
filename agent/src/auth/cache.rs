//! A bounded cache of the API server's answers.
//!
//! Each answer is kept for a TTL chosen by its value (an allowed decision
//! longer than a denied one); failures are not kept. Identical questions
//! asked while the first is on its way wait for its answer (one review,
//! whatever the number of requests). At most `max` entries: when full,
//! expired answers go first, then the one that expires soonest
//! (`podlog_auth_cache_total{result="evicted"}`).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt as _, Shared};
use tokio::time::Instant;

use crate::telemetry;

type Fetch<V> = Shared<BoxFuture<'static, Result<V, String>>>;

enum Entry<V> {
    Ready {
        value: V,
        expires: Instant,
    },
    /// Asked, not answered yet: later askers wait on the same future.
    Pending(Fetch<V>),
}

/// Answers by question, at most `max` of them.
pub(crate) struct Cache<K, V> {
    name: &'static str,
    max: usize,
    entries: Mutex<HashMap<K, Entry<V>>>,
}

impl<K, V> Cache<K, V>
where
    K: Hash + Eq + Clone,
    V: Clone + Send + Sync + 'static,
{
    pub(crate) fn new(name: &'static str, max: usize) -> Self {
        Self {
            name,
            max: max.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Entry<V>>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The answer to `key`: cached, being fetched (then awaited), or
    /// fetched now with `fetch` and kept for `ttl(&answer)`.
    ///
    /// # Errors
    ///
    /// The fetch failed (not cached: the next asker tries again).
    pub(crate) async fn get_or_fetch(
        &self,
        key: K,
        fetch: impl FnOnce() -> BoxFuture<'static, Result<V, String>>,
        ttl: impl Fn(&V) -> Duration,
    ) -> Result<V, String> {
        let pending = {
            let mut map = self.lock();
            let now = Instant::now();
            match map.get(&key) {
                Some(Entry::Ready { value, expires }) if *expires > now => {
                    telemetry::auth_cache(self.name, "hit");
                    return Ok(value.clone());
                }
                Some(Entry::Pending(f)) => {
                    telemetry::auth_cache(self.name, "joined");
                    f.clone()
                }
                _ => {
                    telemetry::auth_cache(self.name, "miss");
                    let f = fetch().shared();
                    if map.contains_key(&key) || self.make_room(&mut map, now) {
                        map.insert(key.clone(), Entry::Pending(f.clone()));
                    }
                    f
                }
            }
        };
        let answer = pending.clone().await;
        let mut map = self.lock();
        // The first to see the answer files it, if the entry is still ours.
        if matches!(map.get(&key), Some(Entry::Pending(f)) if f.ptr_eq(&pending)) {
            match &answer {
                Ok(v) => {
                    let expires = Instant::now() + ttl(v);
                    map.insert(
                        key,
                        Entry::Ready {
                            value: v.clone(),
                            expires,
                        },
                    );
                }
                Err(_) => {
                    map.remove(&key);
                }
            }
        }
        answer
    }

    /// Makes room for one more entry; false when every entry is pending
    /// (the answer is then not kept).
    fn make_room(&self, map: &mut HashMap<K, Entry<V>>, now: Instant) -> bool {
        if map.len() < self.max {
            return true;
        }
        map.retain(|_, e| !matches!(e, Entry::Ready { expires, .. } if *expires <= now));
        if map.len() < self.max {
            return true;
        }
        let soonest = map
            .iter()
            .filter_map(|(k, e)| match e {
                Entry::Ready { expires, .. } => Some((*expires, k)),
                Entry::Pending(_) => None,
            })
            .min_by_key(|(t, _)| *t)
            .map(|(_, k)| k.clone());
        match soonest {
            Some(k) => {
                map.remove(&k);
                telemetry::auth_cache(self.name, "evicted");
                true
            }
            None => false,
        }
    }

    /// Entries held now (answers and questions on their way).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn counting(
        calls: &Arc<AtomicUsize>,
        answer: Result<u32, String>,
    ) -> impl FnOnce() -> BoxFuture<'static, Result<u32, String>> {
        let calls = calls.clone();
        move || {
            Box::pin(async move {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
                answer
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn answers_are_kept_for_their_ttl_and_failures_not_at_all() {
        let c = Cache::new("t", 8);
        let calls = Arc::new(AtomicUsize::new(0));
        let ttl = |v: &u32| Duration::from_secs(u64::from(*v));
        for _ in 0..3 {
            assert_eq!(
                c.get_or_fetch(1, counting(&calls, Ok(10)), ttl).await,
                Ok(10)
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(c.get_or_fetch(1, counting(&calls, Ok(5)), ttl).await, Ok(5));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // A failure is returned, not kept.
        let e = c
            .get_or_fetch(2, counting(&calls, Err("down".into())), ttl)
            .await;
        assert_eq!(e, Err("down".into()));
        assert_eq!(c.get_or_fetch(2, counting(&calls, Ok(1)), ttl).await, Ok(1));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn identical_questions_asked_together_make_one_fetch() {
        use std::future::Future as _;
        let c = Cache::new("t", 8);
        let calls = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Notify::new());
        let askers = (0..20).map(|_| {
            let (calls, gate) = (calls.clone(), gate.clone());
            c.get_or_fetch(
                7,
                move || {
                    Box::pin(async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        gate.notified().await;
                        Ok(42u32)
                    })
                },
                |_| Duration::from_secs(60),
            )
        });
        let mut all = Box::pin(futures_util::future::join_all(askers));
        // One poll reaches every asker: the first fetches, the others join
        // it; nothing is answered yet.
        let first = std::future::poll_fn(|cx| std::task::Poll::Ready(all.as_mut().poll(cx))).await;
        assert!(first.is_pending());
        gate.notify_one();
        assert!(all.await.into_iter().all(|r| r == Ok(42)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_cache_holds_at_most_its_bound() {
        let c = Cache::new("t", 4);
        let calls = Arc::new(AtomicUsize::new(0));
        for k in 0..100u32 {
            let ttl = move |_: &u32| Duration::from_secs(u64::from(k) + 1);
            c.get_or_fetch(k, counting(&calls, Ok(k)), ttl)
                .await
                .unwrap();
            assert!(c.len() <= 4);
        }
        // The latest answers are kept (the soonest to expire went first).
        let before = calls.load(Ordering::SeqCst);
        c.get_or_fetch(99, counting(&calls, Ok(0)), |_| Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), before);
    }
}
