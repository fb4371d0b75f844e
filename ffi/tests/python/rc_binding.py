"""An app driving librcim_client through RC's *own* generated ctypes binding
(`rcim_client.py` from RC's wheel, which loads `librust_universal_imsdk.so` from
its own directory; ffi/tests/python.rs puts our library there under that name).
Every struct layout and callback type here is RC's, not ours.

argv: token. stdout: CONNECTED, SENT, READY (the test then has bob send alice a
message), OK; "FAIL: ..." and exit 1 otherwise.
"""

import ctypes
import sys
import threading

import rcim_client as rc  # RC's binding, from PYTHONPATH

token = sys.argv[1]


def fail(what):
    print(f"FAIL: {what}", flush=True)
    sys.exit(1)


def c_str(text):
    return ctypes.cast(ctypes.c_char_p(text.encode()), ctypes.POINTER(ctypes.c_char))


def py_str(ptr):
    return ctypes.cast(ptr, ctypes.c_char_p).value.decode() if ptr else None


connected = threading.Event()
sent = threading.Event()
received = threading.Event()
result = {}


@rc.RcimConnectCb
def on_connect(context, code, user_id):
    result["connect"] = (code, py_str(user_id))
    connected.set()


@rc.RcimCodeMessageCb
def on_sent(context, code, msg):
    result["sent"] = (code, py_str(msg.contents.uid) if msg else None)
    sent.set()


@rc.RcimMessageCb
def on_saved(context, msg):
    result["saved"] = msg.contents.message_id


@rc.RcimMessageReceivedLsr
def on_received(context, msg, info):
    box = msg.contents
    if py_str(box.sender_id) == "bob" and "from bob" in py_str(box.content):
        result["received"] = (box.conv_type, info.contents.left)
        received.set()


keep = [c_str("test-app-key"), c_str("rc-binding-app")]
param = rc.RcimEngineBuilderParam()
param.app_key = keep[0]
param.platform = rc.RcimPlatform_Linux
param.package_name = keep[1]
builder = ctypes.POINTER(rc.RcimEngineBuilder)()
if rc.rcim_create_engine_builder(ctypes.byref(param), ctypes.byref(builder)) != rc.RcimEngineError_Success:
    fail("create builder")
path = c_str("/tmp")
if rc.rcim_engine_builder_set_store_path(builder, path) != rc.RcimEngineError_Success:
    fail("store path")
if rc.rcim_engine_builder_set_area_code(builder, rc.RcimAreaCode_Bj) != rc.RcimEngineError_Success:
    fail("area code")
engine = ctypes.POINTER(rc.RcimEngineSync)()
if rc.rcim_engine_builder_build(builder, ctypes.byref(engine)) != rc.RcimEngineError_Success:
    fail("build")
if rc.rcim_engine_set_message_received_listener(engine, None, on_received) != rc.RcimEngineError_Success:
    fail("message listener")

token_ptr = c_str(token)
rc.rcim_engine_connect(engine, token_ptr, 20, None, on_connect)
if not connected.wait(20) or result["connect"] != (rc.RcimEngineError_Success, "alice"):
    fail(f"connect: {result.get('connect')}")
status = rc.RcimConnectionStatus()
if rc.rcim_engine_get_connection_status(engine, ctypes.byref(status)) != 0 or status.value != rc.RcimConnectionStatus_Connected:
    fail(f"status {status.value}")
print("CONNECTED", flush=True)

box = rc.RcimMessageBox()
box.conv_type = rc.RcimConversationType_Private
parts = [c_str("bob"), c_str("RC:TxtMsg"), c_str('{"content":"hello through RC\'s binding"}')]
box.target_id, box.object_name, box.content = parts
rc.rcim_engine_send_message(engine, ctypes.byref(box), None, None, on_sent, on_saved)
if not sent.wait(20) or result["sent"][0] != rc.RcimEngineError_Success or not result["sent"][1]:
    fail(f"send: {result.get('sent')}")
if result.get("saved", 0) <= 0:
    fail("no onMessageSaved with a local id")
print("SENT", flush=True)

print("READY", flush=True)
if not received.wait(20):
    fail("no message from bob")
if result["received"][0] != rc.RcimConversationType_Private:
    fail(f"received {result['received']}")
if rc.rcim_destroy_engine(engine) != rc.RcimEngineError_Success:
    fail("destroy")
print("OK", flush=True)
