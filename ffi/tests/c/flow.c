/*
 * The full flow of an app written against RC's native C ABI (rcim_client.h),
 * run by ffi/tests/c_abi.rs against a real rcimd and rcim-server. It compiles
 * against either header: ours (ffi/include) or RC's own.
 *
 * argv[1]: a token for alice. stdout: one line per step; "READY" asks the test to
 * have bob send alice a message; "OK" at the end. Any failed check prints
 * "FAIL: ..." and exits 1.
 */
#include "rcim_client.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            printf("FAIL: %s:%d: ", __FILE__, __LINE__);                    \
            printf(__VA_ARGS__);                                            \
            printf("\n");                                                   \
            fflush(stdout);                                                 \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

/* What the callbacks saw; guarded by `lock`, `changed` broadcast on each change. */
typedef struct Seen {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int events; /* how many callbacks ran, in order */
    int database_opened_at;
    int database_status;
    int connected_at;
    int connect_code;
    int connect_done;
    char user_id[64];
    int status_connected;
    int status_logout;
    int saved_at;
    int64_t saved_id;
    int saved_status;
    int sent_at;
    int sent_code;
    int sent_done;
    char sent_uid[128];
    int64_t sent_time;
    int sent_status;
    int received;
    char received_content[256];
    char received_sender[64];
    int received_conv_type;
    int received_direction;
    int code_cb_count;
    int last_code;
    int list_done;
    int list_code;
    int list_len;
    char list_first_sender[64];
    char list_last_sender[64];
    int64_t list_count; /* unread count or conversation count */
    int list_unread;
    char list_target[64];
    pthread_t callback_thread;
} Seen;

static Seen seen = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .changed = PTHREAD_COND_INITIALIZER,
    .database_opened_at = -1,
    .connected_at = -1,
    .saved_at = -1,
    .sent_at = -1,
};

static pthread_t main_thread;

static void note(void) {
    seen.events++;
    pthread_cond_broadcast(&seen.changed);
    pthread_mutex_unlock(&seen.lock);
}

static Seen *enter(const void *context) {
    CHECK(context == &seen, "the context pointer came back changed");
    CHECK(!pthread_equal(pthread_self(), main_thread), "a callback ran on the calling thread");
    pthread_mutex_lock(&seen.lock);
    return &seen;
}

/* Waits until `*flag` is non-zero, at most 15 s. */
static void wait_for(int *flag, const char *what) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 15;
    pthread_mutex_lock(&seen.lock);
    while (!*flag) {
        if (pthread_cond_timedwait(&seen.changed, &seen.lock, &deadline) != 0) {
            pthread_mutex_unlock(&seen.lock);
            CHECK(0, "timed out waiting for %s", what);
        }
    }
    pthread_mutex_unlock(&seen.lock);
}

static void on_database(const void *context, enum RcimDatabaseStatus status) {
    Seen *s = enter(context);
    s->database_status = status;
    s->database_opened_at = s->events;
    note();
}

static void on_connect(const void *context, enum RcimEngineError code, const char *user_id) {
    Seen *s = enter(context);
    s->connect_code = code;
    s->connected_at = s->events;
    s->connect_done = 1;
    if (user_id) snprintf(s->user_id, sizeof s->user_id, "%s", user_id);
    note();
}

static void on_status(const void *context, enum RcimConnectionStatus status) {
    Seen *s = enter(context);
    if (status == RcimConnectionStatus_Connected) s->status_connected = 1;
    if (status == RcimConnectionStatus_DisconnectUserLogout) s->status_logout = 1;
    note();
}

static void on_saved(const void *context, const struct RcimMessageBox *msg) {
    Seen *s = enter(context);
    CHECK(msg != NULL, "onMessageSaved without a message");
    s->saved_at = s->events;
    s->saved_id = msg->message_id;
    s->saved_status = msg->sent_status;
    note();
}

static void on_sent(const void *context, enum RcimEngineError code, const struct RcimMessageBox *msg) {
    Seen *s = enter(context);
    s->sent_at = s->events;
    s->sent_done = 1;
    s->sent_code = code;
    if (msg) {
        if (msg->uid) snprintf(s->sent_uid, sizeof s->sent_uid, "%s", msg->uid);
        s->sent_time = msg->sent_time;
        s->sent_status = msg->sent_status;
    }
    note();
}

