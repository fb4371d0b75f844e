//! The C types of RC's native-SDK ABI that the implemented calls take or give:
//! enums with RC's numbers, `#[repr(C)]` structs laid out field for field as in RC's
//! `rcim_client.h`, the opaque handles and the callback typedefs.
//!
//! Everything here is plain data; what the fields mean for rcim is said where it
//! differs from RC. cbindgen turns this module into `include/rcim_client.h`.
//!
//! Enums that C passes *in* (a conversation type, an area code, a disconnect mode,
//! an order, a platform, and the enum fields of structs C fills) are received as
//! [`CEnum`]: the C enum's `int`, read without ever forming a Rust enum, because a
//! Rust enum holding a value it does not list is undefined behaviour and C can pass
//! any `int`. cbindgen prints them as the C enum (see `cbindgen.toml`), so the
//! header reads like RC's and the ABI is the same (a C enum is an `int`).

use std::ffi::{c_char, c_void};

/// A C enum received from the caller: its `int` value, checked before use.
///
/// The header names the enum it carries (`enum RcimConversationType conv_type`);
/// each alias below says which.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CEnum(pub i32);

/// `enum RcimConversationType` as C passes it in.
pub type RcimConversationTypeIn = CEnum;
/// `enum RcimAreaCode` as C passes it in.
pub type RcimAreaCodeIn = CEnum;
/// `enum RcimDisconnectMode` as C passes it in.
pub type RcimDisconnectModeIn = CEnum;
/// `enum RcimPlatform` as C passes it in.
pub type RcimPlatformIn = CEnum;
/// `enum RcimMessageDirection` as C passes it in.
pub type RcimMessageDirectionIn = CEnum;
/// `enum RcimSentStatus` as C passes it in.
pub type RcimSentStatusIn = CEnum;
/// `enum RcimPushNotificationMuteLevel` as C passes it in (only ever written by
/// rcim, but the struct is shared with C).
pub type RcimPushNotificationMuteLevelIn = CEnum;

/// The state of the connection, as the status listener and
/// `rcim_engine_get_connection_status` report it (RC's numbers; rcim's own statuses
/// map onto these in `codes.rs`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RcimConnectionStatus {
    /// Not connected and not trying.
    Idle = 0,
    /// Connecting (also while rcimd reconnects after a drop).
    Connecting = 1,
    /// Connected.
    Connected = 2,
    /// Disconnecting.
    Disconnecting = 3,
    /// The network is unavailable; rcimd reconnects when it returns.
    DisconnectNetworkUnavailable = 10,
    /// An app called disconnect (this device signed out for every local app).
    DisconnectUserLogout = 11,
    /// The license expired.
    DisconnectLicenseExpired = 12,
    /// The license does not match.
    DisconnectLicenseMismatch = 13,
    /// The server does not speak this protocol version.
    DisconnectIllegalProtocolVersion = 14,
    /// The app key or client identity was rejected.
    DisconnectIdReject = 15,
    /// The platform is unavailable.
    DisconnectPlatformUnavailable = 16,
    /// The token was refused or has expired: fetch a new one.
    DisconnectTokenIncorrect = 17,
    /// Not authorized.
    DisconnectNotAuthorized = 18,
    /// The package name is invalid.
    DisconnectPackageNameInvalid = 19,
    /// The app is blocked or deleted.
    DisconnectAppBlockOrDelete = 20,
    /// The user is blocked.
    DisconnectUserBlocked = 21,
    /// Kicked: the same user connected from another device.
    DisconnectUserKicked = 22,
    /// The token expired.
    DisconnectTokenExpired = 23,
    /// A device error.
    DisconnectDeviceError = 24,
    /// A host name error.
    DisconnectHostnameError = 25,
    /// Another device of the same kind logged in.
    DisconnectOtherDeviceLogin = 26,
    /// The concurrent connection limit was reached.
    DisconnectConcurrentLimitError = 27,
    /// Wrong environment for this app key.
    DisconnectClusterError = 28,
    /// The app server refused the connection.
    DisconnectAppAuthFailed = 29,
    /// The one-time token was already used.
    DisconnectOneTimePasswordUsed = 30,
    /// A terminal error with no status of its own (rcim's `unknown`).
    DisconnectPlatformError = 31,
    /// The account was deleted.
    DisconnectUserDeleteAccount = 32,
    /// The connect time limit passed; call connect again.
    DisconnectConnectionTimeout = 33,
    /// The local database could not be opened.
    DisconnectDatabaseOpenFailed = 34,
}

