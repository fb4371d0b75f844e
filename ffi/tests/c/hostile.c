/*
 * Hostile use of librcim_client, run by ffi/tests/c_abi.rs against a real rcimd:
 * callbacks that call back into the library (connect from inside the status
 * listener, send from inside onConnected, destroy from inside the engine's own
 * callback), 100 threads calling one engine at once, and 100 threads calling an
 * engine while another thread destroys it.
 *
 * argv[1]: a token for alice. Prints "OK" at the end, "FAIL: ..." and exits 1 on a
 * failed check.
 */
#include "rcim_client.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

#define THREADS 100

static const char *token;

/* Polls `counter` until it reaches `want`, at most 30 s. */
static void wait_count(atomic_int *counter, int want, const char *what) {
    for (int i = 0; i < 3000 && atomic_load(counter) < want; i++) usleep(10 * 1000);
    CHECK(atomic_load(counter) >= want, "%s: %d of %d", what, atomic_load(counter), want);
}

static struct RcimEngineSync *build(void) {
    struct RcimEngineBuilderParam param;
    memset(&param, 0, sizeof param);
    param.app_key = "test-app-key";
    param.package_name = "c-hostile";
    struct RcimEngineBuilder *builder = NULL;
    CHECK(rcim_create_engine_builder(&param, &builder) == 0, "builder");
    struct RcimEngineSync *engine = NULL;
    CHECK(rcim_engine_builder_build(builder, &engine) == 0, "build");
    return engine;
}

static void send_to_bob(struct RcimEngineSync *engine, const void *context,
                        RcimCodeMessageCb sent, RcimMessageCb saved) {
    struct RcimMessageBox msg;
    memset(&msg, 0, sizeof msg);
    msg.conv_type = RcimConversationType_Private;
    msg.target_id = "bob";
    msg.object_name = "RC:TxtMsg";
    msg.content = "{\"content\":\"hostile\"}";
    rcim_engine_send_message(engine, &msg, NULL, context, sent, saved);
}

/* ---- re-entry ---- */

static struct RcimEngineSync *main_engine;
static atomic_int connected, reconnected, logout_seen, reentry_sent, status_calls;

static void on_reentry_sent(const void *context, enum RcimEngineError code, const struct RcimMessageBox *msg) {
    (void)context;
    (void)msg;
    if (code == RcimEngineError_Success) atomic_fetch_add(&reentry_sent, 1);
}

static void on_connected(const void *context, enum RcimEngineError code, const char *user_id) {
    (void)context;
    (void)user_id;
    CHECK(code == RcimEngineError_Success, "connect %d", code);
    /* Send from inside onConnected. */
    send_to_bob(main_engine, NULL, on_reentry_sent, NULL);
    atomic_fetch_add(&connected, 1);
}

static void on_reconnected(const void *context, enum RcimEngineError code, const char *user_id) {
    (void)context;
    (void)user_id;
    CHECK(code == RcimEngineError_Success, "reconnect %d", code);
    atomic_fetch_add(&reconnected, 1);
}

static void on_status(const void *context, enum RcimConnectionStatus status) {
    (void)context;
    enum RcimConnectionStatus now;
    /* Query from inside the listener. */
    CHECK(rcim_engine_get_connection_status(main_engine, &now) == 0, "status from a listener");
    atomic_fetch_add(&status_calls, 1);
    if (status == RcimConnectionStatus_DisconnectUserLogout && atomic_fetch_add(&logout_seen, 1) == 0) {
        /* Connect from inside the status listener. */
        rcim_engine_connect(main_engine, token, 10, NULL, on_reconnected);
    }
}

static void on_disconnected(const void *context, enum RcimEngineError code) {
    (void)context;
    CHECK(code == RcimEngineError_Success, "disconnect %d", code);
}

/* ---- 100 threads on one engine ---- */

static atomic_int many_saved, many_sent, many_counts, many_status_ok;

static void on_many_saved(const void *context, const struct RcimMessageBox *msg) {
    (void)context;
    CHECK(msg && msg->message_id > 0, "saved without id");
    atomic_fetch_add(&many_saved, 1);
}

static void on_many_sent(const void *context, enum RcimEngineError code, const struct RcimMessageBox *msg) {
    CHECK(context == &many_sent, "context changed");
    CHECK(code == RcimEngineError_Success && msg && msg->uid, "send %d", code);
    atomic_fetch_add(&many_sent, 1);
}

static void on_many_count(const void *context, enum RcimEngineError code, int64_t count) {
    (void)context;
    (void)count;
    CHECK(code == RcimEngineError_Success, "count %d", code);
    atomic_fetch_add(&many_counts, 1);
}

static void *many_caller(void *arg) {
    (void)arg;
    enum RcimConnectionStatus status;
    if (rcim_engine_get_connection_status(main_engine, &status) == 0 && status == RcimConnectionStatus_Connected)
        atomic_fetch_add(&many_status_ok, 1);
    send_to_bob(main_engine, &many_sent, on_many_sent, on_many_saved);
    rcim_engine_get_total_unread_count(main_engine, NULL, on_many_count);
    return NULL;
}

/* ---- destroy while 100 threads call ---- */

static struct RcimEngineSync *doomed;
static atomic_int destroyed, after_destroy, refused, accepted;