static void on_received(const void *context, const struct RcimMessageBox *msg,
                        const struct RcimReceivedInfo *info) {
    Seen *s = enter(context);
    CHECK(msg != NULL && info != NULL, "a received message without its box or info");
    snprintf(s->received_content, sizeof s->received_content, "%s", msg->content);
    snprintf(s->received_sender, sizeof s->received_sender, "%s", msg->sender_id);
    s->received_conv_type = msg->conv_type;
    s->received_direction = msg->direction;
    CHECK(msg->received_status != NULL, "received_status is NULL");
    s->received++;
    note();
}

static void on_sync_completed(const void *context) {
    enter(context);
    note();
}

static void on_code(const void *context, enum RcimEngineError code) {
    Seen *s = enter(context);
    s->last_code = code;
    s->code_cb_count++;
    note();
}

static void on_connect_code(const void *context, enum RcimEngineError code, const char *user_id) {
    Seen *s = enter(context);
    CHECK(user_id == NULL, "a failed connect has a user id");
    s->last_code = code;
    s->code_cb_count++;
    note();
}

static void on_sent_code(const void *context, enum RcimEngineError code, const struct RcimMessageBox *msg) {
    Seen *s = enter(context);
    CHECK(msg == NULL, "a refused send has a message");
    s->last_code = code;
    s->code_cb_count++;
    note();
}

static void on_messages(const void *context, enum RcimEngineError code,
                        const struct RcimMessageBox *vec, int32_t len) {
    Seen *s = enter(context);
    s->list_code = code;
    s->list_len = len;
    if (len > 0) {
        snprintf(s->list_first_sender, sizeof s->list_first_sender, "%s", vec[0].sender_id);
        snprintf(s->list_last_sender, sizeof s->list_last_sender, "%s", vec[len - 1].sender_id);
        for (int i = 1; i < len; i++)
            CHECK(vec[i - 1].sent_time <= vec[i].sent_time, "history is not oldest first");
    }
    s->list_done = 1;
    note();
}

static void on_conversations(const void *context, enum RcimEngineError code,
                             const struct RcimConversation *vec, int32_t len) {
    Seen *s = enter(context);
    s->list_code = code;
    s->list_len = len;
    if (len > 0) {
        snprintf(s->list_target, sizeof s->list_target, "%s", vec[0].target_id);
        s->list_unread = vec[0].unread_message_count;
        CHECK(vec[0].conv_type == RcimConversationType_Private, "conversation type %d", (int)vec[0].conv_type);
    }
    s->list_done = 1;
    note();
}

static void on_conversation(const void *context, enum RcimEngineError code,
                            const struct RcimConversation *conv) {
    Seen *s = enter(context);
    s->list_code = code;
    s->list_len = conv ? 1 : 0;
    if (conv) {
        snprintf(s->list_target, sizeof s->list_target, "%s", conv->target_id);
        s->list_unread = conv->unread_message_count;
    }
    s->list_done = 1;
    note();
}

static void on_count(const void *context, enum RcimEngineError code, int64_t count) {
    Seen *s = enter(context);
    s->list_code = code;
    s->list_count = count;
    s->list_done = 1;
    note();
}

/* Resets the list result before a query. */
static void list_reset(void) {
    pthread_mutex_lock(&seen.lock);
    seen.list_done = 0;
    seen.list_len = -1;
    seen.list_count = -1;
    pthread_mutex_unlock(&seen.lock);
}

/* Counts callbacks of kind "code" and waits for the next one. */
static int next_code(int before) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 15;
    pthread_mutex_lock(&seen.lock);
    while (seen.code_cb_count == before) {
        if (pthread_cond_timedwait(&seen.changed, &seen.lock, &deadline) != 0) {
            pthread_mutex_unlock(&seen.lock);
            CHECK(0, "timed out waiting for a result callback");
        }
    }
    int code = seen.last_code;
    pthread_mutex_unlock(&seen.lock);
    return code;
}

/* The slow callback of the destroy-in-flight check. */
typedef struct Slow {
    volatile int started;
    volatile int finished;
    volatile int after_destroy;
    volatile int destroyed;
} Slow;