/// The kind of a conversation (RC's native numbers, which differ from the wrapper
/// SDK's numbers that rcim uses on its socket; `codes.rs` maps them).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RcimConversationType {
    /// Not a conversation type rcim knows.
    NotSupportedYet = 0,
    /// One-to-one.
    Private = 1,
    /// A discussion (not in rcim).
    Discussion = 2,
    /// A group.
    Group = 3,
    /// A chat room.
    Chatroom = 4,
    /// Customer service (not in rcim).
    CustomerService = 5,
    /// System messages.
    System = 6,
    /// An app public service (not in rcim).
    AppPublicService = 7,
    /// A public service (not in rcim).
    PublicService = 8,
    /// A push service (not in rcim).
    PushService = 9,
    /// An ultra group.
    UltraGroup = 10,
    /// An encrypted conversation (not in rcim).
    Encrypted = 11,
    /// An RTC room (not in rcim).
    RtcRoom = 12,
}

/// The local database's state, for the database status listener.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RcimDatabaseStatus {
    /// Nothing opened yet.
    Idle = 0,
    /// The database is open.
    OpenSuccess = 1,
    /// Opening failed.
    OpenFailed = 2,
    /// Upgrading (never reported by rcim: rcimd migrates before it answers).
    Upgrading = 3,
    /// Upgraded.
    UpgradeSuccess = 4,
    /// Upgrading failed.
    UpgradeFailed = 5,
    /// Another database error.
    Error = 127,
}

/// How `rcim_engine_disconnect` leaves remote pushes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RcimDisconnectMode {
    /// Keep receiving remote pushes.
    KeepPush = 2,
    /// Stop remote pushes.
    NoPush = 4,
}

/// The data centre (accepted and ignored by rcim: rcimd's configuration names
/// the server).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RcimAreaCode {
    /// Beijing.
    Bj = 1,
    /// Singapore.
    Sg = 2,
    /// North America.
    Na = 3,
    /// Singapore B.
    SgB = 4,
    /// Saudi Arabia.
    Sa = 5,
}

/// The platform named in [`RcimEngineBuilderParam`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RcimPlatform {
    /// Android.
    Android = 0,
    /// iOS.
    IOS = 1,
    /// HarmonyOS.
    HarmonyOS = 2,
    /// Windows.
    Windows = 3,
    /// macOS.
    MacOS = 4,
    /// Linux.
    Linux = 5,
    /// Electron.
    Electron = 6,
    /// Web.
    Web = 7,
    /// Unknown.
    Unknown = 127,
}

/// Whether a message was sent or received.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RcimMessageDirection {
    /// Sent by this user.
    Send = 1,
    /// Received by this user.
    Receive = 2,
}

/// How far a sent message got (RC's native numbers).
#[repr(C)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RcimSentStatus {
    /// In rcimd's outbox, not yet acknowledged.
    SENDING = 10,
    /// The server refused it.
    FAILED = 20,
    /// The server accepted it.
    SENT = 30,
    /// The recipient received it.
    RECEIVED = 40,
    /// The recipient read it.
    READ = 50,
    /// Destroyed.
    DESTROYED = 60,
    /// Cancelled.
    CANCELED = 70,
}

/// A conversation's notification level (rcim has no per-conversation muting and
/// reports `Default`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RcimPushNotificationMuteLevel {
    /// Everything muted.
    All = -1,
    /// Not set.
    Default = 0,
    /// Only mentions notify.
    Mention = 1,
    /// Only mentions of users notify.
    MentionUsers = 2,
    /// Only mentions of all notify.
    MentionAll = 4,
    /// Blocked.
    Blocked = 5,
}

