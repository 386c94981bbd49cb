//! systemd's notify protocol (`Type=notify`): `READY=1` once podlogd
//! serves, `STATUS=` lines on what it serves, `WATCHDOG=1` while its parts
//! answer (`WatchdogSec=`), `RELOADING=1` then `READY=1` around a reload,
//! `STOPPING=1` at shutdown.
//!
//! The messages and the watchdog's settings are the `sd-notify` crate's;
//! the sending is too, except to an abstract socket (`NOTIFY_SOCKET=@…`,
//! as systemd may pass), which that crate treats as a file name: that one
//! datagram is sent here.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use sd_notify::NotifyState;

/// Sends `states` to the service manager, if podlogd runs under one; a
/// failure is logged, never fatal.
pub fn send(states: &[NotifyState<'_>]) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let r = match socket.as_encoded_bytes().strip_prefix(b"@") {
        Some(name) => send_abstract(name, states),
        None => sd_notify::notify(states),
    };
    if let Err(e) = r {
        tracing::debug!(error = %e, "cannot notify the service manager");
    }
}

/// `RELOADING=1` with the monotonic time, as the protocol asks; `READY=1`
/// follows once the reload is done, whatever its outcome.
pub fn reloading() {
    let mut states = vec![NotifyState::Reloading];
    states.extend(NotifyState::monotonic_usec_now().ok());
    send(&states);
}

fn send_abstract(name: &[u8], states: &[NotifyState<'_>]) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt as _;
    let msg: String = states.iter().map(|s| format!("{s}\n")).collect();
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    let sock = std::os::unix::net::UnixDatagram::unbound()?;
    sock.send_to_addr(msg.as_bytes(), &addr)?;
    Ok(())
}

/// When the lifecycle manager's loop last went round (Unix seconds; 0:
/// not running).
#[derive(Debug, Default)]
pub struct Beat(AtomicI64);

impl Beat {
    pub(crate) fn now(&self) {
        self.0
            .store(crate::cri::now_nanos() / 1_000_000_000, Ordering::Relaxed);
    }

    /// Seconds since the last beat; `None` before the first.
    pub(crate) fn age(&self) -> Option<i64> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            t => Some(crate::cri::now_nanos() / 1_000_000_000 - t),
        }
    }
}

/// What proves podlogd alive, checked before each `WATCHDOG=1`.
pub(crate) struct Liveness {
    /// The node runtime (discovery, the CRI client, the lifecycle loop).
    pub(crate) node: tokio::runtime::Handle,
    /// The lifecycle manager's loop, when it runs, and how long it may go
    /// without a round.
    pub(crate) lifecycle: Option<(Arc<Beat>, Duration)>,
}

impl Liveness {
    /// Why podlogd is not alive, if it is not: a part that did not answer
    /// within `within`.
    pub(crate) async fn check(&self, within: Duration) -> Result<(), String> {
        let answered = tokio::time::timeout(within, self.node.spawn(async {})).await;
        if !matches!(answered, Ok(Ok(()))) {
            return Err(format!("the node runtime did not answer within {within:?}"));
        }
        if let Some((beat, most)) = &self.lifecycle {
            if let Some(age) = beat.age() {
                if age > most.as_secs() as i64 {
                    return Err(format!("the lifecycle loop went {age} s without a round"));
                }
            }
        }
        Ok(())
    }
}

/// Sends `STATUS=` (from `status`) every 10 s and, when systemd asks for a
/// watchdog, `WATCHDOG=1` every half of its interval while `live` holds;
/// a part that stops answering stops the pings, and systemd restarts
/// podlogd.
pub(crate) async fn run(
    live: Liveness,
    status: impl Fn() -> String,
    cancel: tokio_util::sync::CancellationToken,
) {
    let watchdog = sd_notify::watchdog_enabled();
    let every = watchdog.map_or(STATUS_EVERY, |w| (w / 2).min(STATUS_EVERY));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_status = String::new();
    let mut last_error = None;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let s = status();
        if s != last_status {
            send(&[NotifyState::Status(&s)]);
            last_status = s;
        }
        if watchdog.is_none() {
            continue;
        }
        match live.check(every).await {
            Ok(()) => {
                last_error = None;
                send(&[NotifyState::Watchdog]);
            }
            Err(e) => {
                if last_error.as_ref() != Some(&e) {
                    tracing::error!(error = %e, "not alive: the watchdog is not fed; systemd restarts podlogd after WatchdogSec");
                }
                last_error = Some(e);
            }
        }
    }
}

/// How often `STATUS=` is brought up to date.
const STATUS_EVERY: Duration = Duration::from_secs(10);