static void slow_connect(const void *context, enum RcimEngineError code, const char *user_id) {
    Slow *slow = (Slow *)context;
    (void)code;
    (void)user_id;
    if (slow->destroyed) slow->after_destroy = 1;
    slow->started = 1;
    usleep(300 * 1000);
    slow->finished = 1;
}

static struct RcimEngineSync *build(void) {
    struct RcimEngineBuilderParam param;
    memset(&param, 0, sizeof param);
    param.app_key = "test-app-key";
    param.platform = RcimPlatform_Linux;
    param.package_name = "c-flow";
    struct RcimEngineBuilder *builder = NULL;
    CHECK(rcim_create_engine_builder(&param, &builder) == RcimEngineError_Success, "create builder");
    CHECK(builder != NULL, "no builder");
    CHECK(rcim_engine_builder_set_store_path(builder, "/tmp") == 0, "store path");
    CHECK(rcim_engine_builder_set_file_path(builder, "/tmp") == 0, "file path");
    const char *navi[] = {"https://navi.example.invalid"};
    CHECK(rcim_engine_builder_set_navi_server(builder, navi, 1) == 0, "navi");
    CHECK(rcim_engine_builder_set_statistic_server(builder, "https://stats.example.invalid") == 0, "statistic");
    CHECK(rcim_engine_builder_set_area_code(builder, RcimAreaCode_Bj) == 0, "area code");
    CHECK(rcim_engine_builder_set_db_encrypted(builder, false) == 0, "db encrypted");
    struct RcimEngineSync *engine = NULL;
    CHECK(rcim_engine_builder_build(builder, &engine) == 0, "build");
    CHECK(engine != NULL, "no engine");
    /* The builder is gone once built. */
    CHECK(rcim_destroy_engine_builder(builder) == RcimEngineError_InvalidArgumentEngineBuilder,
          "a built builder was destroyed again");
    return engine;
}

