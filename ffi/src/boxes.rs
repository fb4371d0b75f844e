//! Messages and conversations on their way to C (views that own their strings
//! for the length of one callback), and the `rcim_malloc_*` / `rcim_free_*` calls
//! for the structs C allocates to pass in.
//!
//! RC's rule, kept here: what the library hands to a callback is the library's and
//! is valid only during that callback (it is freed right after); what C allocates
//! (with `rcim_malloc_*` or on its own) C frees.

use crate::boundary::{c_string, guard};
use crate::codes::{conversation_type, sent_status};
use crate::types::{
    CEnum, RcimAndroidConfig, RcimConversation, RcimConversationIdentifier, RcimEngineBuilderParam,
    RcimHarmonyConfig, RcimIosConfig, RcimMessageBox, RcimMessageDirection, RcimPushConfig,
    RcimPushNotificationMuteLevel, RcimReceivedStatus, RcimSDKVersion,
};
use rcim_proto::message::{Conversation, Direction, Message};
use std::ffi::{CString, c_char};
use std::ptr;

/// The strings a C view points into; dropped after the callback.
#[derive(Default)]
pub struct Strings(Vec<CString>);

impl Strings {
    /// A C copy of `s`, kept alive as long as `self`.
    fn keep(&mut self, s: &str) -> *const c_char {
        let copy = c_string(s);
        let ptr = copy.as_ptr();
        self.0.push(copy);
        ptr
    }

    fn keep_optional(&mut self, s: Option<&str>) -> *const c_char {
        s.map_or(ptr::null(), |s| self.keep(s))
    }
}

/// Messages as C sees them: a contiguous array of [`RcimMessageBox`] and what its
/// pointers point at.
pub struct MessageViews {
    boxes: Vec<RcimMessageBox>,
    _strings: Strings,
}

/// What every message's `received_status` points at: rcim keeps none of these
/// flags, so one shared, never-written value serves all.
static RECEIVED_STATUS: RcimReceivedStatus = RcimReceivedStatus {
    is_read: false,
    is_listened: false,
    is_download: false,
    is_retrieved: false,
    is_multiple_received: false,
};

impl MessageViews {
    /// Views of `messages`; `offline` marks the offline sync for `is_offline`.
    pub fn new(messages: &[Message], offline: bool) -> Self {
        let mut strings = Strings::default();
        let boxes = messages
            .iter()
            .map(|message| message_box(message, offline, &RECEIVED_STATUS, &mut strings))
            .collect();
        Self {
            boxes,
            _strings: strings,
        }
    }

    /// The array's first element (NULL when empty) and its length.
    pub fn as_c(&self) -> (*const RcimMessageBox, i32) {
        if self.boxes.is_empty() {
            return (ptr::null(), 0);
        }
        (
            self.boxes.as_ptr(),
            i32::try_from(self.boxes.len()).unwrap_or(i32::MAX),
        )
    }
}

fn message_box(
    message: &Message,
    offline: bool,
    received_status: *const RcimReceivedStatus,
    strings: &mut Strings,
) -> RcimMessageBox {
    let direction = match message.direction {
        Direction::Send => RcimMessageDirection::Send,
        Direction::Receive => RcimMessageDirection::Receive,
    };
    RcimMessageBox {
        conv_type: CEnum(conversation_type(message.conversation.kind) as i32),
        target_id: strings.keep(&message.conversation.target_id),
        channel_id: ptr::null(),
        message_id: message.id,
        direction: CEnum(direction as i32),
        sender_id: strings.keep(&message.sender),
        received_status,
        sent_status: CEnum(sent_status(message.sent_status) as i32),
        received_time: message.received_time_ms,
        sent_time: message.sent_time_ms,
        object_name: strings.keep(&message.object_name),
        content: strings.keep(&message.content),
        searchable_words: ptr::null(),
        uid: strings.keep_optional(message.uid.as_deref()),
        extra: ptr::null(),
        read_receipt_info: ptr::null(),
        read_receipt_info_v2: ptr::null(),
        is_notification_disabled: false,
        push_config: ptr::null(),
        is_offline: offline,
        is_ext_supported: false,
        ext_content: ptr::null(),
    }
}

/// Conversations as C sees them.
pub struct ConversationViews {
    convs: Vec<RcimConversation>,
    _strings: Strings,
}

