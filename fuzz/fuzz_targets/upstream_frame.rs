//! The upstream decoder, both directions: arbitrary bytes read as a stream of
//! `ClientMsg`s (what the server reads from rcimd) and of `ServerMsg`s (what rcimd
//! reads from the server), and as one bare body of each.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rcim_fuzz::{decode_one, read_all};
use rcim_proto::frame::MAX_UPSTREAM_FRAME;
use rcim_proto::upstream::{ClientMsg, ServerMsg};

fuzz_target!(|data: &[u8]| {
    read_all::<ClientMsg>(data, MAX_UPSTREAM_FRAME);
    read_all::<ServerMsg>(data, MAX_UPSTREAM_FRAME);
    decode_one::<ClientMsg>(data, MAX_UPSTREAM_FRAME);
    decode_one::<ServerMsg>(data, MAX_UPSTREAM_FRAME);
});