/// The result code of every call and callback: RC's native numbers. 0 is success;
/// 34xxx are invalid arguments. rcim's own codes (the wrapper SDK's, as rcimd
/// reports them) map onto these in one table, `codes.rs`.
///
/// The variants carry RC's names and numbers, all of them, so that C code written
/// against RC's header compiles against this one; those rcim can return are listed
/// in `codes.rs`.
#[repr(C)]
#[allow(missing_docs)] // RC's names say what each is; rcim's meanings are in codes.rs
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RcimEngineError {
    Success = 0,
    RejectedByBlackList = 405,
    NotWhitelisted = 407,
    ForbiddenInPrivateChat = 20106,
    ConversationNotSupportMessage = 20109,
    MessageSendOverFrequency = 20604,
    RequestOverFrequency = 20607,
    MessageIncludeSensitiveWord = 21501,
    MessageReplacedSensitiveWord = 21502,
    NotInGroup = 22406,
    ForbiddenInGroupChat = 22408,
    ForbiddenInChatroom = 23408,
    ChatroomKicked = 23409,
    ChatroomNotExist = 23410,
    ChatroomIsFull = 23411,
    NotInChatroom = 23406,
    GetUserError = 23407,
    ChatroomInvalidParameter = 23412,
    QueryChatroomHistoryError = 23413,
    RoamingServiceUnavailableChatroom = 23414,
    ChatroomKvCountExceed = 23423,
    ChatroomKvOverwriteInvalidKey = 23424,
    ChatroomKvCallAPIExceed = 23425,
    ChatroomKvStoreUnavailable = 23426,
    ChatroomKvNotExist = 23427,
    ChatroomKvNotAllSuccess = 23428,
    ChatroomKvLimit = 23429,
    ChatroomKvConcurrentError = 23431,
    RecallParameterInvalid = 25101,
    MessageStorageServiceUnavailable = 25102,
    RecallMessageUserInvalid = 25107,
    PushSettingParameterInvalid = 26001,
    SettingSyncFailed = 26002,
    InvalidArgumentMessageUid = 26009,
    RequestUploadTokenSizeError = 26107,
    InvalidPublicService = 29201,
    ConnectionClosed = 30001,
    ConnectionClosing = 30027,
    SocketRecvTimeout = 30003,
    NaviReqFailed = 30004,
    NaviReqTimeout = 30005,
    MsgSizeOutOfLimit = 30016,
    SocketSendTimeout = 30022,
    NaviRespTokenIncorrect = 30024,
    NaviLicenseMismatch = 30026,
    HttpReqFailed = 34026,
    HttpReqTimeout = 34027,
    ConnectIllegalProtocolVersion = 31001,
    ConnectIdReject = 31002,
    ConnectPlatformUnavailable = 31003,
    ConnectTokenIncorrect = 31004,
    ConnectNotAuthorized = 31005,
    ConnectRedirect = 31006,
    ConnectPackageNameInvalid = 31007,
    ConnectAppBlockOrDelete = 31008,
    ConnectUserBlocked = 31009,
    DisconnectUserKicked = 31010,
    DisconnectUserBlocked = 31011,
    DisconnectUserLogout = 31012,
    SocketConnectionFailed = 31014,
    SocketShutdownFailed = 31015,
    ConnectionCancel = 31016,
    ConnectTokenExpired = 31020,
    ConnectDeviceError = 31021,
    ConnectHostnameError = 31022,
    ConnectOtherDeviceLogin = 31023,
    ConnectConcurrentLimitError = 31024,
    ConnectClusterError = 31025,
    ConnectAppAuthFailed = 31026,
    ConnectOneTimePasswordUsed = 31027,
    ConnectPlatformError = 31028,
    ConnectUserDeleteAccount = 31029,
    ConnectLicenseExpired = 31030,
    KvStoreNotOpened = 31510,
    KvStoreOpenFailed = 31511,
    KvStoreIOError = 31512,
    KvStoreSerializationError = 31513,
    JsonParserFailed = 31610,
    ImageFormatError = 31611,
    RequestUploadTokenError = 31612,
    GetUploadTokenError = 31613,
    SightMessageCompressError = 31614,
    RequestCanceled = 33200,
    DownloadRequestExist = 33202,
    RequestPaused = 33204,
    DownloadTaskNotExist = 33205,
    UploadTaskNotExist = 33206,
    MediaMessageHandlerError = 33207,
    ConnectRefused = 32061,
    MessageSavedError = 33000,
    ConnectionInProcess = 33006,
    CloudStorageForHistoryMessageDisable = 33007,
    ConnectionExists = 34001,
    GifMessageSizeOutOfLimit = 34003,
    ConnectionTimeout = 34006,
    MessageCantExpand = 34008,
    MessageExpansionSizeLimitExceed = 34010,
    UploadMediaFailed = 34011,
    GroupReadReceiptVersionNotSupport = 34014,
    UserSettingUnavailable = 34016,
    MessageNotRegistered = 34021,
    MessageExpandConversationTypeNotMatch = 34025,
    InvalidArgumentUltraGroupNotSupport = 34022,
    InvalidArgumentAppKey = 34105,
    InvalidArgumentTimestamp = 34202,
    InvalidArgumentMessageContent = 34205,
    InvalidArgumentMessageVec = 34206,
    InvalidArgumentConversationType = 34209,
    InvalidArgumentTargetId = 34210,
    InvalidParameterMessageExpansion = 34220,
    InvalidArgumentChannelId = 34211,
    InvalidArgumentContentNotMedia = 34223,
    InvalidArgumentFileNameEmpty = 33201,
    InvalidArgumentTimeString = 34224,
    InvalidEnumOutOfRange = 34225,
    InvalidArgumentPushNotificationMuteLevel = 34228,
    InvalidArgumentMessageIdVec = 34229,
    InvalidArgumentCount = 34232,
    InvalidArgumentMediaLocalPath = 34234,
    InvalidArgumentMediaUrl = 34235,
    InvalidArgumentMessage = 34243,
    InvalidArgumentSentStatus = 34244,
    ChatroomKvInvalidKey = 34260,
    ChatroomKvInvalidKeyVec = 34261,
    ChatroomKvInvalidValue = 34262,
    ChatroomKvInvalidKeyValueVec = 34263,
    InvalidArgumentMessageDirectionEmpty = 34267,
    InvalidArgumentObjectName = 34271,
    InvalidArgumentLimit = 34279,
    InvalidArgumentMessageDirection = 34280,
    InvalidArgumentSpanMinutes = 34283,
    InvalidArgumentConversationTypeVec = 34284,
    InvalidArgumentNaviUrl = 34286,
    InvalidArgumentConversationIdentifierVec = 34287,
    DirectionalMessageNotSupport = 34296,
    MessageDestructing = 34297,
    MessageNotDestructing = 23298,
    InvalidParameterReceivedStatus = 34230,
    InvalidParameterUserId = 34214,
    InvalidParameterUserList = 34215,
    DatabaseNotOpened = 34301,
    DatabaseOpenFailed = 34302,
    DatabaseIOError = 34303,
    DatabaseTargetNotFound = 34304,
    NetDataParserFailed = 34305,
    DatabaseThreadError = 34316,
    EngineDropped = 34400,
    SightMsgDurationLimit = 34002,
    InvalidArgumentEngineSync = 34401,
    InvalidArgumentEngineBuilder = 34402,
    InvalidArgumentDeviceId = 34403,
    InvalidArgumentPackageName = 34404,
    InvalidArgumentSdkVersion = 34405,
    InvalidArgumentFileStoragePath = 34406,
    InvalidArgumentToken = 34407,
    InvalidArgumentMessageId = 34408,
    InvalidArgumentMessageType = 34409,
    InvalidArgumentNotMediaMessage = 34410,
    InvalidArgumentUserIdEmpty = 34411,
    InvalidArgumentAudioDuration = 34413,
    InvalidArgumentLogInfo = 34414,
    InvalidArgumentEngineBuilderParam = 34415,
    InvalidArgumentDeviceModel = 34416,
    InvalidArgumentDeviceManufacturer = 34417,
    InvalidArgumentPushTokenVec = 34418,
    InvalidArgumentPushType = 34419,
    InvalidArgumentPushToken = 34420,
    InvalidArgumentSenderId = 34421,
    InvalidArgumentPushNotificationMuteLevelVec = 34422,
    InvalidArgumentConnectionStatus = 34423,
    InvalidArgumentVersion = 34424,
    InvalidArgumentOsVersion = 34425,
    InvalidArgumentAppVersion = 34426,
    InvalidArgumentStatisticUrl = 34427,
    InvalidArgumentDraft = 34428,
    InvalidArgumentKeyword = 34429,
    InvalidArgumentOffset = 34430,
    InvalidArgumentObjectNameVec = 34431,
    InvalidArgumentTimeInterval = 34432,
    InvalidArgumentTimeoutSeconds = 34433,
    InvalidArgumentDestructDuration = 34434,
    InvalidArgumentUniqueId = 34435,
    InvalidArgumentOutUniqueId = 34436,
    InvalidArgumentOutUserId = 34437,
    InvalidArgumentExtra = 34438,
    InvalidArgumentChatroomId = 36001,
    InvalidArgumentRtcMethodName = 36002,
    InvalidArgumentRtcKey = 36003,
    InvalidArgumentRtcValue = 36004,
    CallNotInRoom = 40001,
    CallInternalError = 40002,
    CallHasNoRoom = 40003,
    CallInvalidUserId = 40004,
    CallLimitError = 40005,
    CallParamError = 40006,
    CallTokenError = 40007,
    CallDbError = 40008,
    CallJsonError = 40009,
    CallNotOpen = 40010,
    CallRoomTypeError = 40011,
    CallNoAuthUser = 40012,
    CallHasNoConfigMcuAddress = 40015,
    CallNotAllowVideoBroadcast = 40016,
    CallNotAllowAudioBroadcast = 40017,
    CallGetTokenError = 40018,
    CallUserIsBlocked = 40021,
    CallInviteRoomNotExist = 40022,
    CallInviteUserNotInRoom = 40023,
    CallInviteInProgress = 40024,
    CallCancelInviteNotProgress = 40025,
    CallAnswerInviteNotProgress = 40026,
    CallAnswerInviteTimeout = 40027,
    CallPingNotProgress = 40028,
    CallRoomAlreadyExist = 40029,
    CallRoomTypeNotSupport = 40030,
    CallIdentityChangeTypeError = 40031,
    CallAlreadyJoinRoom = 40032,
    CallNotAllowCrossApp = 40033,
    CallUserNotAllowedForRtc = 40034,
    CallConcurrentLimitError = 40130,
    CallExpiredError = 40131,
    CallplusUnknownError = 41000,
    CallplusDbError = 41001,
    CallplusJsonError = 41002,
    CallplusInvalidJsonFormat = 41003,
    CallplusMissingParameters = 41004,
    CallplusOperationNotPermitted = 41005,
    CallplusCircuitBreakerOpen = 41006,
    CallplusMethodNotImplement = 41007,
    CallplusCallingUserNotRegistCallServer = 41008,
    CallplusNotSupportNewCall = 41009,
    CallplusCallNotExist = 41010,
    CallplusSingleCallOverload = 41011,
    CallplusGroupCallOverload = 41012,
    CallplusOperationHasExpired = 41013,
    CallplusDeviceHasCalling = 41014,
    CallplusCallUserNotInCall = 41015,
    CallplusDataHasExpired = 41016,
    CallplusStreamReadyTimeInvalid = 41018,
    CallplusCallNotSelf = 41019,
    CallplusStateNotExist = 41020,
    CallplusHangupNotAllowed = 41021,
    CallplusAcceptNotAllowed = 41022,
    CallplusOperationNotAllowed = 41025,
    CallplusTransactionNotExist = 41100,
    CallplusMediaTypeSwitching = 41101,
    CallplusAudioToVideoCancel = 41150,
    CallplusVideoToAudioNoRequired = 41151,
    CallplusAudioToVideoNoRequired = 41152,
    CallplusNoCompensationData = 41200,
    NotSupportedYet = 99999,
}