impl ConversationViews {
    /// Views of `conversations`.
    pub fn new(conversations: &[Conversation]) -> Self {
        let mut strings = Strings::default();
        let convs = conversations
            .iter()
            .map(|conv| {
                let last = conv.last_message.as_ref();
                let last_received_time = last
                    .filter(|m| m.direction == Direction::Receive)
                    .map_or(0, |m| m.received_time_ms);
                RcimConversation {
                    conv_type: CEnum(conversation_type(conv.key.kind) as i32),
                    target_id: strings.keep(&conv.key.target_id),
                    channel_id: ptr::null(),
                    unread_message_count: i32::try_from(conv.unread_count).unwrap_or(i32::MAX),
                    is_pinned: false,
                    last_received_time,
                    last_sent_time: last.map_or(0, |m| m.sent_time_ms),
                    last_operate_time: conv.operation_time_ms,
                    object_name: strings.keep_optional(last.map(|m| m.object_name.as_str())),
                    sender_user_id: strings.keep_optional(last.map(|m| m.sender.as_str())),
                    last_message_id: last.map_or(0, |m| m.id),
                    last_message_content: strings.keep_optional(last.map(|m| m.content.as_str())),
                    draft: ptr::null(),
                    mute_level: CEnum(RcimPushNotificationMuteLevel::Default as i32),
                    mentioned_count: 0,
                    match_count: 0,
                }
            })
            .collect();
        Self {
            convs,
            _strings: strings,
        }
    }

    /// The array's first element (NULL when empty) and its length.
    pub fn as_c(&self) -> (*const RcimConversation, i32) {
        if self.convs.is_empty() {
            return (ptr::null(), 0);
        }
        (
            self.convs.as_ptr(),
            i32::try_from(self.convs.len()).unwrap_or(i32::MAX),
        )
    }
}

/// A C struct whose all-zero bytes are a valid value (NULL pointers, 0, false, a
/// `CEnum` of 0): what `rcim_malloc_*` hands out.
///
/// # Safety
/// Implement only for `#[repr(C)]` structs whose fields are raw pointers, integers,
/// bools or `CEnum`s.
unsafe trait ZeroValid: Sized {
    fn zeroed() -> Self {
        // SAFETY: the trait's contract: all-zero is a valid value of Self.
        unsafe { std::mem::zeroed() }
    }
}

// SAFETY: repr(C), fields are raw pointers, integers, bools and CEnums only (the
// same for every impl below).
unsafe impl ZeroValid for RcimMessageBox {}
// SAFETY: as above.
unsafe impl ZeroValid for RcimReceivedStatus {}
// SAFETY: as above.
unsafe impl ZeroValid for RcimPushConfig {}
// SAFETY: as above.
unsafe impl ZeroValid for RcimIosConfig {}
// SAFETY: as above.
unsafe impl ZeroValid for RcimAndroidConfig {}
// SAFETY: as above.
unsafe impl ZeroValid for RcimHarmonyConfig {}
// SAFETY: as above.
unsafe impl ZeroValid for RcimConversation {}
// SAFETY: as above.
unsafe impl ZeroValid for RcimConversationIdentifier {}
// SAFETY: as above.
unsafe impl ZeroValid for RcimSDKVersion {}
// SAFETY: as above.
unsafe impl ZeroValid for RcimEngineBuilderParam {}

fn malloc_one<T: ZeroValid>() -> *mut T {
    guard(ptr::null_mut(), || Box::into_raw(Box::new(T::zeroed())))
}

/// # Safety
/// `value` is NULL or came from `malloc_one::<T>` and was not freed before.
unsafe fn free_one<T>(value: *mut T) {
    if value.is_null() {
        return;
    }
    // SAFETY: the caller promises it is a Box<T> made by malloc_one, freed once.
    guard((), || drop(unsafe { Box::from_raw(value) }));
}

fn malloc_vec<T: ZeroValid>(len: i32) -> *mut T {
    guard(ptr::null_mut(), || {
        let Ok(len) = usize::try_from(len) else {
            return ptr::null_mut();
        };
        if len == 0 {
            return ptr::null_mut();
        }
        let values: Box<[T]> = (0..len).map(|_| T::zeroed()).collect();
        Box::into_raw(values).cast()
    })
}