static void on_doomed_sent(const void *context, enum RcimEngineError code, const struct RcimMessageBox *msg) {
    (void)context;
    (void)msg;
    /* A call made with the dead handle is told so (34401); nothing else of this
     * engine may arrive once destroy has returned. */
    if (atomic_load(&destroyed) && code != RcimEngineError_InvalidArgumentEngineSync)
        atomic_fetch_add(&after_destroy, 1);
}

static void *doomed_caller(void *arg) {
    (void)arg;
    for (int i = 0; i < 20; i++) {
        enum RcimConnectionStatus status;
        enum RcimEngineError code = rcim_engine_get_connection_status(doomed, &status);
        CHECK(code == RcimEngineError_Success || code == RcimEngineError_InvalidArgumentEngineSync,
              "a call racing with destroy returned %d", code);
        atomic_fetch_add(code == 0 ? &accepted : &refused, 1);
        send_to_bob(doomed, NULL, on_doomed_sent, NULL);
    }
    return NULL;
}

/* ---- no rcimd ---- */

static atomic_int no_daemon_code = -1;

static void on_no_daemon(const void *context, enum RcimEngineError code, const char *user_id) {
    (void)context;
    CHECK(user_id == NULL, "a failed connect has a user id");
    atomic_store(&no_daemon_code, code);
}

/* ---- destroy from inside the engine's own callback ---- */

static struct RcimEngineSync *self_destroyed;
static atomic_int self_destroy_code = -1;

static void on_self_destroy(const void *context, enum RcimEngineError code, const char *user_id) {
    (void)context;
    (void)code;
    (void)user_id;
    atomic_store(&self_destroy_code, rcim_destroy_engine(self_destroyed));
}

int main(int argc, char **argv) {
    CHECK(argc == 2, "usage: hostile TOKEN");
    token = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0);

    main_engine = build();
    CHECK(rcim_engine_set_connection_status_listener(main_engine, NULL, on_status) == 0, "listener");
    rcim_engine_connect(main_engine, token, 20, NULL, on_connected);
    wait_count(&connected, 1, "onConnected");
    wait_count(&reentry_sent, 1, "a message sent from inside onConnected");
    rcim_engine_disconnect(main_engine, RcimDisconnectMode_NoPush, NULL, on_disconnected);
    wait_count(&reconnected, 1, "a connect from inside the status listener");
    CHECK(atomic_load(&status_calls) > 0, "the listener never ran");
    printf("re-entry ok\n");

    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) CHECK(pthread_create(&threads[i], NULL, many_caller, NULL) == 0, "thread");
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    CHECK(atomic_load(&many_status_ok) == THREADS, "connected seen by %d of %d", atomic_load(&many_status_ok), THREADS);
    wait_count(&many_sent, THREADS, "messages sent by 100 threads");
    wait_count(&many_counts, THREADS, "unread counts asked by 100 threads");
    CHECK(atomic_load(&many_saved) == THREADS, "saved %d", atomic_load(&many_saved));
    printf("100 threads ok\n");

    doomed = build();
    for (int i = 0; i < THREADS; i++) CHECK(pthread_create(&threads[i], NULL, doomed_caller, NULL) == 0, "thread");
    usleep(20 * 1000);
    CHECK(rcim_destroy_engine(doomed) == 0, "destroy under load");
    atomic_store(&destroyed, 1);
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    usleep(500 * 1000);
    CHECK(atomic_load(&after_destroy) == 0, "%d callbacks ran after destroy", atomic_load(&after_destroy));
    CHECK(atomic_load(&refused) > 0, "no call saw the destroyed engine");
    printf("destroy under load ok (%d calls before, %d refused after)\n", atomic_load(&accepted), atomic_load(&refused));

    self_destroyed = build();
    rcim_engine_connect(self_destroyed, token, 10, NULL, on_self_destroy);
    for (int i = 0; i < 1500 && atomic_load(&self_destroy_code) == -1; i++) usleep(10 * 1000);
    CHECK(atomic_load(&self_destroy_code) == RcimEngineError_Success, "destroy from its own callback: %d", atomic_load(&self_destroy_code));
    CHECK(rcim_destroy_engine(self_destroyed) == RcimEngineError_InvalidArgumentEngineSync, "destroyed twice");
    printf("destroy from a callback ok\n");

    CHECK(rcim_destroy_engine(main_engine) == 0, "destroy");

    /* With no rcimd behind the socket, connect fails through its callback with
     * 31014 and the status is Idle; nothing hangs. */
    setenv("RCIM_SOCKET", "/nonexistent/rcimd.sock", 1);
    struct RcimEngineSync *lonely = build();
    rcim_engine_connect(lonely, token, 5, NULL, on_no_daemon);
    for (int i = 0; i < 1500 && atomic_load(&no_daemon_code) == -1; i++) usleep(10 * 1000);
    CHECK(atomic_load(&no_daemon_code) == RcimEngineError_SocketConnectionFailed, "connect without rcimd: %d", atomic_load(&no_daemon_code));
    enum RcimConnectionStatus status = RcimConnectionStatus_Connected;
    CHECK(rcim_engine_get_connection_status(lonely, &status) == 0 && status == RcimConnectionStatus_Idle, "status without rcimd: %d", (int)status);
    CHECK(rcim_destroy_engine(lonely) == 0, "destroy");
    printf("no rcimd ok\n");
    printf("OK\n");
    return 0;
}