/// RC's engine builder. Opaque: made by `rcim_create_engine_builder`, ended by
/// `rcim_engine_builder_build` or `rcim_destroy_engine_builder`.
pub struct RcimEngineBuilder {
    _opaque: [u8; 0],
}

/// RC's engine. Opaque: made by `rcim_engine_builder_build`, ended by
/// `rcim_destroy_engine`. The pointer is a handle, never dereferenced: a pointer
/// that is not a live engine (destroyed, or never made) is refused with 34401.
pub struct RcimEngineSync {
    _opaque: [u8; 0],
}

/// An SDK name and version in [`RcimEngineBuilderParam`].
#[repr(C)]
pub struct RcimSDKVersion {
    /// The SDK's name.
    pub name: *const c_char,
    /// Its version.
    pub version: *const c_char,
}

/// What `rcim_create_engine_builder` takes. rcim uses `app_key` (must be set) and
/// `package_name` (the client name in rcimd's logs and `rcimctl status`); the rest
/// is accepted and not used, because rcimd owns the connection and reports its own
/// device and platform.
#[repr(C)]
pub struct RcimEngineBuilderParam {
    /// The app key (non-NULL, UTF-8).
    pub app_key: *const c_char,
    /// The platform.
    pub platform: RcimPlatformIn,
    /// The device id (unused: rcimd has its own).
    pub device_id: *const c_char,
    /// The package name, used as the client name shown by rcimd.
    pub package_name: *const c_char,
    /// The IMLib version (unused).
    pub imlib_version: *const c_char,
    /// The device model (unused).
    pub device_model: *const c_char,
    /// The device manufacturer (unused).
    pub device_manufacturer: *const c_char,
    /// The OS version (unused).
    pub os_version: *const c_char,
    /// SDK versions (unused).
    pub sdk_version_vec: *const RcimSDKVersion,
    /// How many `sdk_version_vec` holds.
    pub sdk_version_vec_len: i32,
    /// The app's version (unused).
    pub app_version: *const c_char,
}

