//! What every entry point does at the C boundary: catch panics, read C strings,
//! turn handles into live objects, and call back into C only while the engine
//! lives.
//!
//! Handles are never pointers to Rust memory. A builder or engine is registered
//! under a fresh number, and C gets that number dressed as a pointer; each call
//! looks the number up. So a destroyed handle, a double destroy, or a pointer that
//! was never ours is refused with RC's invalid-argument code instead of being
//! dereferenced, and a call that races with `rcim_destroy_engine` holds its own
//! reference until it returns (no use after free). Numbers are never reused.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Runs an entry point's body; a panic becomes `on_panic` instead of unwinding
/// into C (which would abort the app or be undefined behaviour).
pub fn guard<T>(on_panic: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(_) => {
            tracing::error!("a panic in librcim_client was caught at the C boundary");
            on_panic
        }
    }
}

/// The caller's `context` pointer: handed back untouched, never dereferenced.
#[derive(Clone, Copy, Debug)]
pub struct Context(pub *const c_void);

impl Context {
    /// The pointer, to pass back. (A method, so that closures capture the whole
    /// `Context`, which is `Send`, not its bare pointer field.)
    pub fn ptr(self) -> *const c_void {
        self.0
    }
}

// SAFETY: the library never dereferences the pointer; it only passes it back to the
// caller's callbacks, which RC's contract lets run on any library thread.
unsafe impl Send for Context {}
// SAFETY: as above; sharing a pointer value that is never dereferenced is harmless.
unsafe impl Sync for Context {}

/// Why a C string argument was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadString {
    /// NULL where a string is required.
    Null,
    /// Not UTF-8.
    NotUtf8,
}

/// Reads a C string that may be NULL (`Ok(None)`).
///
/// # Safety
/// `ptr` is NULL or points at a NUL-terminated string that stays valid and
/// unchanged for `'a` (RC's rule: the caller owns what it passes, for the call).
pub unsafe fn optional_str<'a>(ptr: *const c_char) -> Result<Option<&'a str>, BadString> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: not NULL, and the caller promises a NUL-terminated string valid for 'a.
    let bytes = unsafe { CStr::from_ptr(ptr) };
    bytes.to_str().map(Some).map_err(|_| BadString::NotUtf8)
}

/// Reads a C string that must not be NULL.
///
/// # Safety
/// As [`optional_str`].
pub unsafe fn required_str<'a>(ptr: *const c_char) -> Result<&'a str, BadString> {
    // SAFETY: the same contract, passed on.
    unsafe { optional_str(ptr) }?.ok_or(BadString::Null)
}

/// A C copy of `s` to hand out for the length of a callback. A NUL inside `s`
/// (C strings cannot hold one) ends the copy there.
pub fn c_string(s: &str) -> CString {
    let end = s.find('\0').unwrap_or(s.len());
    CString::new(&s[..end]).unwrap_or_default()
}

/// Live objects of one kind, by handle number.
pub struct Registry<T> {
    next: AtomicU64,
    live: Mutex<BTreeMap<u64, Arc<T>>>,
}

