//! The hub: owns the set of attached clients and fans events out to them.
//!
//! Each event is encoded once and offered to every client's bounded outbound queue
//! with `try_send`: a client that does not read fills its own queue and is marked
//! lagged; it never blocks the link or the other clients. (Replay from the store
//! for lagged clients comes with the IPC-hub issue.)

use bytes::Bytes;
use rcim_proto::frame::{MAX_IPC_FRAME, encode};
use rcim_proto::ipc::{DaemonFrame, Event};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

/// Who a client is, for logs and status.
#[derive(Clone, Debug)]
pub struct ClientInfo {
    /// Session number, unique for the daemon's life.
    pub id: u64,
    /// The name the client gave in its Hello.
    pub name: String,
    /// Its process id, when the OS tells.
    pub pid: Option<i64>,
}

impl std::fmt::Display for ClientInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "client #{} '{}' (pid {pid})", self.id, self.name),
            None => write!(f, "client #{} '{}'", self.id, self.name),
        }
    }
}

enum Command {
    Attach {
        info: ClientInfo,
        outbound: mpsc::Sender<Bytes>,
    },
    Detach {
        id: u64,
    },
    Publish(Event),
}

/// A cloneable handle to the hub actor.
#[derive(Clone, Debug)]
pub struct HubHandle {
    commands: mpsc::UnboundedSender<Command>,
    attached: Arc<AtomicU32>,
}

impl HubHandle {
    /// Adds a client; events are offered to `outbound` from now on.
    pub fn attach(&self, info: ClientInfo, outbound: mpsc::Sender<Bytes>) {
        self.attached.fetch_add(1, Ordering::Relaxed);
        let _ = self.commands.send(Command::Attach { info, outbound });
    }

    /// Removes a client.
    pub fn detach(&self, id: u64) {
        self.attached.fetch_sub(1, Ordering::Relaxed);
        let _ = self.commands.send(Command::Detach { id });
    }

    /// Sends `event` to every attached client.
    pub fn publish(&self, event: Event) {
        let _ = self.commands.send(Command::Publish(event));
    }

    /// Clients attached now.
    pub fn clients(&self) -> u32 {
        self.attached.load(Ordering::Relaxed)
    }
}

struct Slot {
    info: ClientInfo,
    outbound: mpsc::Sender<Bytes>,
    lagged: bool,
}

/// Starts the hub. It stops when every handle is gone.
pub fn spawn() -> (HubHandle, tokio::task::JoinHandle<()>) {
    let (commands, mut inbox) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut clients: HashMap<u64, Slot> = HashMap::new();
        while let Some(command) = inbox.recv().await {
            match command {
                Command::Attach { info, outbound } => {
                    clients.insert(
                        info.id,
                        Slot {
                            info,
                            outbound,
                            lagged: false,
                        },
                    );
                }
                Command::Detach { id } => {
                    clients.remove(&id);
                }
                Command::Publish(event) => fan_out(&mut clients, event),
            }
        }
    });
    (
        HubHandle {
            commands,
            attached: Arc::default(),
        },
        task,
    )
}

fn fan_out(clients: &mut HashMap<u64, Slot>, event: Event) {
    let bytes = match encode(&DaemonFrame::Event(event), MAX_IPC_FRAME) {
        Ok(bytes) => Bytes::from(bytes),
        Err(e) => {
            tracing::error!("cannot encode an event: {e}");
            return;
        }
    };
    clients.retain(|_, slot| match slot.outbound.try_send(bytes.clone()) {
        Ok(()) => {
            if slot.lagged {
                tracing::info!("{} is reading again", slot.info);
                slot.lagged = false;
            }
            true
        }
        Err(TrySendError::Full(_)) => {
            if !slot.lagged {
                tracing::warn!(
                    "{} is not reading: its queue is full, events are dropped for it",
                    slot.info
                );
                slot.lagged = true;
            }
            true
        }
        Err(TrySendError::Closed(_)) => false,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcim_proto::frame::FrameReader;
    use rcim_proto::status::LinkState;

    fn info(id: u64) -> ClientInfo {
        ClientInfo {
            id,
            name: format!("c{id}"),
            pid: None,
        }
    }

    #[tokio::test]
    async fn a_full_client_does_not_stop_the_others() {
        let (hub, _task) = spawn();
        let (slow_tx, mut slow_rx) = mpsc::channel(1);
        let (fast_tx, mut fast_rx) = mpsc::channel(100);
        hub.attach(info(1), slow_tx);
        hub.attach(info(2), fast_tx);
        assert_eq!(hub.clients(), 2);
        for _ in 0..10 {
            hub.publish(Event::StatusChanged(LinkState::idle()));
        }
        for _ in 0..10 {
            let bytes = fast_rx.recv().await.unwrap();
            let mut reader = FrameReader::new(&bytes[..], MAX_IPC_FRAME);
            let frame: DaemonFrame = reader.read().await.unwrap().unwrap();
            assert_eq!(
                frame,
                DaemonFrame::Event(Event::StatusChanged(LinkState::idle()))
            );
        }
        assert!(slow_rx.recv().await.is_some());
        assert!(
            slow_rx.try_recv().is_err(),
            "the slow client got only what fit"
        );
        hub.detach(1);
        assert_eq!(hub.clients(), 1);
    }
}