/// A message's receipt flags (rcim keeps none of them and reports all false).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct RcimReceivedStatus {
    /// Read.
    pub is_read: bool,
    /// Listened to.
    pub is_listened: bool,
    /// Downloaded.
    pub is_download: bool,
    /// Retrieved.
    pub is_retrieved: bool,
    /// Received by several clients.
    pub is_multiple_received: bool,
}

/// Who responded to a read receipt request (not in rcim yet).
#[repr(C)]
pub struct RcimReadReceiptUserInfo {
    /// The responding user.
    pub sender_id: *const c_char,
    /// When.
    pub timestamp: u64,
}

/// Read receipt state of a message (not in rcim yet: always NULL in messages
/// rcim gives).
#[repr(C)]
pub struct RcimReadReceiptInfo {
    /// Whether the message asked for receipts.
    pub is_read_receipt_message: bool,
    /// Whether this user responded.
    pub has_respond: bool,
    /// Who responded.
    pub respond_user_vec: *const RcimReadReceiptUserInfo,
    /// How many `respond_user_vec` holds.
    pub respond_user_vec_len: i32,
}

/// Group read receipt state, version 2 (not in rcim yet: always NULL).
#[repr(C)]
pub struct RcimReadReceiptInfoV2 {
    /// Whether this user responded.
    pub has_respond: bool,
    /// Who responded.
    pub respond_user_vec: *const RcimReadReceiptUserInfo,
    /// How many `respond_user_vec` holds.
    pub respond_user_vec_len: i32,
    /// How many read it.
    pub read_count: u32,
    /// How many received it.
    pub total_count: u32,
}

