//! netwatch: tells the link when the network changed or the machine woke up.
//!
//! RC's SDK restarts its reconnect schedule from the first step on both, and users
//! of similar daemons complain about minutes of silence after switching networks or
//! opening a laptop lid. Two watchers feed [`LinkHandle::nudge`]:
//!
//! - **network changes** (Linux): a netlink socket subscribed to link, address and
//!   route events; a burst of events becomes one nudge after a short quiet period.
//!   Where netlink is unavailable (a sandbox), this watcher is skipped with a log line.
//! - **resume from sleep**: the monotonic clock stops during suspend while the boot
//!   clock (Linux) or the wall clock (elsewhere) keeps going, so a jump in their
//!   difference between two ticks means the machine slept.

use crate::link::{LinkHandle, Nudge};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the clocks are compared.
const CLOCK_TICK: Duration = Duration::from_secs(2);

/// A jump in the clock difference larger than this counts as a resume.
const RESUME_JUMP: Duration = Duration::from_secs(1);

/// Quiet time after a network event before the nudge, so a burst is one nudge.
#[cfg(target_os = "linux")]
const NETWORK_SETTLE: Duration = Duration::from_millis(300);

/// Starts both watchers; they stop with `shutdown`.
pub fn spawn(link: LinkHandle, shutdown: CancellationToken) {
    tokio::spawn(watch_clocks(link.clone(), shutdown.clone()));
    #[cfg(target_os = "linux")]
    tokio::spawn(watch_network(link, shutdown));
}

/// Whether the difference between the two clocks moved by more than `RESUME_JUMP`.
pub fn resumed(previous_offset: Duration, offset: Duration) -> bool {
    offset.saturating_sub(previous_offset) > RESUME_JUMP
}

/// The difference between a clock that keeps running during suspend and the
/// monotonic clock (which does not).
fn clock_offset() -> Duration {
    #[cfg(target_os = "linux")]
    {
        use rustix::time::{ClockId, clock_gettime};
        let to_duration = |t: rustix::time::Timespec| {
            Duration::new(
                u64::try_from(t.tv_sec).unwrap_or(0),
                u32::try_from(t.tv_nsec).unwrap_or(0),
            )
        };
        let boot = to_duration(clock_gettime(ClockId::Boottime));
        let mono = to_duration(clock_gettime(ClockId::Monotonic));
        boot.saturating_sub(mono)
    }
    #[cfg(not(target_os = "linux"))]
    {
        use std::sync::OnceLock;
        use std::time::{Instant, SystemTime};
        static START: OnceLock<(Instant, SystemTime)> = OnceLock::new();
        let (mono_start, wall_start) = *START.get_or_init(|| (Instant::now(), SystemTime::now()));
        let wall = SystemTime::now()
            .duration_since(wall_start)
            .unwrap_or_default();
        wall.saturating_sub(mono_start.elapsed())
    }
}

async fn watch_clocks(link: LinkHandle, shutdown: CancellationToken) {
    let mut previous = clock_offset();
    let mut tick = tokio::time::interval(CLOCK_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let offset = clock_offset();
        if resumed(previous, offset) {
            tracing::info!(
                "the machine resumed from sleep (slept about {:?})",
                offset.saturating_sub(previous)
            );
            link.nudge(Nudge::Resumed);
        }
        previous = offset;
    }
}

#[cfg(target_os = "linux")]
async fn watch_network(link: LinkHandle, shutdown: CancellationToken) {
    use futures_util::StreamExt;
    use rtnetlink::MulticastGroup;
    use rtnetlink::packet_core::NetlinkPayload;
    use rtnetlink::packet_route::RouteNetlinkMessage as M;

    let groups = [
        MulticastGroup::Link,
        MulticastGroup::Ipv4Ifaddr,
        MulticastGroup::Ipv6Ifaddr,
        MulticastGroup::Ipv4Route,
        MulticastGroup::Ipv6Route,
    ];
    let (connection, _handle, mut messages) = match rtnetlink::new_multicast_connection(&groups) {
        Ok(parts) => parts,
        Err(e) => {
            tracing::warn!(
                "network changes will not be noticed (netlink unavailable: {e}); reconnects follow the normal schedule"
            );
            return;
        }
    };
    let driver = tokio::spawn(connection);
    let mut pending = false;
    loop {
        let settle = async {
            if pending {
                tokio::time::sleep(NETWORK_SETTLE).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = settle => {
                pending = false;
                tracing::info!("the network changed");
                link.nudge(Nudge::NetworkChanged);
            }
            message = messages.next() => match message {
                Some((message, _)) => {
                    if let NetlinkPayload::InnerMessage(
                        M::NewLink(_) | M::DelLink(_) | M::NewAddress(_) | M::DelAddress(_)
                        | M::NewRoute(_) | M::DelRoute(_),
                    ) = message.payload
                    {
                        pending = true;
                    }
                }
                None => {
                    tracing::warn!("the netlink event stream ended; network changes will not be noticed");
                    break;
                }
            },
        }
    }
    driver.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jump_in_the_offset_is_a_resume() {
        let s = Duration::from_secs;
        assert!(!resumed(s(0), s(0)));
        assert!(!resumed(s(5), s(5) + Duration::from_millis(900)));
        assert!(resumed(s(5), s(7)));
        assert!(resumed(s(0), s(3600)));
        // The offset never shrinks in practice; if it does, it is not a resume.
        assert!(!resumed(s(10), s(2)));
    }

    #[test]
    fn the_clock_offset_is_stable_while_awake() {
        let a = clock_offset();
        std::thread::sleep(Duration::from_millis(20));
        let b = clock_offset();
        assert!(!resumed(a, b), "{a:?} -> {b:?}");
    }
}
