/*
 * Batched datagram receive for the RTP sockets (src/rtp/batch-receive.ts is its only user).
 *
 * Node delivers each datagram on its own: two recvmsg calls (the second one finds the socket
 * empty), a 64 KiB allocation for each, a Buffer and an address object, and one trip into
 * JavaScript. At a few hundred calls that is most of the capture thread's CPU. Here the RTP
 * sockets sit in one epoll set, watched by the event loop through a single poll handle: when
 * any of them is readable, every ready socket is drained with recvmmsg(2) into one arena of
 * fixed slots, and JavaScript is called once for the whole batch with the packet count. The
 * arena and the per-packet record array belong to JavaScript (allocated there, passed in at
 * open); each packet's record is META int32s:
 *
 *   token   the number JavaScript registered the socket under
 *   offset  where the datagram starts in the arena
 *   length  its length in bytes
 *   flags   the address family (4 or 6) | FLAG_TRUNCATED when it did not fit its slot
 *   port    the source port
 *   addr    four words: IPv4 in the first (network order bytes read as written), IPv6 in all four
 *   age     microseconds between the kernel's receive timestamp (SO_TIMESTAMPNS) and the call
 *           into JavaScript, measured on one clock, so JavaScript dates each packet on its own
 *           clock as (now - age); 0 where the kernel gave no timestamp
 *
 * Wake-ups are spaced: a drain within DRAIN_GAP_NS of the last one waits for the rest of the
 * gap on a timer, so under load one wake-up takes every packet of the gap, and the packets'
 * arrival times still come from the kernel, not from when they were read.
 *
 * The arena is reused as soon as the callback returns: JavaScript copies what it keeps.
 * The sockets stay Node's (bound, sent from, closed by Node); only their reading moves here,
 * between add() and remove().
 */
#define NAPI_VERSION 8
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define META 10
#define FLAG_TRUNCATED 0x100
/* Ready sockets taken per epoll_wait, and rounds of epoll_wait per wake-up (so one busy
 * moment cannot hold the event loop for long). */
#define EVENTS 256
#define ROUNDS 4
/* Datagrams read from one socket per recvmmsg. */
#define PER_CALL 64
/* Least time between two drains: 40 ms, two packets of a 20 ms stream, so a socket's recvmmsg
 * mostly takes two datagrams, and the event loop wakes 25 times a second for RTP, not 500.
 * Nothing waits on it: packets keep their kernel times, and the encoder runs a second behind. */
#define DRAIN_GAP_NS 40000000ull
#define CTRL_BYTES CMSG_SPACE(sizeof(struct timespec))

typedef struct {
  napi_env env;
  napi_ref callback;
  napi_ref arena_ref;
  napi_ref meta_ref;
  napi_async_context context;
  uint8_t *arena;
  int32_t *meta;
  size_t slots;
  size_t slot_bytes;
  int epfd;
  uv_poll_t poll;
  uv_timer_t timer;
  uint64_t last_drain;
  int waiting;
  int handles_open;
  uint8_t *ctrl;
  struct timespec *stamp;
  int sockets;
  int closed;
  int polling;
  /* Set while a batch is with JavaScript: a drain asked for then would overwrite the arena. */
  int delivering;
  struct mmsghdr *msgs;
  struct iovec *iov;
  struct sockaddr_storage *from;
  /* Batches handed to JavaScript, and the ones that filled the arena. */
  double batches;
} reader_t;

#define CHECK(call)                                                                 \
  do {                                                                              \
    if ((call) != napi_ok) {                                                        \
      napi_throw_error(env, "TALLENNE_BATCH_RECEIVE", "udp-batch: " #call " failed"); \
      return NULL;                                                                  \
    }                                                                               \
  } while (0)

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "udp-batch: %s: %s", what, strerror(err));
  napi_throw_error(env, "TALLENNE_BATCH_RECEIVE", msg);
  return NULL;
}