/// # Safety
/// `value` is NULL or came from `malloc_vec::<T>(len)` with this same `len`, and
/// was not freed before.
unsafe fn free_vec<T>(value: *mut T, len: i32) {
    let Ok(len) = usize::try_from(len) else {
        return;
    };
    if value.is_null() || len == 0 {
        return;
    }
    guard((), || {
        // SAFETY: the caller promises value/len are what malloc_vec made (a boxed
        // slice of len elements), freed once.
        drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(value, len)) })
    });
}

// Written out one by one, not by a macro: cbindgen does not expand macros, and
// every one of these must be in the header.

/// A zeroed `RcimMessageBox` (NULL pointers, zero numbers) for C to fill. Free it with
/// `rcim_free_message_box`; what C points its fields at stays C's to free.
#[unsafe(no_mangle)]
pub extern "C" fn rcim_malloc_message_box() -> *mut RcimMessageBox {
    malloc_one()
}

/// Frees what `rcim_malloc_message_box` returned (only the struct, not what its fields point at).
/// NULL is ignored.
///
/// # Safety
/// `value` is NULL or came from `rcim_malloc_message_box` and was not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_free_message_box(value: *mut RcimMessageBox) {
    // SAFETY: the caller's promise, passed on.
    unsafe { free_one(value) }
}

/// An array of `len` zeroed `RcimMessageBox`s; NULL when `len` is not positive. Free it
/// with `rcim_free_message_box_vec` and the same `len`.
#[unsafe(no_mangle)]
pub extern "C" fn rcim_malloc_message_box_vec(len: i32) -> *mut RcimMessageBox {
    malloc_vec(len)
}

/// Frees an array from `rcim_malloc_message_box_vec` (only the array). NULL, or a `len` that is not
/// positive, is ignored.
///
/// # Safety
/// `value` is NULL or came from `rcim_malloc_message_box_vec(len)` with this same `len`, and was not
/// freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_free_message_box_vec(value: *mut RcimMessageBox, len: i32) {
    // SAFETY: the caller's promise, passed on.
    unsafe { free_vec(value, len) }
}

/// A zeroed `RcimReceivedStatus` (NULL pointers, zero numbers) for C to fill. Free it with
/// `rcim_free_receive_status`; what C points its fields at stays C's to free.
#[unsafe(no_mangle)]
pub extern "C" fn rcim_malloc_receive_status() -> *mut RcimReceivedStatus {
    malloc_one()
}

/// Frees what `rcim_malloc_receive_status` returned (only the struct, not what its fields point at).
/// NULL is ignored.
///
/// # Safety
/// `value` is NULL or came from `rcim_malloc_receive_status` and was not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_free_receive_status(value: *mut RcimReceivedStatus) {
    // SAFETY: the caller's promise, passed on.
    unsafe { free_one(value) }
}

/// A zeroed `RcimPushConfig` (NULL pointers, zero numbers) for C to fill. Free it with
/// `rcim_free_push_config`; what C points its fields at stays C's to free.
#[unsafe(no_mangle)]
pub extern "C" fn rcim_malloc_push_config() -> *mut RcimPushConfig {
    malloc_one()
}

/// Frees what `rcim_malloc_push_config` returned (only the struct, not what its fields point at).
/// NULL is ignored.
///
/// # Safety
/// `value` is NULL or came from `rcim_malloc_push_config` and was not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_free_push_config(value: *mut RcimPushConfig) {
    // SAFETY: the caller's promise, passed on.
    unsafe { free_one(value) }
}

/// A zeroed `RcimIosConfig` (NULL pointers, zero numbers) for C to fill. Free it with
/// `rcim_free_ios_config`; what C points its fields at stays C's to free.
#[unsafe(no_mangle)]
pub extern "C" fn rcim_malloc_ios_config() -> *mut RcimIosConfig {
    malloc_one()
}

/// Frees what `rcim_malloc_ios_config` returned (only the struct, not what its fields point at).
/// NULL is ignored.
///
/// # Safety
/// `value` is NULL or came from `rcim_malloc_ios_config` and was not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_free_ios_config(value: *mut RcimIosConfig) {
    // SAFETY: the caller's promise, passed on.
    unsafe { free_one(value) }
}

/// A zeroed `RcimAndroidConfig` (NULL pointers, zero numbers) for C to fill. Free it with
/// `rcim_free_android_config`; what C points its fields at stays C's to free.
#[unsafe(no_mangle)]
pub extern "C" fn rcim_malloc_android_config() -> *mut RcimAndroidConfig {
    malloc_one()
}

