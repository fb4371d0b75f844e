"""An app in Python driving librcim_client through ctypes, the way RC's own Python
wrapper drives RC's library: build an engine, connect, send, receive, destroy.

Run by ffi/tests/python.rs, two at a time with one token, against one rcimd.
argv: library path, token, this app's name. stdout: CONNECTED, SENT, READY (the
test then has bob send alice a message), OK; "FAIL: ..." and exit 1 otherwise.
"""

import ctypes as C
import sys
import threading

lib_path, token, name = sys.argv[1], sys.argv[2], sys.argv[3]
lib = C.CDLL(lib_path)


def fail(what):
    print(f"FAIL: {what}", flush=True)
    sys.exit(1)


class BuilderParam(C.Structure):
    _fields_ = [
        ("app_key", C.c_char_p),
        ("platform", C.c_int),
        ("device_id", C.c_char_p),
        ("package_name", C.c_char_p),
        ("imlib_version", C.c_char_p),
        ("device_model", C.c_char_p),
        ("device_manufacturer", C.c_char_p),
        ("os_version", C.c_char_p),
        ("sdk_version_vec", C.c_void_p),
        ("sdk_version_vec_len", C.c_int32),
        ("app_version", C.c_char_p),
    ]


class MessageBox(C.Structure):
    _fields_ = [
        ("conv_type", C.c_int),
        ("target_id", C.c_char_p),
        ("channel_id", C.c_char_p),
        ("message_id", C.c_int64),
        ("direction", C.c_int),
        ("sender_id", C.c_char_p),
        ("received_status", C.c_void_p),
        ("sent_status", C.c_int),
        ("received_time", C.c_int64),
        ("sent_time", C.c_int64),
        ("object_name", C.c_char_p),
        ("content", C.c_char_p),
        ("searchable_words", C.c_char_p),
        ("uid", C.c_char_p),
        ("extra", C.c_char_p),
        ("read_receipt_info", C.c_void_p),
        ("read_receipt_info_v2", C.c_void_p),
        ("is_notification_disabled", C.c_bool),
        ("push_config", C.c_void_p),
        ("is_offline", C.c_bool),
        ("is_ext_supported", C.c_bool),
        ("ext_content", C.c_char_p),
    ]


class ReceivedInfo(C.Structure):
    _fields_ = [("left", C.c_int32), ("has_package", C.c_bool), ("is_offline", C.c_bool)]


ConnectCb = C.CFUNCTYPE(None, C.c_void_p, C.c_int, C.c_char_p)
CodeMessageCb = C.CFUNCTYPE(None, C.c_void_p, C.c_int, C.POINTER(MessageBox))
MessageCb = C.CFUNCTYPE(None, C.c_void_p, C.POINTER(MessageBox))
ReceivedLsr = C.CFUNCTYPE(None, C.c_void_p, C.POINTER(MessageBox), C.POINTER(ReceivedInfo))

lib.rcim_create_engine_builder.argtypes = [C.POINTER(BuilderParam), C.POINTER(C.c_void_p)]
lib.rcim_engine_builder_build.argtypes = [C.c_void_p, C.POINTER(C.c_void_p)]
lib.rcim_destroy_engine.argtypes = [C.c_void_p]
lib.rcim_engine_connect.argtypes = [C.c_void_p, C.c_char_p, C.c_int32, C.c_void_p, ConnectCb]
lib.rcim_engine_connect.restype = None
lib.rcim_engine_set_message_received_listener.argtypes = [C.c_void_p, C.c_void_p, ReceivedLsr]
lib.rcim_engine_send_message.argtypes = [
    C.c_void_p, C.POINTER(MessageBox), C.c_void_p, C.c_void_p, CodeMessageCb, MessageCb,
]
lib.rcim_engine_send_message.restype = None

TXT = b"RC:TxtMsg"
PRIVATE = 1  # RcimConversationType_Private
SUCCESS = 0
MY_CONTEXT = C.c_void_p(0x5EED)

connected = threading.Event()
sent = threading.Event()
received = threading.Event()
result = {}


def check_context(context):
    if context != MY_CONTEXT.value:
        result["bad_context"] = context


@ConnectCb
def on_connect(context, code, user_id):
    check_context(context)
    result["connect"] = (code, user_id.decode() if user_id else None)
    connected.set()


@CodeMessageCb
def on_sent(context, code, msg):
    check_context(context)
    result["sent"] = (code, msg.contents.uid.decode() if msg and msg.contents.uid else None)
    sent.set()


@MessageCb
def on_saved(context, msg):
    check_context(context)
    result["saved_id"] = msg.contents.message_id


@ReceivedLsr
def on_received(context, msg, info):
    check_context(context)
    box = msg.contents
    if box.sender_id == b"bob" and b"from bob" in box.content:
        result["received"] = box.content.decode()
        received.set()


param = BuilderParam(app_key=b"test-app-key", platform=5, package_name=name.encode())
builder = C.c_void_p()
if lib.rcim_create_engine_builder(C.byref(param), C.byref(builder)) != SUCCESS:
    fail("create builder")
engine = C.c_void_p()
if lib.rcim_engine_builder_build(builder, C.byref(engine)) != SUCCESS:
    fail("build")
if lib.rcim_engine_set_message_received_listener(engine, MY_CONTEXT, on_received) != SUCCESS:
    fail("message listener")

lib.rcim_engine_connect(engine, token.encode(), 20, MY_CONTEXT, on_connect)
if not connected.wait(20) or result["connect"] != (SUCCESS, "alice"):
    fail(f"connect: {result.get('connect')}")
print("CONNECTED", flush=True)

msg = MessageBox(conv_type=PRIVATE, target_id=b"bob", object_name=TXT,
                 content=('{"content":"hello from %s"}' % name).encode())
lib.rcim_engine_send_message(engine, C.byref(msg), None, MY_CONTEXT, on_sent, on_saved)
if not sent.wait(20) or result["sent"][0] != SUCCESS or not result["sent"][1]:
    fail(f"send: {result.get('sent')}")
if result.get("saved_id", 0) <= 0:
    fail(f"onMessageSaved did not come first: {result.get('saved_id')}")
print("SENT", flush=True)

print("READY", flush=True)
if not received.wait(20):
    fail("no message from bob")
if "bad_context" in result:
    fail(f"the context came back changed: {result['bad_context']}")
if lib.rcim_destroy_engine(engine) != SUCCESS:
    fail("destroy")
print("OK", flush=True)
