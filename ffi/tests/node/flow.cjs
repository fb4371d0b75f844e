// An app in Node driving librcim_client through koffi, the way an Electron main
// process would: build, connect, send, receive, destroy. Run by
// ffi/tests/node.rs against a real rcimd.
//
// argv: koffi's directory, the library, a token. stdout: CONNECTED, SENT, READY
// (the test then has bob send alice a message), OK; "FAIL: ..." and exit 1.
//
// The library's callbacks come from its own threads; koffi runs them on the JS
// main thread when the event loop turns, so this app never blocks the loop while
// it waits, and destroys the engine with an async call (a destroy that waits for
// a callback queued behind the blocked main thread would never return).
'use strict';

const [koffiDir, libPath, token] = process.argv.slice(2);
const koffi = require(koffiDir);

function fail(what) {
  console.log(`FAIL: ${what}`);
  process.exit(1);
}
// Also what keeps the event loop alive while the app waits for callbacks: koffi's
// callbacks from other threads do not.
setTimeout(() => fail('timed out'), 60000);

const lib = koffi.load(libPath);
koffi.struct('RcimEngineBuilderParam', {
  app_key: 'const char *',
  platform: 'int',
  device_id: 'const char *',
  package_name: 'const char *',
  imlib_version: 'const char *',
  device_model: 'const char *',
  device_manufacturer: 'const char *',
  os_version: 'const char *',
  sdk_version_vec: 'void *',
  sdk_version_vec_len: 'int32_t',
  app_version: 'const char *',
});
koffi.struct('RcimMessageBox', {
  conv_type: 'int',
  target_id: 'const char *',
  channel_id: 'const char *',
  message_id: 'int64_t',
  direction: 'int',
  sender_id: 'const char *',
  received_status: 'void *',
  sent_status: 'int',
  received_time: 'int64_t',
  sent_time: 'int64_t',
  object_name: 'const char *',
  content: 'const char *',
  searchable_words: 'const char *',
  uid: 'const char *',
  extra: 'const char *',
  read_receipt_info: 'void *',
  read_receipt_info_v2: 'void *',
  is_notification_disabled: 'bool',
  push_config: 'void *',
  is_offline: 'bool',
  is_ext_supported: 'bool',
  ext_content: 'const char *',
});
koffi.struct('RcimReceivedInfo', { left: 'int32_t', has_package: 'bool', is_offline: 'bool' });
const ConnectCb = koffi.proto('void RcimConnectCb(const void *context, int code, const char *user_id)');
const CodeMessageCb = koffi.proto('void RcimCodeMessageCb(const void *context, int code, RcimMessageBox *msg)');
const MessageCb = koffi.proto('void RcimMessageCb(const void *context, RcimMessageBox *msg)');
const ReceivedLsr = koffi.proto(
  'void RcimMessageReceivedLsr(const void *context, RcimMessageBox *msg, RcimReceivedInfo *info)');

const createBuilder = lib.func('int rcim_create_engine_builder(RcimEngineBuilderParam *param, _Out_ void **builder)');
const build = lib.func('int rcim_engine_builder_build(void *builder, _Out_ void **engine)');
const destroy = lib.func('int rcim_destroy_engine(void *engine)');
const setReceived = lib.func('int rcim_engine_set_message_received_listener(void *engine, const void *context, RcimMessageReceivedLsr *listener)');
const connect = lib.func('void rcim_engine_connect(void *engine, const char *token, int32_t timeout, const void *context, RcimConnectCb *callback)');
const send = lib.func('void rcim_engine_send_message(void *engine, RcimMessageBox *msg, const void *option, const void *context, RcimCodeMessageCb *ret_cb, RcimMessageCb *saved_cb)');

function waiter() {
  let resolve;
  const promise = new Promise((r) => { resolve = r; });
  return { promise, resolve };
}

async function main() {
  const builder = [null];
  if (createBuilder({ app_key: 'test-app-key', platform: 6, package_name: 'node-app' }, builder) !== 0) fail('builder');
  const engine = [null];
  if (build(builder[0], engine) !== 0) fail('build');

  const received = waiter();
  const onReceived = koffi.register((context, msg, info) => {
    const box = koffi.decode(msg, 'RcimMessageBox');
    if (box.sender_id === 'bob' && box.content.includes('from bob')) received.resolve(box);
  }, koffi.pointer(ReceivedLsr));
  if (setReceived(engine[0], null, onReceived) !== 0) fail('listener');

  const connected = waiter();
  const onConnect = koffi.register((context, code, userId) => connected.resolve([code, userId]),
    koffi.pointer(ConnectCb));
  connect(engine[0], token, 20, null, onConnect);
  const [code, userId] = await connected.promise;
  if (code !== 0 || userId !== 'alice') fail(`connect ${code} ${userId}`);
  console.log('CONNECTED');

  let savedId = 0;
  const sent = waiter();
  const onSaved = koffi.register((context, msg) => {
    savedId = Number(koffi.decode(msg, 'RcimMessageBox').message_id);
  }, koffi.pointer(MessageCb));
  const onSent = koffi.register((context, code, msg) => {
    sent.resolve([code, msg ? koffi.decode(msg, 'RcimMessageBox').uid : null]);
  }, koffi.pointer(CodeMessageCb));
  send(engine[0], {
    conv_type: 1, target_id: 'bob', object_name: 'RC:TxtMsg', content: '{"content":"hello from node"}',
  }, null, null, onSent, onSaved);
  const [sentCode, uid] = await sent.promise;
  if (sentCode !== 0 || !uid) fail(`send ${sentCode} ${uid}`);
  if (savedId <= 0) fail('no onMessageSaved with a local id');
  console.log('SENT');

  console.log('READY');
  const box = await received.promise;
  if (box.conv_type !== 1 || box.direction !== 2) fail(`received ${JSON.stringify(box)}`);

  const destroyed = await new Promise((resolve, reject) => {
    destroy.async(engine[0], (err, res) => (err ? reject(err) : resolve(res)));
  });
  if (destroyed !== 0) fail(`destroy ${destroyed}`);
  for (const cb of [onReceived, onConnect, onSaved, onSent]) koffi.unregister(cb);
  console.log('OK');
  process.exit(0);
}

main().catch((e) => fail(e.stack || String(e)));