impl<T> Registry<T> {
    /// An empty registry.
    pub const fn new() -> Self {
        Self {
            next: AtomicU64::new(1),
            live: Mutex::new(BTreeMap::new()),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<T>>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `value` and returns its handle for C.
    pub fn insert<H>(&self, value: T) -> *mut H {
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        self.live().insert(number, Arc::new(value));
        handle_of(number)
    }

    /// The object behind `handle`, if it is live.
    pub fn get<H>(&self, handle: *const H) -> Option<Arc<T>> {
        self.live().get(&number_of(handle)?).cloned()
    }

    /// Unregisters `handle`; `None` when it was not live (destroyed before, or
    /// never ours).
    pub fn remove<H>(&self, handle: *const H) -> Option<Arc<T>> {
        self.live().remove(&number_of(handle)?)
    }
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Handles are multiples of 16 so that they look like (aligned) pointers to C
/// code that checks; they are never dereferenced.
const HANDLE_STRIDE: u64 = 16;

fn handle_of<H>(number: u64) -> *mut H {
    std::ptr::without_provenance_mut(usize::try_from(number * HANDLE_STRIDE).unwrap_or(0))
}

fn number_of<H>(handle: *const H) -> Option<u64> {
    let address = u64::try_from(handle.addr()).ok()?;
    (address != 0 && address % HANDLE_STRIDE == 0).then_some(address / HANDLE_STRIDE)
}

thread_local! {
    /// The gates whose callback this thread is running now (callbacks may nest
    /// when one engine's callback calls into another's).
    static INSIDE: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Lets an engine's callbacks into C only while the engine lives, one at a time.
///
/// `rcim_destroy_engine` closes the gate: after it returns no callback of that
/// engine runs, and none is running (it waits for one in progress on another
/// thread). Called from inside one of the engine's own callbacks, it cannot wait
/// for itself: it closes the gate and returns, and nothing runs after the current
/// callback.
pub struct Gate {
    id: u64,
    open: AtomicBool,
    running: Mutex<()>,
}

impl Gate {
    /// An open gate.
    pub fn new() -> Arc<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Arc::new(Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            open: AtomicBool::new(true),
            running: Mutex::new(()),
        })
    }

    /// Runs `call` (which calls C) if the gate is open; a panic inside is caught.
    pub fn call(&self, call: impl FnOnce()) {
        let _running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if !self.open.load(Ordering::Acquire) {
            return;
        }
        INSIDE.with(|inside| inside.borrow_mut().push(self.id));
        guard((), call);
        INSIDE.with(|inside| inside.borrow_mut().pop());
    }

    /// Closes the gate; see the type's doc.
    pub fn close(&self) {
        self.open.store(false, Ordering::Release);
        let inside_own_callback = INSIDE.with(|inside| inside.borrow().contains(&self.id));
        if !inside_own_callback {
            // Wait for a callback in progress on another thread to return.
            drop(self.running.lock().unwrap_or_else(PoisonError::into_inner));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_refused_once_removed_and_never_reused() {
        let registry = Registry::<u32>::new();
        let a: *mut u8 = registry.insert(7);
        assert_eq!(registry.get(a).as_deref(), Some(&7));
        assert!(registry.remove(a).is_some());
        assert!(registry.get(a).is_none());
        assert!(registry.remove(a).is_none(), "a double destroy is seen");
        let b: *mut u8 = registry.insert(8);
        assert_ne!(a, b);
        assert!(registry.get::<u8>(std::ptr::null()).is_none());
        assert!(
            registry
                .get(std::ptr::without_provenance::<u8>(17))
                .is_none()
        );
    }

    #[test]
    fn a_closed_gate_runs_nothing_and_a_callback_may_close_its_own_gate() {
        let gate = Gate::new();
        let mut ran = 0;
        gate.call(|| {
            ran += 1;
            gate.close(); // from inside: must not wait for itself
        });
        gate.call(|| ran += 1);
        assert_eq!(ran, 1);
    }

    #[test]
    fn a_panicking_callback_is_caught() {
        let gate = Gate::new();
        gate.call(|| panic!("boom"));
        let mut ran = false;
        gate.call(|| ran = true);
        assert!(ran);
    }

    #[test]
    fn strings_null_and_invalid_utf8_are_told_apart() {
        let good = c"alice";
        let bad = [0xffu8, 0xfe, 0];
        // SAFETY: NUL-terminated literals that outlive the calls.
        unsafe {
            assert_eq!(optional_str(std::ptr::null()), Ok(None));
            assert_eq!(required_str(std::ptr::null()), Err(BadString::Null));
            assert_eq!(required_str(good.as_ptr()), Ok("alice"));
            assert_eq!(required_str(bad.as_ptr().cast()), Err(BadString::NotUtf8));
        }
        assert_eq!(c_string("a\0b").as_bytes(), b"a");
    }
}