/// Frees what `rcim_malloc_android_config` returned (only the struct, not what its fields point at).
/// NULL is ignored.
///
/// # Safety
/// `value` is NULL or came from `rcim_malloc_android_config` and was not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_free_android_config(value: *mut RcimAndroidConfig) {
    // SAFETY: the caller's promise, passed on.
    unsafe { free_one(value) }
}

/// A zeroed `RcimHarmonyConfig` (NULL pointers, zero numbers) for C to fill. Free it with
/// `rcim_free_harmony_config`; what C points its fields at stays C's to free.
#[unsafe(no_mangle)]
pub extern "C" fn rcim_malloc_harmony_config() -> *mut RcimHarmonyConfig {
    malloc_one()
}

/// Frees what `rcim_malloc_harmony_config` returned (only the struct, not what its fields point at).
/// NULL is ignored.
///
/// # Safety
/// `value` is NULL or came from `rcim_malloc_harmony_config` and was not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_free_harmony_config(value: *mut RcimHarmonyConfig) {
    // SAFETY: the caller's promise, passed on.
    unsafe { free_one(value) }
}

/// A zeroed `RcimConversation` (NULL pointers, zero numbers) for C to fill. Free it with
/// `rcim_free_conversation`; what C points its fields at stays C's to free.
#[unsafe(no_mangle)]
pub extern "C" fn rcim_malloc_conversation() -> *mut RcimConversation {
    malloc_one()
}

/// Frees what `rcim_malloc_conversation` returned (only the struct, not what its fields point at).
/// NULL is ignored.
///
/// # Safety
/// `value` is NULL or came from `rcim_malloc_conversation` and was not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_free_conversation(value: *mut RcimConversation) {
    // SAFETY: the caller's promise, passed on.
    unsafe { free_one(value) }
}

/// A zeroed `RcimConversationIdentifier` (NULL pointers, zero numbers) for C to fill. Free it with
/// `rcim_free_conversation_identifier_c`; what C points its fields at stays C's to free.
#[unsafe(no_mangle)]
pub extern "C" fn rcim_malloc_conversation_identifier() -> *mut RcimConversationIdentifier {
    malloc_one()
}

/// Frees what `rcim_malloc_conversation_identifier` returned (only the struct, not what its fields point at).
/// NULL is ignored.
///
/// # Safety
/// `value` is NULL or came from `rcim_malloc_conversation_identifier` and was not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_free_conversation_identifier_c(
    value: *mut RcimConversationIdentifier,
) {
    // SAFETY: the caller's promise, passed on.
    unsafe { free_one(value) }
}

/// An array of `len` zeroed `RcimConversationIdentifier`s; NULL when `len` is not positive. Free
/// it with `rcim_free_conversation_identifier_vec` and the same `len`.
#[unsafe(no_mangle)]
pub extern "C" fn rcim_malloc_conversation_identifier_vec(
    len: i32,
) -> *mut RcimConversationIdentifier {
    malloc_vec(len)
}

/// Frees an array from `rcim_malloc_conversation_identifier_vec` (only the array). NULL, or a `len` that is not
/// positive, is ignored.
///
/// # Safety
/// `value` is NULL or came from `rcim_malloc_conversation_identifier_vec(len)` with this same `len`, and was not
/// freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_free_conversation_identifier_vec(
    value: *mut RcimConversationIdentifier,
    len: i32,
) {
    // SAFETY: the caller's promise, passed on.
    unsafe { free_vec(value, len) }
}

/// A zeroed `RcimSDKVersion` (NULL pointers, zero numbers) for C to fill. Free it with
/// `rcim_free_sdk_version`; what C points its fields at stays C's to free.
#[unsafe(no_mangle)]
pub extern "C" fn rcim_malloc_sdk_version() -> *mut RcimSDKVersion {
    malloc_one()
}

/// Frees what `rcim_malloc_sdk_version` returned (only the struct, not what its fields point at).
/// NULL is ignored.
///
/// # Safety
/// `value` is NULL or came from `rcim_malloc_sdk_version` and was not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_free_sdk_version(value: *mut RcimSDKVersion) {
    // SAFETY: the caller's promise, passed on.
    unsafe { free_one(value) }
}

