//! The engine builder calls: `rcim_create_engine_builder`, its setters, and
//! `rcim_engine_builder_build`.
//!
//! For a daemon client most builder settings have no meaning: rcimd owns the
//! server address (navi server), the data centre (area code), the statistics
//! server, where the database lives (store path), whether it is encrypted, and
//! where files go. The setters still check their arguments as RC's do (NULL,
//! UTF-8, enum range) so that a bad call fails the same way, then drop the value.
//! What rcim uses: the app key (required) and the package name, which names this
//! client in rcimd's logs and `rcimctl status`.

use crate::boundary::{Registry, guard, optional_str, required_str};
use crate::engine::{ENGINES, EngineEntry};
use crate::types::{
    CEnum, RcimAreaCode, RcimAreaCodeIn, RcimEngineBuilder, RcimEngineBuilderParam,
    RcimEngineError, RcimEngineSync,
};
use std::ffi::c_char;
use std::sync::{Mutex, PoisonError};

/// What a builder has collected.
pub(crate) struct BuilderState {
    app_key: String,
    client_name: String,
}

pub(crate) static BUILDERS: Registry<Mutex<BuilderState>> = Registry::new();

/// Makes a builder from `builder_param` (C keeps ownership of it and its strings;
/// they are copied). `*out_builder` receives the builder, which C must pass to
/// `rcim_engine_builder_build` or `rcim_destroy_engine_builder`.
///
/// Returns 34415 for a NULL `builder_param` or `out_builder`, 34105 for a NULL or
/// non-UTF-8 `app_key`, 34404 for a non-UTF-8 `package_name`.
///
/// # Safety
/// `builder_param` is NULL or points at a valid `RcimEngineBuilderParam` whose
/// strings are NULL or NUL-terminated; `out_builder` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_create_engine_builder(
    builder_param: *mut RcimEngineBuilderParam,
    out_builder: *mut *mut RcimEngineBuilder,
) -> RcimEngineError {
    guard(RcimEngineError::EngineDropped, || {
        if builder_param.is_null() || out_builder.is_null() {
            return RcimEngineError::InvalidArgumentEngineBuilderParam;
        }
        // SAFETY: non-NULL and, by the caller's promise, a valid param struct; only
        // the two pointer fields are read, never the bools or enums as Rust types.
        let (app_key, package_name) = unsafe {
            (
                std::ptr::addr_of!((*builder_param).app_key).read(),
                std::ptr::addr_of!((*builder_param).package_name).read(),
            )
        };
        // SAFETY: the caller promises NUL-terminated strings valid for the call.
        let Ok(app_key) = (unsafe { required_str(app_key) }) else {
            return RcimEngineError::InvalidArgumentAppKey;
        };
        // SAFETY: as above.
        let Ok(package_name) = (unsafe { optional_str(package_name) }) else {
            return RcimEngineError::InvalidArgumentPackageName;
        };
        let state = BuilderState {
            app_key: app_key.to_owned(),
            client_name: package_name
                .filter(|n| !n.is_empty())
                .unwrap_or("librcim_client")
                .to_owned(),
        };
        let handle = BUILDERS.insert(Mutex::new(state));
        // SAFETY: out_builder is non-NULL and writable by the caller's promise.
        unsafe { out_builder.write(handle) };
        RcimEngineError::Success
    })
}

/// Destroys a builder that was not built. 34402 when `builder` is not a live
/// builder (NULL, destroyed or built already, or never made).
///
/// # Safety
/// None beyond passing any pointer value: handles are checked, never dereferenced.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_destroy_engine_builder(
    builder: *mut RcimEngineBuilder,
) -> RcimEngineError {
    guard(RcimEngineError::EngineDropped, || {
        match BUILDERS.remove(builder) {
            Some(_) => RcimEngineError::Success,
            None => RcimEngineError::InvalidArgumentEngineBuilder,
        }
    })
}

/// Runs `check` on a live builder; 34402 when it is not one.
fn with_builder(
    builder: *mut RcimEngineBuilder,
    check: impl FnOnce(&mut BuilderState) -> RcimEngineError,
) -> RcimEngineError {
    guard(RcimEngineError::EngineDropped, || {
        match BUILDERS.get(builder) {
            Some(state) => check(&mut state.lock().unwrap_or_else(PoisonError::into_inner)),
            None => RcimEngineError::InvalidArgumentEngineBuilder,
        }
    })
}

/// A string setter whose value rcim does not use: checks it (NULL or not UTF-8 is
/// `invalid`) and drops it.
///
/// # Safety
/// `value` is NULL or NUL-terminated and valid for the call.
unsafe fn checked_unused(
    builder: *mut RcimEngineBuilder,
    value: *const c_char,
    invalid: RcimEngineError,
) -> RcimEngineError {
    // SAFETY: the caller's promise, passed on.
    let valid = unsafe { required_str(value) }.is_ok();
    with_builder(builder, |_| {
        if valid {
            RcimEngineError::Success
        } else {
            invalid
        }
    })
}