/// iOS push options (accepted, not used by rcim).
#[repr(C)]
pub struct RcimIosConfig {
    /// Thread id.
    pub thread_id: *const c_char,
    /// Category.
    pub category: *const c_char,
    /// Collapse id.
    pub apns_collapse_id: *const c_char,
    /// Rich media URI.
    pub rich_media_uri: *const c_char,
    /// Interruption level.
    pub interruption_level: *const c_char,
}

/// Android push options (accepted, not used by rcim).
#[repr(C)]
pub struct RcimAndroidConfig {
    /// Notification id.
    pub notification_id: *const c_char,
    /// Xiaomi channel.
    pub mi_channel_id: *const c_char,
    /// Huawei channel.
    pub hw_channel_id: *const c_char,
    /// Huawei importance.
    pub hw_importance: *const c_char,
    /// Huawei image.
    pub hw_image_url: *const c_char,
    /// Huawei category.
    pub hw_category: *const c_char,
    /// Honor importance.
    pub honor_importance: *const c_char,
    /// Honor image.
    pub honor_image_url: *const c_char,
    /// OPPO channel.
    pub oppo_channel_id: *const c_char,
    /// vivo category.
    pub vivo_category: *const c_char,
    /// vivo type.
    pub vivo_type: *const c_char,
    /// FCM channel.
    pub fcm_channel_id: *const c_char,
    /// FCM collapse key.
    pub fcm_collapse_key: *const c_char,
    /// FCM image.
    pub fcm_image_url: *const c_char,
}