/// A zeroed `RcimEngineBuilderParam` (NULL pointers, zero numbers) for C to fill. Free it with
/// `rcim_free_engine_builder_param`; what C points its fields at stays C's to free.
#[unsafe(no_mangle)]
pub extern "C" fn rcim_malloc_engine_builder_param() -> *mut RcimEngineBuilderParam {
    malloc_one()
}

/// Frees what `rcim_malloc_engine_builder_param` returned (only the struct, not what its fields point at).
/// NULL is ignored.
///
/// # Safety
/// `value` is NULL or came from `rcim_malloc_engine_builder_param` and was not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_free_engine_builder_param(value: *mut RcimEngineBuilderParam) {
    // SAFETY: the caller's promise, passed on.
    unsafe { free_one(value) }
}

/// Frees a string the library returned to C. NULL is ignored. (No call rcim
/// implements returns one yet; it is here because RC's apps call it.)
///
/// # Safety
/// `value` is NULL or a string this library returned, freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_free_char(value: *const c_char) {
    if value.is_null() {
        return;
    }
    // SAFETY: the caller promises it came from CString::into_raw in this library.
    guard((), || drop(unsafe { CString::from_raw(value.cast_mut()) }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcim_proto::message::{ConversationKey, SentStatus};
    use std::ffi::CStr;

    fn message(id: i64, uid: Option<&str>) -> Message {
        Message {
            id,
            uid: uid.map(str::to_owned),
            conversation: ConversationKey::private("bob"),
            sender: "alice".into(),
            object_name: "RC:TxtMsg".into(),
            content: r#"{"content":"hi"}"#.into(),
            sent_time_ms: 1000 + id,
            received_time_ms: 2000,
            direction: Direction::Send,
            sent_status: SentStatus::Sent,
            client_msg_id: None,
        }
    }

    #[test]
    fn message_views_point_at_their_own_copies() {
        let views = MessageViews::new(&[message(1, Some("U1")), message(2, None)], true);
        let (ptr, len) = views.as_c();
        assert_eq!(len, 2);
        // SAFETY: ptr/len describe `views.boxes`, alive for this test.
        let boxes = unsafe { std::slice::from_raw_parts(ptr, 2) };
        // SAFETY: every string pointer points into `views`' strings.
        unsafe {
            assert_eq!(CStr::from_ptr(boxes[0].target_id).to_str(), Ok("bob"));
            assert_eq!(CStr::from_ptr(boxes[0].uid).to_str(), Ok("U1"));
            assert_eq!(
                CStr::from_ptr(boxes[1].content).to_str(),
                Ok(r#"{"content":"hi"}"#)
            );
            assert!(!(*boxes[1].received_status).is_read);
        }
        assert!(boxes[1].uid.is_null());
        assert_eq!(boxes[0].conv_type, CEnum(1));
        assert_eq!(boxes[0].sent_status, CEnum(30));
        assert_eq!(boxes[1].sent_time, 1002);
        assert!(boxes[0].is_offline);
        assert_eq!(MessageViews::new(&[], false).as_c(), (ptr::null(), 0));
    }

    #[test]
    fn malloc_and_free_pair_up() {
        let one = rcim_malloc_message_box();
        assert!(!one.is_null());
        // SAFETY: fresh from rcim_malloc_message_box, freed once.
        unsafe { rcim_free_message_box(one) };
        let many = rcim_malloc_message_box_vec(3);
        assert!(!many.is_null());
        // SAFETY: fresh from rcim_malloc_message_box_vec(3), freed once with 3.
        unsafe { rcim_free_message_box_vec(many, 3) };
        assert!(rcim_malloc_message_box_vec(0).is_null());
        assert!(rcim_malloc_message_box_vec(-4).is_null());
        let param = rcim_malloc_engine_builder_param();
        // SAFETY: fresh from its malloc: zeroed, so its fields read as NULL / 0.
        unsafe {
            assert!((*param).app_key.is_null());
            assert_eq!((*param).platform, CEnum(0));
            rcim_free_engine_builder_param(param);
        }
        let ids = rcim_malloc_conversation_identifier_vec(2);
        // SAFETY: fresh from its malloc with 2, freed once with 2.
        unsafe { rcim_free_conversation_identifier_vec(ids, 2) };
        // SAFETY: NULL is documented as ignored.
        unsafe {
            rcim_free_message_box(ptr::null_mut());
            rcim_free_message_box_vec(ptr::null_mut(), 3);
            rcim_free_char(ptr::null());
        }
    }
}