static void hostile_calls(struct RcimEngineSync *engine) {
    int before;
    /* The builder refuses what RC's refuses. */
    struct RcimEngineBuilder *builder = NULL;
    CHECK(rcim_create_engine_builder(NULL, &builder) == RcimEngineError_InvalidArgumentEngineBuilderParam, "NULL param");
    struct RcimEngineBuilderParam param;
    memset(&param, 0, sizeof param);
    CHECK(rcim_create_engine_builder(&param, &builder) == RcimEngineError_InvalidArgumentAppKey, "NULL app key");
    param.app_key = "\xff\xfe";
    CHECK(rcim_create_engine_builder(&param, &builder) == RcimEngineError_InvalidArgumentAppKey, "non-UTF-8 app key");
    param.app_key = "k";
    CHECK(rcim_create_engine_builder(&param, &builder) == 0, "builder");
    CHECK(rcim_engine_builder_set_store_path(builder, NULL) == RcimEngineError_InvalidArgumentFileStoragePath, "NULL path");
    CHECK(rcim_engine_builder_set_navi_server(builder, NULL, 1) == RcimEngineError_InvalidArgumentNaviUrl, "NULL navi");
    CHECK(rcim_engine_builder_set_statistic_server(builder, NULL) == RcimEngineError_InvalidArgumentStatisticUrl, "NULL url");
    CHECK(rcim_engine_builder_set_area_code(builder, (enum RcimAreaCode)99) == RcimEngineError_InvalidEnumOutOfRange, "area 99");
    CHECK(rcim_engine_builder_build(builder, NULL) == RcimEngineError_InvalidArgumentEngineSync, "build into NULL");
    CHECK(rcim_destroy_engine_builder(builder) == RcimEngineError_InvalidArgumentEngineBuilder, "builder gone after build");
    CHECK(rcim_destroy_engine_builder((struct RcimEngineBuilder *)0x1234) == RcimEngineError_InvalidArgumentEngineBuilder, "garbage builder");
    CHECK(rcim_engine_builder_set_store_path(NULL, "/tmp") == RcimEngineError_InvalidArgumentEngineBuilder, "NULL builder");

    /* The engine refuses NULLs, garbage handles and bad arguments, by code. */
    enum RcimConnectionStatus status;
    CHECK(rcim_engine_get_connection_status(engine, NULL) == RcimEngineError_InvalidArgumentConnectionStatus, "NULL out");
    CHECK(rcim_engine_get_connection_status(NULL, &status) == RcimEngineError_InvalidArgumentEngineSync, "NULL engine");
    CHECK(rcim_engine_get_connection_status((struct RcimEngineSync *)0x40, &status) == RcimEngineError_InvalidArgumentEngineSync, "garbage engine");
    CHECK(rcim_engine_set_connection_status_listener(NULL, &seen, on_status) == RcimEngineError_InvalidArgumentEngineSync, "listener on NULL");

    before = seen.code_cb_count;
    rcim_engine_connect(NULL, "token", 5, &seen, on_connect_code);
    CHECK(next_code(before) == RcimEngineError_InvalidArgumentEngineSync, "connect on NULL engine");
    before = seen.code_cb_count;
    rcim_engine_connect(engine, NULL, 5, &seen, on_connect_code);
    CHECK(next_code(before) == RcimEngineError_InvalidArgumentToken, "NULL token");
    before = seen.code_cb_count;
    rcim_engine_connect(engine, "\xc3\x28", 5, &seen, on_connect_code);
    CHECK(next_code(before) == RcimEngineError_InvalidArgumentToken, "non-UTF-8 token");
    rcim_engine_connect(engine, NULL, 5, NULL, NULL); /* NULL callback: nothing to call */

    before = seen.code_cb_count;
    rcim_engine_send_message(engine, NULL, NULL, &seen, on_sent_code, NULL);
    CHECK(next_code(before) == RcimEngineError_InvalidArgumentMessage, "NULL message");
    struct RcimMessageBox *msg = rcim_malloc_message_box();
    CHECK(msg != NULL, "malloc box");
    msg->conv_type = RcimConversationType_Discussion;
    msg->target_id = "bob";
    msg->object_name = "RC:TxtMsg";
    msg->content = "{}";
    before = seen.code_cb_count;
    rcim_engine_send_message(engine, msg, NULL, &seen, on_sent_code, NULL);
    CHECK(next_code(before) == RcimEngineError_InvalidArgumentConversationType, "discussion");
    msg->conv_type = (enum RcimConversationType)12345;
    before = seen.code_cb_count;
    rcim_engine_send_message(engine, msg, NULL, &seen, on_sent_code, NULL);
    CHECK(next_code(before) == RcimEngineError_InvalidArgumentConversationType, "garbage type");
    msg->conv_type = RcimConversationType_Private;
    msg->target_id = NULL;
    before = seen.code_cb_count;
    rcim_engine_send_message(engine, msg, NULL, &seen, on_sent_code, NULL);
    CHECK(next_code(before) == RcimEngineError_InvalidArgumentTargetId, "NULL target");
    msg->target_id = "bob";
    msg->content = NULL;
    before = seen.code_cb_count;
    rcim_engine_send_message(engine, msg, NULL, &seen, on_sent_code, NULL);
    CHECK(next_code(before) == RcimEngineError_InvalidArgumentMessageContent, "NULL content");
    rcim_free_message_box(msg);

    before = seen.code_cb_count;
    rcim_engine_disconnect(engine, (enum RcimDisconnectMode)7, &seen, on_code);
    CHECK(next_code(before) == RcimEngineError_InvalidEnumOutOfRange, "disconnect mode 7");
    before = seen.code_cb_count;
    rcim_engine_clear_messages_unread_status_by_send_time(engine, RcimConversationType_Private, "bob", NULL, 0, &seen, on_code);
    CHECK(next_code(before) == RcimEngineError_InvalidArgumentTimestamp, "clear by time 0");

    list_reset();
    enum RcimConversationType types[] = {RcimConversationType_Private};
    rcim_engine_get_local_conversations_by_page(engine, types, 0, 0, 10, &seen, on_conversations);
    wait_for(&seen.list_done, "conversations with an empty type list");
    CHECK(seen.list_code == RcimEngineError_InvalidArgumentConversationTypeVec, "empty type list: %d", seen.list_code);
    list_reset();
    rcim_engine_get_local_history_messages_by_time(engine, RcimConversationType_Private, "bob", NULL, NULL, 0, 0, -1, 0, &seen, on_messages);
    wait_for(&seen.list_done, "history with a negative count");
    CHECK(seen.list_code == RcimEngineError_InvalidArgumentCount, "negative count: %d", seen.list_code);

    rcim_free_message_box_vec(rcim_malloc_message_box_vec(4), 4);
    rcim_free_message_box(NULL);
    rcim_free_char(NULL);
    printf("hostile calls refused\n");
}