/* Calls JavaScript with the batch; an exception it throws goes where Node's own callbacks send theirs. */
static void deliver(reader_t *r, size_t n) {
  napi_env env = r->env;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  for (size_t i = 0; i < n; i++) {
    const struct timespec *t = &r->stamp[i];
    int64_t age = 0;
    if (t->tv_sec != 0) {
      age = ((int64_t)now.tv_sec - t->tv_sec) * 1000000 + ((int64_t)now.tv_nsec - t->tv_nsec) / 1000;
      if (age < 0) age = 0;
      if (age > 0x7fffffff) age = 0x7fffffff;
    }
    r->meta[i * META + 9] = (int32_t)age;
  }
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[1], result;
  r->batches++;
  if (napi_get_reference_value(env, r->callback, &cb) == napi_ok && napi_get_global(env, &recv) == napi_ok &&
      napi_create_uint32(env, (uint32_t)n, &argv[0]) == napi_ok) {
    r->delivering = 1;
    napi_status st = napi_make_callback(env, r->context, recv, cb, 1, argv, &result);
    r->delivering = 0;
    if (st == napi_pending_exception) {
      napi_value err;
      if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void record(reader_t *r, size_t i, int32_t token, unsigned len, int flags) {
  int32_t *m = r->meta + i * META;
  m[0] = token;
  m[1] = (int32_t)(i * r->slot_bytes);
  m[2] = (int32_t)(len > r->slot_bytes ? r->slot_bytes : len);
  /* Unused address words stay 0 (an IPv4 source fills one): JavaScript compares all four. */
  m[5] = m[6] = m[7] = m[8] = 0;
  const struct sockaddr_storage *a = &r->from[i];
  int truncated = (flags & MSG_TRUNC) ? FLAG_TRUNCATED : 0;
  r->stamp[i].tv_sec = 0;
  r->stamp[i].tv_nsec = 0;
  struct msghdr *h = &r->msgs[i].msg_hdr;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c != NULL; c = CMSG_NXTHDR(h, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) memcpy(&r->stamp[i], CMSG_DATA(c), sizeof(struct timespec));
  }
  if (a->ss_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)a;
    m[3] = 6 | truncated;
    m[4] = ntohs(s6->sin6_port);
    memcpy(&m[5], &s6->sin6_addr, 16);
  } else {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)a;
    m[3] = 4 | truncated;
    m[4] = ntohs(s4->sin_port);
    memcpy(&m[5], &s4->sin_addr, 4);
  }
}

static void drain(reader_t *r);
static void on_readable(uv_poll_t *handle, int status, int events);

static uint64_t mono_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void on_timer(uv_timer_t *timer) {
  reader_t *r = timer->data;
  r->waiting = 0;
  if (r->closed) return;
  if (r->sockets > 0 && !r->polling && uv_poll_start(&r->poll, UV_READABLE, on_readable) == 0) r->polling = 1;
  drain(r);
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)events;
  reader_t *r = handle->data;
  if (r->closed || status < 0) return;
  uint64_t now = mono_ns();
  if (now - r->last_drain < DRAIN_GAP_NS) {
    /* Too soon after the last drain: stop watching until the gap is over, then take all. */
    uv_poll_stop(&r->poll);
    r->polling = 0;
    if (!r->waiting) {
      r->waiting = 1;
      uv_timer_start(&r->timer, on_timer, (DRAIN_GAP_NS - (now - r->last_drain)) / 1000000ull + 1, 0);
    }
    return;
  }
  drain(r);
}

/* Reads one socket until it has nothing waiting, into the arena from slot *n on, handing a
 * full arena to JavaScript on the way. Returns 0, or -1 when the reader was closed meanwhile. */
static int read_socket(reader_t *r, int fd, int32_t token, size_t *n) {
  for (;;) {
    if (*n == r->slots) {
      deliver(r, *n);
      *n = 0;
      if (r->closed) return -1;
    }
    size_t at = *n;
    size_t want = r->slots - at;
    if (want > PER_CALL) want = PER_CALL;
    for (size_t i = at; i < at + want; i++) {
      r->iov[i].iov_base = r->arena + i * r->slot_bytes;
      r->iov[i].iov_len = r->slot_bytes;
      memset(&r->msgs[i].msg_hdr, 0, sizeof r->msgs[i].msg_hdr);
      r->msgs[i].msg_hdr.msg_name = &r->from[i];
      r->msgs[i].msg_hdr.msg_namelen = sizeof r->from[i];
      r->msgs[i].msg_hdr.msg_iov = &r->iov[i];
      r->msgs[i].msg_hdr.msg_iovlen = 1;
      r->msgs[i].msg_hdr.msg_control = r->ctrl + i * CTRL_BYTES;
      r->msgs[i].msg_hdr.msg_controllen = CTRL_BYTES;
    }
    int got = recvmmsg(fd, &r->msgs[at], (unsigned)want, MSG_DONTWAIT, NULL);
    if (got < 0 && errno == EINTR) continue;
    /* EAGAIN: drained. Anything else (an ICMP error queued on the socket, a socket closed
     * under us): the error is consumed, what is queued behind it comes at the next wake-up. */
    if (got <= 0) return 0;
    for (int i = 0; i < got; i++) record(r, at + i, token, r->msgs[at + i].msg_len, r->msgs[at + i].msg_hdr.msg_flags);
    *n = at + (size_t)got;
    if ((size_t)got < want) return 0;
  }
}

