//! Waiting on a real runtime and a real agent: a condition polled until it
//! holds, within a limit.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// Polls `ok` every 50 ms until it holds.
///
/// # Panics
///
/// Not within `limit`: the message says `what` was awaited and, from
/// `state`, what there was instead.
pub async fn until<F, Fut>(what: &str, limit: Duration, mut ok: F, state: impl Fn() -> String)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let t0 = Instant::now();
    while !ok().await {
        assert!(
            t0.elapsed() < limit,
            "not within {limit:?}: {what}\n{}",
            state()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
