//! # librcim_client
//!
//! A C library with the ABI of RongCloud's native IM SDK (`rcim_client.h`, the
//! header of RC's Rust core): the same function names and argument order, struct
//! layouts, enum values and callback typedefs, for the calls rcim supports. An app
//! written in C, C++, Python (ctypes) or Node against RC's header links this
//! library instead of RC's and then shares the user's one connection, held by
//! `rcimd`, with every other app of the user.
//!
//! It is a thin layer over [`rcim_client::Engine`]: the C calls check their
//! arguments, translate RC's native numbers to rcim's and back ([`codes`], one
//! table), and turn callbacks into calls of C function pointers. Nothing of the
//! connection, the database or the protocol is reimplemented here.
//!
//! The rules C code can rely on:
//! - **Ownership** (RC's): what C allocates, C frees (`rcim_malloc_*` /
//!   `rcim_free_*`); what the library passes to a callback is valid only during
//!   that callback; strings C passes in are copied before the call returns.
//! - **Threads**: callbacks and listeners run on threads the library owns
//!   (`rcim-callbacks` and `rcim-ffi-calls`), never on the calling thread, one at a
//!   time per engine, and never under a lock a call into the library takes: a
//!   callback may call the library again, `rcim_engine_connect` and
//!   `rcim_destroy_engine` included. A callback must not block waiting for another
//!   callback of the same engine.
//! - **Lifetime**: when `rcim_destroy_engine` returns, no callback of that engine is
//!   running or will run, so the `context` may be freed.
//! - **Bad input**: NULL, non-UTF-8 strings, out-of-range enums and handles that are
//!   not live (destroyed, double-destroyed, never made) are refused with RC's
//!   invalid-argument codes (34xxx); no call dereferences a handle, and no panic
//!   crosses into C.
//!
//! `include/rcim_client.h` is generated from this crate by cbindgen
//! (`cbindgen.toml`); `tests/header.rs` fails when it is stale.

pub mod boundary;
pub mod boxes;
pub mod builder;
pub mod codes;
pub mod engine;
pub mod types;