static void drain(reader_t *r) {
  r->last_drain = mono_ns();
  struct epoll_event ev[EVENTS];
  size_t n = 0;
  for (int round = 0; round < ROUNDS; round++) {
    int k = epoll_wait(r->epfd, ev, EVENTS, 0);
    if (k <= 0) break;
    for (int e = 0; e < k; e++) {
      int fd = (int)(uint32_t)(ev[e].data.u64 & 0xffffffffu);
      int32_t token = (int32_t)(ev[e].data.u64 >> 32);
      if (read_socket(r, fd, token, &n) < 0) return;
    }
  }
  if (n > 0) deliver(r, n);
}

static void free_reader(reader_t *r) {
  free(r->ctrl);
  free(r->stamp);
  free(r->msgs);
  free(r->iov);
  free(r->from);
  free(r);
}

static void on_closed(uv_handle_t *handle) {
  reader_t *r = handle->data;
  if (--r->handles_open > 0) return;
  close(r->epfd);
  free_reader(r);
}

static reader_t *unwrap(napi_env env, napi_value v) {
  reader_t *r = NULL;
  if (napi_get_value_external(env, v, (void **)&r) != napi_ok || r == NULL) {
    napi_throw_type_error(env, "TALLENNE_BATCH_RECEIVE", "udp-batch: not a reader");
    return NULL;
  }
  if (r->closed) {
    napi_throw_error(env, "TALLENNE_BATCH_RECEIVE", "udp-batch: reader closed");
    return NULL;
  }
  return r;
}

/* open(arena: Buffer, slotBytes: number, meta: Int32Array, onBatch: (count) => void) → reader */
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) {
    napi_throw_type_error(env, "TALLENNE_BATCH_RECEIVE", "udp-batch: open(arena, slotBytes, meta, onBatch)");
    return NULL;
  }
  void *arena;
  size_t arena_len;
  uint32_t slot_bytes;
  napi_typedarray_type type;
  size_t meta_len;
  void *meta;
  napi_value meta_ab;
  size_t meta_off;
  napi_valuetype cbtype;
  if (napi_get_buffer_info(env, argv[0], &arena, &arena_len) != napi_ok || napi_get_value_uint32(env, argv[1], &slot_bytes) != napi_ok ||
      napi_get_typedarray_info(env, argv[2], &type, &meta_len, &meta, &meta_ab, &meta_off) != napi_ok || type != napi_int32_array ||
      napi_typeof(env, argv[3], &cbtype) != napi_ok || cbtype != napi_function || slot_bytes < 64 || arena_len < slot_bytes) {
    napi_throw_type_error(env, "TALLENNE_BATCH_RECEIVE", "udp-batch: open(arena: Buffer, slotBytes >= 64, meta: Int32Array, onBatch: function)");
    return NULL;
  }
  size_t slots = arena_len / slot_bytes;
  if (meta_len < slots * META) {
    napi_throw_range_error(env, "TALLENNE_BATCH_RECEIVE", "udp-batch: meta holds fewer records than the arena has slots");
    return NULL;
  }
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  reader_t *r = calloc(1, sizeof *r);
  if (!r) return throw_errno(env, "calloc", ENOMEM);
  r->env = env;
  r->arena = arena;
  r->slot_bytes = slot_bytes;
  r->slots = slots;
  r->meta = meta;
  r->msgs = calloc(slots, sizeof *r->msgs);
  r->iov = calloc(slots, sizeof *r->iov);
  r->from = calloc(slots, sizeof *r->from);
  r->ctrl = calloc(slots, CTRL_BYTES);
  r->stamp = calloc(slots, sizeof *r->stamp);
  if (!r->msgs || !r->iov || !r->from || !r->ctrl || !r->stamp) {
    free_reader(r);
    return throw_errno(env, "calloc", ENOMEM);
  }
  r->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (r->epfd < 0) {
    int err = errno;
    free_reader(r);
    return throw_errno(env, "epoll_create1", err);
  }
  int rc = uv_poll_init(loop, &r->poll, r->epfd);
  if (rc != 0) {
    close(r->epfd);
    free_reader(r);
    napi_throw_error(env, "TALLENNE_BATCH_RECEIVE", uv_strerror(rc));
    return NULL;
  }
  r->poll.data = r;
  uv_timer_init(loop, &r->timer);
  r->timer.data = r;
  r->handles_open = 2;
  /* Not started (and so not holding the loop open) until a socket is added. */
  CHECK(napi_create_reference(env, argv[0], 1, &r->arena_ref));
  CHECK(napi_create_reference(env, argv[2], 1, &r->meta_ref));
  CHECK(napi_create_reference(env, argv[3], 1, &r->callback));
  napi_value name;
  CHECK(napi_create_string_utf8(env, "tallenne:rtp-batch", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, NULL, name, &r->context));
  napi_value ext;
  CHECK(napi_create_external(env, r, NULL, NULL, &ext));
  return ext;
}