/// HarmonyOS push options (accepted, not used by rcim).
#[repr(C)]
pub struct RcimHarmonyConfig {
    /// Image.
    pub image_url: *const c_char,
    /// Category.
    pub category: *const c_char,
}

/// Push options of a message (accepted, not used: rcim has no remote push).
#[repr(C)]
pub struct RcimPushConfig {
    /// Hide the title.
    pub disable_push_title: bool,
    /// Title.
    pub push_title: *const c_char,
    /// Content.
    pub push_content: *const c_char,
    /// Data.
    pub push_data: *const c_char,
    /// Show the full content.
    pub force_show_detail_content: bool,
    /// iOS options.
    pub ios_config: *const RcimIosConfig,
    /// Android options.
    pub android_config: *const RcimAndroidConfig,
    /// HarmonyOS options.
    pub harmony_config: *const RcimHarmonyConfig,
}

/// A message, RC's layout field for field.
///
/// To send, C fills `conv_type`, `target_id`, `object_name` and `content`;
/// `channel_id` must be NULL or empty (rcim has no ultra-group channels); the other
/// fields are ignored. In messages rcim gives (callbacks, history), every pointer
/// is valid only during the callback that hands it out; `received_status` always
/// points at a value, `read_receipt_info`, `read_receipt_info_v2` and
/// `push_config` are NULL, and NULL strings are absent values (`uid` before the
/// server accepted the message, `channel_id` always).
#[repr(C)]
pub struct RcimMessageBox {
    /// The conversation's type.
    pub conv_type: RcimConversationTypeIn,
    /// The conversation's target.
    pub target_id: *const c_char,
    /// The channel (NULL: rcim has none).
    pub channel_id: *const c_char,
    /// rcimd's local id.
    pub message_id: i64,
    /// Sent or received.
    pub direction: RcimMessageDirectionIn,
    /// Who sent it.
    pub sender_id: *const c_char,
    /// Receipt flags.
    pub received_status: *const RcimReceivedStatus,
    /// How far a sent message got.
    pub sent_status: RcimSentStatusIn,
    /// When rcimd stored it (ms).
    pub received_time: i64,
    /// When the server accepted it (ms; 0 while sending).
    pub sent_time: i64,
    /// The type name, e.g. `RC:TxtMsg`.
    pub object_name: *const c_char,
    /// The content (JSON for RC's message types).
    pub content: *const c_char,
    /// Search words (not used by rcim).
    pub searchable_words: *const c_char,
    /// The server's id, once the server has it.
    pub uid: *const c_char,
    /// Extra data (not used by rcim).
    pub extra: *const c_char,
    /// Read receipt state (NULL in rcim).
    pub read_receipt_info: *const RcimReadReceiptInfo,
    /// Group read receipt state (NULL in rcim).
    pub read_receipt_info_v2: *const RcimReadReceiptInfoV2,
    /// Whether notifications are off for it.
    pub is_notification_disabled: bool,
    /// Push options (NULL in rcim).
    pub push_config: *const RcimPushConfig,
    /// Whether it came through the offline sync.
    pub is_offline: bool,
    /// Whether it supports expansion (false in rcim).
    pub is_ext_supported: bool,
    /// Expansion content (NULL in rcim).
    pub ext_content: *const c_char,
}

/// Where a received message sits in its sync package.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RcimReceivedInfo {
    /// How many more of the current package follow.
    pub left: i32,
    /// Whether more packages wait on the server.
    pub has_package: bool,
    /// Whether it came through the offline sync after a (re)connect.
    pub is_offline: bool,
}

/// What `rcim_engine_send_message` takes besides the message (accepted; rcim sends
/// no VoIP pushes, directed messages or end-to-end encryption: a non-empty
/// `user_ids` or `encrypted` is refused with 34296 / 34209).
#[repr(C)]
pub struct RcimSendMessageOption {
    /// VoIP push (ignored).
    pub is_voip_push: bool,
    /// Directed message recipients (must be empty).
    pub user_ids: *const *const c_char,
    /// How many `user_ids` holds.
    pub user_ids_len: i32,
    /// End-to-end encrypted (must be false).
    pub encrypted: bool,
}