/// Accepted and unused: rcimd keeps the database in its own data dir. 34406 for a
/// NULL or non-UTF-8 `path`.
///
/// # Safety
/// `path` is NULL or NUL-terminated and valid for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_engine_builder_set_store_path(
    builder: *mut RcimEngineBuilder,
    path: *const c_char,
) -> RcimEngineError {
    // SAFETY: the caller's promise, passed on.
    unsafe {
        checked_unused(
            builder,
            path,
            RcimEngineError::InvalidArgumentFileStoragePath,
        )
    }
}

/// Accepted and unused: rcim downloads no media files. 34406 for a NULL or
/// non-UTF-8 `path`.
///
/// # Safety
/// `path` is NULL or NUL-terminated and valid for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_engine_builder_set_file_path(
    builder: *mut RcimEngineBuilder,
    path: *const c_char,
) -> RcimEngineError {
    // SAFETY: the caller's promise, passed on.
    unsafe {
        checked_unused(
            builder,
            path,
            RcimEngineError::InvalidArgumentFileStoragePath,
        )
    }
}

/// Accepted and unused: rcimd's configuration names the server. 34286 for a NULL
/// list, a negative length, or a NULL or non-UTF-8 entry.
///
/// # Safety
/// `navi_url_vec` is NULL or points at `navi_url_vec_len` string pointers, each
/// NULL or NUL-terminated, all valid for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_engine_builder_set_navi_server(
    builder: *mut RcimEngineBuilder,
    navi_url_vec: *const *const c_char,
    navi_url_vec_len: i32,
) -> RcimEngineError {
    let valid = guard(false, || {
        let Ok(len) = usize::try_from(navi_url_vec_len) else {
            return false;
        };
        if navi_url_vec.is_null() {
            return false;
        }
        (0..len).all(|i| {
            // SAFETY: the caller promises len readable entries.
            let url = unsafe { navi_url_vec.add(i).read() };
            // SAFETY: each entry NULL or NUL-terminated, valid for the call.
            unsafe { required_str(url) }.is_ok()
        })
    });
    with_builder(builder, |_| {
        if valid {
            RcimEngineError::Success
        } else {
            RcimEngineError::InvalidArgumentNaviUrl
        }
    })
}

/// Accepted and unused: rcimd sends no statistics. 34427 for a NULL or non-UTF-8
/// `url`.
///
/// # Safety
/// `url` is NULL or NUL-terminated and valid for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_engine_builder_set_statistic_server(
    builder: *mut RcimEngineBuilder,
    url: *const c_char,
) -> RcimEngineError {
    // SAFETY: the caller's promise, passed on.
    unsafe { checked_unused(builder, url, RcimEngineError::InvalidArgumentStatisticUrl) }
}

/// Accepted and unused: rcimd's configuration names the server. 34225 for a value
/// that is no `RcimAreaCode`.
///
/// # Safety
/// None beyond passing any pointer value: handles are checked, never dereferenced.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_engine_builder_set_area_code(
    builder: *mut RcimEngineBuilder,
    area_code: RcimAreaCodeIn,
) -> RcimEngineError {
    let CEnum(code) = area_code;
    let known = (RcimAreaCode::Bj as i32..=RcimAreaCode::Sa as i32).contains(&code);
    with_builder(builder, |_| {
        if known {
            RcimEngineError::Success
        } else {
            RcimEngineError::InvalidEnumOutOfRange
        }
    })
}

/// Accepted and unused: whether rcimd encrypts its database is rcimd's setting.
///
/// # Safety
/// None beyond passing any pointer value: handles are checked, never dereferenced.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_engine_builder_set_db_encrypted(
    builder: *mut RcimEngineBuilder,
    is_encrypted: bool,
) -> RcimEngineError {
    let _ = is_encrypted;
    with_builder(builder, |_| RcimEngineError::Success)
}

/// Builds the engine and destroys the builder (whatever the result).
/// `*out_engine` receives the engine, which C must pass to `rcim_destroy_engine`.
///
/// The engine does not touch rcimd yet: the first call attaches to it (at
/// `$RCIM_SOCKET`, else the default socket). Returns 34402 when `builder` is not a
/// live builder, 34401 for a NULL `out_engine`.
///
/// # Safety
/// `out_engine` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_engine_builder_build(
    builder: *mut RcimEngineBuilder,
    out_engine: *mut *mut RcimEngineSync,
) -> RcimEngineError {
    guard(RcimEngineError::EngineDropped, || {
        let Some(state) = BUILDERS.remove(builder) else {
            return RcimEngineError::InvalidArgumentEngineBuilder;
        };
        if out_engine.is_null() {
            return RcimEngineError::InvalidArgumentEngineSync;
        }
        let state = state.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = match EngineEntry::create(&state.app_key, &state.client_name) {
            Ok(entry) => entry,
            Err(code) => return code,
        };
        let handle = ENGINES.insert(entry);
        // SAFETY: non-NULL and writable by the caller's promise.
        unsafe { out_engine.write(handle) };
        RcimEngineError::Success
    })
}
