//! The local IPC decoder: arbitrary bytes read as a stream of `ClientFrame`s (what
//! the daemon reads from an app) and of `DaemonFrame`s (what an app reads from the
//! daemon), and as one bare body of each.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rcim_fuzz::{decode_one, read_all};
use rcim_proto::frame::MAX_IPC_FRAME;
use rcim_proto::ipc::{ClientFrame, DaemonFrame};

fuzz_target!(|data: &[u8]| {
    read_all::<ClientFrame>(data, MAX_IPC_FRAME);
    read_all::<DaemonFrame>(data, MAX_IPC_FRAME);
    decode_one::<ClientFrame>(data, MAX_IPC_FRAME);
    decode_one::<DaemonFrame>(data, MAX_IPC_FRAME);
});