/// A conversation, RC's layout field for field. Pointers are valid only during the
/// callback that hands it out.
#[repr(C)]
pub struct RcimConversation {
    /// Its type.
    pub conv_type: RcimConversationTypeIn,
    /// Its target.
    pub target_id: *const c_char,
    /// The channel (NULL: rcim has none).
    pub channel_id: *const c_char,
    /// Messages received and not yet cleared.
    pub unread_message_count: i32,
    /// Pinned (false: rcim has no pinning).
    pub is_pinned: bool,
    /// The newest received message's time (ms), 0 when none.
    pub last_received_time: i64,
    /// The newest message's sent time (ms).
    pub last_sent_time: i64,
    /// The time conversations are ordered and paged by (ms).
    pub last_operate_time: i64,
    /// The newest message's type name.
    pub object_name: *const c_char,
    /// The newest message's sender.
    pub sender_user_id: *const c_char,
    /// The newest message's local id.
    pub last_message_id: i64,
    /// The newest message's content.
    pub last_message_content: *const c_char,
    /// The draft (NULL: rcim keeps none).
    pub draft: *const c_char,
    /// The notification level.
    pub mute_level: RcimPushNotificationMuteLevelIn,
    /// Unread mentions (0 in rcim).
    pub mentioned_count: i32,
    /// Search matches (0 outside searches).
    pub match_count: u32,
}

/// A conversation's identity, for calls over several conversations.
#[repr(C)]
pub struct RcimConversationIdentifier {
    /// Its type.
    pub conv_type: RcimConversationTypeIn,
    /// Its target.
    pub target_id: *const c_char,
    /// The channel (NULL or empty).
    pub channel_id: *const c_char,
}

/// Database status listener: `status` after each change.
pub type RcimDatabaseStatusLsr =
    Option<unsafe extern "C" fn(context: *const c_void, status_c: RcimDatabaseStatus)>;
/// Connection status listener.
pub type RcimConnectionStatusLsr =
    Option<unsafe extern "C" fn(context: *const c_void, status: RcimConnectionStatus)>;
/// Connect result: `code`, and the user id on success (NULL otherwise).
pub type RcimConnectCb = Option<
    unsafe extern "C" fn(context: *const c_void, code: RcimEngineError, user_id: *const c_char),
>;
/// A result code alone.
pub type RcimEngineErrorCb =
    Option<unsafe extern "C" fn(context: *const c_void, code: RcimEngineError)>;
/// Message received listener.
pub type RcimMessageReceivedLsr = Option<
    unsafe extern "C" fn(
        context: *const c_void,
        msg_box: *const RcimMessageBox,
        info: *const RcimReceivedInfo,
    ),
>;
/// Offline sync completed listener.
pub type RcimOfflineMessageSyncCompletedLsr = Option<unsafe extern "C" fn(context: *const c_void)>;
/// A result code and a message (NULL when there is none).
pub type RcimCodeMessageCb = Option<
    unsafe extern "C" fn(
        context: *const c_void,
        code: RcimEngineError,
        msg_box: *const RcimMessageBox,
    ),
>;
/// A message.
pub type RcimMessageCb =
    Option<unsafe extern "C" fn(context: *const c_void, msg_box: *const RcimMessageBox)>;
/// A result code and a list of messages.
pub type RcimGetMessageListCb = Option<
    unsafe extern "C" fn(
        context: *const c_void,
        code: RcimEngineError,
        msg_box_vec: *const RcimMessageBox,
        msg_box_vec_len: i32,
    ),
>;
/// A result code and a list of conversations.
pub type RcimGetConversationListCb = Option<
    unsafe extern "C" fn(
        context: *const c_void,
        code: RcimEngineError,
        conv_raw_vec: *const RcimConversation,
        conv_raw_vec_len: i32,
    ),
>;
/// A result code and one conversation (NULL on error).
pub type RcimGetConversationCb = Option<
    unsafe extern "C" fn(
        context: *const c_void,
        code: RcimEngineError,
        conv: *const RcimConversation,
    ),
>;
/// A result code and a count.
pub type RcimGetCountCb =
    Option<unsafe extern "C" fn(context: *const c_void, code: RcimEngineError, count: i64)>;