/* add(reader, fd, token): the socket's datagrams go to the batches under `token`. */
static napi_value js_add(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  reader_t *r = unwrap(env, argv[0]);
  if (!r) return NULL;
  int32_t fd, token;
  if (argc < 3 || napi_get_value_int32(env, argv[1], &fd) != napi_ok || napi_get_value_int32(env, argv[2], &token) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "TALLENNE_BATCH_RECEIVE", "udp-batch: add(reader, fd, token)");
    return NULL;
  }
  struct epoll_event ev = { .events = EPOLLIN, .data.u64 = ((uint64_t)(uint32_t)token << 32) | (uint32_t)fd };
  /* Receive timestamps from the kernel; without them (an odd socket) the age is 0. */
  int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
  if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) return throw_errno(env, "epoll_ctl add", errno);
  if (r->sockets++ == 0 && !r->polling && !r->waiting) {
    int rc = uv_poll_start(&r->poll, UV_READABLE, on_readable);
    if (rc != 0) {
      epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, NULL);
      r->sockets--;
      napi_throw_error(env, "TALLENNE_BATCH_RECEIVE", uv_strerror(rc));
      return NULL;
    }
    r->polling = 1;
  }
  return NULL;
}

/* drain(reader[, fd, token]): hands over every datagram waiting now, without waiting for
 * the gap: of every socket, or of the one socket given (with the token it was added under),
 * which leaves the others' wake-ups as they were. The signalling calls it before it changes a
 * leg (a codec change, the hang-up), so the packets that came before the change are taken
 * under the state they were sent for. Not while a batch is with JavaScript (the arena is in
 * use): that drain is already taking them. */
static napi_value js_drain(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  reader_t *r = unwrap(env, argv[0]);
  if (!r) return NULL;
  int32_t fd = -1, token = 0;
  if (argc >= 3 && (napi_get_value_int32(env, argv[1], &fd) != napi_ok || napi_get_value_int32(env, argv[2], &token) != napi_ok || fd < 0)) {
    napi_throw_type_error(env, "TALLENNE_BATCH_RECEIVE", "udp-batch: drain(reader[, fd, token])");
    return NULL;
  }
  if (r->delivering || r->sockets == 0) return NULL;
  if (fd < 0) {
    drain(r);
    return NULL;
  }
  size_t n = 0;
  if (read_socket(r, fd, token, &n) == 0 && n > 0) deliver(r, n);
  return NULL;
}

/* remove(reader, fd): its datagrams are no longer read here. A socket already closed is fine. */
static napi_value js_remove(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  reader_t *r = unwrap(env, argv[0]);
  if (!r) return NULL;
  int32_t fd;
  if (argc < 2 || napi_get_value_int32(env, argv[1], &fd) != napi_ok) {
    napi_throw_type_error(env, "TALLENNE_BATCH_RECEIVE", "udp-batch: remove(reader, fd)");
    return NULL;
  }
  if (epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, NULL) == 0 || errno == ENOENT || errno == EBADF) {
    if (r->sockets > 0) r->sockets--;
  }
  if (r->sockets == 0) {
    if (r->polling) uv_poll_stop(&r->poll);
    r->polling = 0;
    if (r->waiting) uv_timer_stop(&r->timer);
    r->waiting = 0;
  }
  return NULL;
}

/* batches(reader): how many batches were handed to JavaScript so far. */
static napi_value js_batches(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  reader_t *r = unwrap(env, argv[0]);
  if (!r) return NULL;
  CHECK(napi_create_double(env, r->batches, &out));
  return out;
}

/* close(reader): stops watching, lets go of the arena and the callback. Sockets are Node's. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  reader_t *r = unwrap(env, argv[0]);
  if (!r) return NULL;
  r->closed = 1;
  if (r->polling) uv_poll_stop(&r->poll);
  uv_timer_stop(&r->timer);
  napi_delete_reference(env, r->callback);
  napi_delete_reference(env, r->arena_ref);
  napi_delete_reference(env, r->meta_ref);
  napi_async_destroy(env, r->context);
  uv_close((uv_handle_t *)&r->poll, on_closed);
  uv_close((uv_handle_t *)&r->timer, on_closed);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL },
    { "add", NULL, js_add, NULL, NULL, NULL, napi_default, NULL },
    { "remove", NULL, js_remove, NULL, NULL, NULL, napi_default, NULL },
    { "drain", NULL, js_drain, NULL, NULL, NULL, napi_default, NULL },
    { "batches", NULL, js_batches, NULL, NULL, NULL, napi_default, NULL },
    { "close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL },
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  napi_value meta, flag;
  napi_create_uint32(env, META, &meta);
  napi_create_uint32(env, FLAG_TRUNCATED, &flag);
  napi_set_named_property(env, exports, "META", meta);
  napi_set_named_property(env, exports, "FLAG_TRUNCATED", flag);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
