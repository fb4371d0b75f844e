//! The handshakes, at the decode level: the first frame an app sends (`Hello`,
//! judged as the daemon judges it), the daemon's answers (`Welcome`, `Refused`),
//! the upstream `Connect` / `ConnAck`, and a token's readable claims
//! (`TokenClaims::peek`, which the daemon runs on whatever token an app hands it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rcim_fuzz::decode_one;
use rcim_proto::PROTOCOL_VERSION;
use rcim_proto::frame::{MAX_IPC_FRAME, MAX_UPSTREAM_FRAME};
use rcim_proto::ipc::{ClientFrame, Hello, Refused, Welcome};
use rcim_proto::token::{Token, TokenClaims};
use rcim_proto::upstream::{ConnAck, Connect};

fuzz_target!(|data: &[u8]| {
    // The daemon's first read: a Hello with our version gets a Welcome, another
    // version a Refused, anything else closes the connection.
    if let Some(ClientFrame::Hello(hello)) = decode_one::<ClientFrame>(data, MAX_IPC_FRAME) {
        let _welcome = hello.protocol == PROTOCOL_VERSION;
        let _ = format!("{:?}", hello.client_name);
    }
    decode_one::<Hello>(data, MAX_IPC_FRAME);
    decode_one::<Welcome>(data, MAX_IPC_FRAME);
    decode_one::<Refused>(data, MAX_IPC_FRAME);
    decode_one::<Connect>(data, MAX_UPSTREAM_FRAME);
    decode_one::<ConnAck>(data, MAX_UPSTREAM_FRAME);

    // Token text from an app: the argument check, then the claims.
    let text = String::from_utf8_lossy(data);
    let token = Token::new(text.as_ref());
    let _ = token.check_argument();
    if let Ok(claims) = TokenClaims::peek(&text) {
        // Whatever peeks must describe itself again.
        let again = format!("{}.sig", claims.encode_payload());
        assert_eq!(TokenClaims::peek(&again), Ok(claims));
    }
    // The Debug form of a token never shows its text: only its length. (A first
    // version checked that the text did not occur in the Debug form, and the fuzzer
    // answered with the token "<redacted, 21 bytes>)": compare the whole form.)
    assert_eq!(
        format!("{token:?}"),
        format!("Token(<redacted, {} bytes>)", text.len()),
        "Debug must show only the length"
    );
});