/* Destroys an engine while its callback runs on a library thread: destroy waits
 * for the callback, and nothing of that engine runs afterwards. */
static void destroy_in_flight(const char *token) {
    struct RcimEngineSync *engine = build();
    static Slow slow;
    rcim_engine_connect(engine, token, 10, &slow, slow_connect);
    for (int i = 0; i < 1500 && !slow.started; i++) usleep(10 * 1000);
    CHECK(slow.started, "the slow callback never started");
    CHECK(rcim_destroy_engine(engine) == RcimEngineError_Success, "destroy");
    CHECK(slow.finished, "destroy returned while the engine's callback was still running");
    slow.destroyed = 1;
    CHECK(rcim_destroy_engine(engine) == RcimEngineError_InvalidArgumentEngineSync, "double destroy");
    enum RcimConnectionStatus status;
    CHECK(rcim_engine_get_connection_status(engine, &status) == RcimEngineError_InvalidArgumentEngineSync, "use after destroy");
    usleep(300 * 1000);
    CHECK(!slow.after_destroy, "a callback ran after destroy");
    printf("destroy in flight is safe\n");
}

int main(int argc, char **argv) {
    CHECK(argc == 2, "usage: flow TOKEN");
    const char *token = argv[1];
    main_thread = pthread_self();
    setvbuf(stdout, NULL, _IOLBF, 0);

    struct RcimEngineSync *engine = build();
    CHECK(rcim_engine_set_database_status_listener(engine, &seen, on_database) == 0, "db listener");
    CHECK(rcim_engine_set_connection_status_listener(engine, &seen, on_status) == 0, "status listener");
    CHECK(rcim_engine_set_message_received_listener(engine, &seen, on_received) == 0, "message listener");
    CHECK(rcim_engine_set_offline_message_sync_completed_listener(engine, &seen, on_sync_completed) == 0, "sync listener");

    hostile_calls(engine);

    rcim_engine_connect(engine, token, 20, &seen, on_connect);
    wait_for(&seen.connect_done, "onConnected");
    CHECK(seen.connect_code == RcimEngineError_Success, "connect failed: %d", seen.connect_code);
    CHECK(strcmp(seen.user_id, "alice") == 0, "connected as '%s'", seen.user_id);
    CHECK(seen.database_opened_at >= 0 && seen.database_opened_at < seen.connected_at,
          "the database status (at %d) did not come before onConnected (at %d)",
          seen.database_opened_at, seen.connected_at);
    CHECK(seen.database_status == RcimDatabaseStatus_OpenSuccess, "database status %d", seen.database_status);
    wait_for(&seen.status_connected, "status Connected");
    enum RcimConnectionStatus status = RcimConnectionStatus_Idle;
    CHECK(rcim_engine_get_connection_status(engine, &status) == 0, "get status");
    CHECK(status == RcimConnectionStatus_Connected, "status %d", (int)status);
    printf("connected as %s\n", seen.user_id);

    struct RcimMessageBox msg;
    memset(&msg, 0, sizeof msg);
    msg.conv_type = RcimConversationType_Private;
    msg.target_id = "bob";
    msg.object_name = "RC:TxtMsg";
    msg.content = "{\"content\":\"hello from C\"}";
    rcim_engine_send_message(engine, &msg, NULL, &seen, on_sent, on_saved);
    wait_for(&seen.sent_done, "onMessageSent");
    CHECK(seen.saved_at >= 0 && seen.saved_at < seen.sent_at, "saved (at %d) not before sent (at %d)", seen.saved_at, seen.sent_at);
    CHECK(seen.saved_id > 0, "saved id %lld", (long long)seen.saved_id);
    CHECK(seen.saved_status == RcimSentStatus_SENDING, "saved status %d", seen.saved_status);
    CHECK(seen.sent_code == RcimEngineError_Success, "sent code %d", seen.sent_code);
    CHECK(seen.sent_uid[0] != '\0', "no uid");
    CHECK(seen.sent_time > 0, "no sent time");
    CHECK(seen.sent_status == RcimSentStatus_SENT, "sent status %d", seen.sent_status);
    printf("sent %s\n", seen.sent_uid);

    printf("READY\n");
    wait_for(&seen.received, "a message from bob");
    CHECK(strstr(seen.received_content, "from bob") != NULL, "content %s", seen.received_content);
    CHECK(strcmp(seen.received_sender, "bob") == 0, "sender %s", seen.received_sender);
    CHECK(seen.received_conv_type == RcimConversationType_Private, "conv type %d", seen.received_conv_type);
    CHECK(seen.received_direction == RcimMessageDirection_Receive, "direction %d", seen.received_direction);
    printf("received %s\n", seen.received_content);

    list_reset();
    rcim_engine_get_local_history_messages_by_time(engine, RcimConversationType_Private, "bob", NULL, NULL, 0, 0, 10, 0, &seen, on_messages);
    wait_for(&seen.list_done, "history");
    CHECK(seen.list_code == 0 && seen.list_len == 2, "history: code %d, %d messages", seen.list_code, seen.list_len);
    CHECK(strcmp(seen.list_first_sender, "alice") == 0 && strcmp(seen.list_last_sender, "bob") == 0,
          "history order: %s then %s", seen.list_first_sender, seen.list_last_sender);
    const char *only_text[] = {"RC:TxtMsg"};
    list_reset();
    rcim_engine_get_local_history_messages_by_time(engine, RcimConversationType_Private, "bob", NULL, only_text, 1, 0, 10, 0, &seen, on_messages);
    wait_for(&seen.list_done, "history of text messages");
    CHECK(seen.list_code == 0 && seen.list_len == 2, "filtered history: %d", seen.list_len);
    const char *only_images[] = {"RC:ImgMsg"};
    list_reset();
    rcim_engine_get_local_history_messages_by_time(engine, RcimConversationType_Private, "bob", NULL, only_images, 1, 0, 10, 0, &seen, on_messages);
    wait_for(&seen.list_done, "history of image messages");
    CHECK(seen.list_code == 0 && seen.list_len == 0, "no images: %d", seen.list_len);
    /* By id: what follows our own message is bob's; the message itself is not
     * part of the answer. */
    list_reset();
    rcim_engine_get_local_history_messages_by_id(engine, RcimConversationType_Private, "bob", NULL, NULL, 0, seen.saved_id, 10, 10, &seen, on_messages);
    wait_for(&seen.list_done, "history by id");
    CHECK(seen.list_code == 0 && seen.list_len == 1, "by id: code %d, %d messages", seen.list_code, seen.list_len);
    CHECK(strcmp(seen.list_first_sender, "bob") == 0, "by id: %s", seen.list_first_sender);
    list_reset();
    rcim_engine_get_local_history_messages_by_id(engine, RcimConversationType_Private, "bob", NULL, NULL, 0, 987654, 10, 10, &seen, on_messages);
    wait_for(&seen.list_done, "history by an unknown id");
    CHECK(seen.list_code == RcimEngineError_DatabaseTargetNotFound && seen.list_len == 0, "unknown id: %d", seen.list_code);
    list_reset();
    rcim_engine_get_local_history_messages_by_id(engine, RcimConversationType_Private, "bob", NULL, NULL, 0, 0, 10, 10, &seen, on_messages);
    wait_for(&seen.list_done, "history by id 0");
    CHECK(seen.list_code == RcimEngineError_InvalidArgumentMessageId, "id 0: %d", seen.list_code);
    printf("history ok\n");

    enum RcimConversationType types[] = {RcimConversationType_Private, RcimConversationType_Group};
    list_reset();
    rcim_engine_get_local_conversations_by_page(engine, types, 2, 0, 10, &seen, on_conversations);
    wait_for(&seen.list_done, "conversations");
    CHECK(seen.list_code == 0 && seen.list_len == 1, "conversations: code %d, %d", seen.list_code, seen.list_len);
    CHECK(strcmp(seen.list_target, "bob") == 0 && seen.list_unread == 1, "conversation %s unread %d", seen.list_target, seen.list_unread);
    printf("conversations ok\n");

    list_reset();
    rcim_engine_get_total_unread_count(engine, &seen, on_count);
    wait_for(&seen.list_done, "total unread");
    CHECK(seen.list_code == 0 && seen.list_count == 1, "total unread %lld", (long long)seen.list_count);
    list_reset();
    rcim_engine_get_unread_count(engine, RcimConversationType_Private, "bob", NULL, &seen, on_count);
    wait_for(&seen.list_done, "unread of bob");
    CHECK(seen.list_code == 0 && seen.list_count == 1, "unread of bob %lld", (long long)seen.list_count);
    list_reset();
    rcim_engine_get_local_conversation(engine, RcimConversationType_Private, "bob", NULL, &seen, on_conversation);
    wait_for(&seen.list_done, "the conversation with bob");
    CHECK(seen.list_code == 0 && seen.list_len == 1 && strcmp(seen.list_target, "bob") == 0 && seen.list_unread == 1,
          "conversation with bob: code %d", seen.list_code);
    list_reset();
    rcim_engine_get_local_conversation(engine, RcimConversationType_Private, "carol", NULL, &seen, on_conversation);
    wait_for(&seen.list_done, "a conversation that does not exist");
    CHECK(seen.list_code == RcimEngineError_DatabaseTargetNotFound && seen.list_len == 0, "carol: %d", seen.list_code);
    enum RcimConversationType private_only[] = {RcimConversationType_Private};
    enum RcimConversationType foreign_only[] = {RcimConversationType_Discussion, RcimConversationType_Group};
    list_reset();
    rcim_engine_get_unread_count_by_conversation_types(engine, private_only, 1, true, &seen, on_count);
    wait_for(&seen.list_done, "unread of private conversations");
    CHECK(seen.list_code == 0 && seen.list_count == 1, "private unread %lld", (long long)seen.list_count);
    list_reset();
    rcim_engine_get_unread_count_by_conversation_types(engine, foreign_only, 2, true, &seen, on_count);
    wait_for(&seen.list_done, "unread of other types");
    CHECK(seen.list_code == 0 && seen.list_count == 0, "other unread %lld", (long long)seen.list_count);
    struct RcimConversationIdentifier *ids = rcim_malloc_conversation_identifier_vec(2);
    CHECK(ids != NULL, "malloc identifiers");
    ids[0].conv_type = RcimConversationType_Private;
    ids[0].target_id = "bob";
    ids[1].conv_type = RcimConversationType_Group;
    ids[1].target_id = "team";
    list_reset();
    rcim_engine_get_unread_count_by_conversations(engine, ids, 2, &seen, on_count);
    wait_for(&seen.list_done, "unread of listed conversations");
    CHECK(seen.list_code == 0 && seen.list_count == 1, "listed unread %lld", (long long)seen.list_count);
    rcim_free_conversation_identifier_vec(ids, 2);
    char *version = NULL;
    CHECK(rcim_engine_get_sdk_version(engine, &version) == 0 && version != NULL, "sdk version");
    CHECK(strncmp(version, "rcim-ffi ", 9) == 0, "version %s", version);
    rcim_free_char(version);
    CHECK(rcim_engine_get_sdk_version(engine, NULL) == RcimEngineError_InvalidArgumentVersion, "NULL out_ver");

    int before = seen.code_cb_count;
    rcim_engine_clear_messages_unread_status(engine, RcimConversationType_Private, "bob", NULL, &seen, on_code);
    CHECK(next_code(before) == RcimEngineError_Success, "clear unread");
    list_reset();
    rcim_engine_get_total_unread_count(engine, &seen, on_count);
    wait_for(&seen.list_done, "total unread after clearing");
    CHECK(seen.list_code == 0 && seen.list_count == 0, "total unread after clearing %lld", (long long)seen.list_count);
    printf("unread ok\n");

    destroy_in_flight(token);

    before = seen.code_cb_count;
    rcim_engine_disconnect(engine, RcimDisconnectMode_KeepPush, &seen, on_code);
    CHECK(next_code(before) == RcimEngineError_Success, "disconnect");
    wait_for(&seen.status_logout, "status DisconnectUserLogout");
    printf("disconnected\n");

    CHECK(rcim_destroy_engine(engine) == RcimEngineError_Success, "destroy");
    CHECK(rcim_destroy_engine(engine) == RcimEngineError_InvalidArgumentEngineSync, "double destroy");
    printf("OK\n");
    return 0;
}
