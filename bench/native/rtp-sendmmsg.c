/*
 * The bench's cheapest load generator (`--gen-mode sendmmsg`): one process, one unconnected
 * UDP socket, and a replayed schedule sent with sendmmsg(2) in batches.
 *
 * It keeps the schedule of generator-worker.mjs's `replay` mode: a leg's packets fall on whole
 * milliseconds, 20 ms apart, so each leg sits in one of 20 slots of the cycle. Every tick
 * (the next whole millisecond, slept with ppoll on stdin) visits the slots that came due since
 * the last tick, and every due packet of their legs is built into the batch: the party's
 * pre-rendered packet (version, payload type, payload) with the leg's sequence number,
 * timestamp, SSRC and, on its first packet, the marker. A batch goes out when full or at the
 * end of the tick. Node has no sendmmsg, so the JavaScript modes pay one system call and one
 * trip through libuv per packet; this one pays a system call per batch.
 *
 *   rtp-sendmmsg PARTIES_FILE PAYLOAD_TYPE TS_STEP LATE_MS PPS_CAP
 *
 * PARTIES_FILE: per party, u32 frames, u32 offsets[frames + 1] into the data, then the data
 * (whole packets, little-endian integers). PPS_CAP 0: no cap; else a token bucket as the
 * JavaScript modes have (skipped packets use up their sequence number).
 *
 * Lines in (stdin):  add ID PORT PARTY START_FRAME DUE_EPOCH_MS SSRC SEQ TS | stop ID | end
 * Lines out (stdout): added ID | stopped ID SENT LATE SKIPPED MAX_LATE_MS | c SENT SKIPPED
 *                     (every 100 ms) | at the end: h TENTHS COUNT (lateness in 0.1 ms units,
 *                     rounded up; the last unit holds everything above), max MS, cpu SECONDS, bye
 *
 * Lateness is a packet's send time against its schedule, read from the clock just before
 * its batch is sent, as the JavaScript modes read it before each send.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PERIOD_MS 20
#define BATCH 256
#define MAX_PACKET 1500
#define CAP_BURST_MS 250.0
/* Lateness histogram: 0.1 ms units up to 10.1 s (the bench's fine and coarse ranges), then one above. */
#define TENTHS 101000

struct party {
  uint32_t frames;
  uint32_t *at;
  uint8_t *data;
};

struct leg {
  long id;
  struct sockaddr_in to;
  struct party *party;
  uint32_t frame;
  uint32_t ssrc;
  uint16_t seq;
  uint32_t ts;
  double due;
  long n, sent, late, skipped;
  double max_late;
  int slot, slot_at, live;
};

static struct party *parties;
static uint32_t nparties;
static int pt, ts_step;
static double late_ms;
static struct leg **legs;
static size_t nlegs, cap_legs;
static struct leg **slots[PERIOD_MS];
static size_t slot_n[PERIOD_MS], slot_cap[PERIOD_MS];
static uint32_t hist[TENTHS + 1];
static double max_late_all;
static double total_sent, total_skipped;
static int sock;

static struct mmsghdr msgs[BATCH];
static struct iovec iovs[BATCH];
static uint8_t bufs[BATCH][MAX_PACKET];
static double batch_due[BATCH];
static struct leg *batch_leg[BATCH];
static int batch_n;

static struct {
  double per_ms, burst, tokens, at;
  int on;
} cap;

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void die(const char *what) {
  fprintf(stderr, "rtp-sendmmsg: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void *grow(void *p, size_t *cap_items, size_t item) {
  size_t c = *cap_items ? *cap_items * 2 : 64;
  void *q = realloc(p, c * item);
  if (!q) die("realloc");
  *cap_items = c;
  return q;
}

static void load_parties(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) die(path);
  if (fread(&nparties, 4, 1, f) != 1 || nparties == 0 || nparties > 16) die("parties file header");
  parties = calloc(nparties, sizeof *parties);
  for (uint32_t i = 0; i < nparties; i++) {
    struct party *p = &parties[i];
    if (fread(&p->frames, 4, 1, f) != 1 || p->frames == 0) die("parties file frames");
    p->at = malloc(4 * (p->frames + 1));
    if (fread(p->at, 4, p->frames + 1, f) != p->frames + 1) die("parties file offsets");
    p->data = malloc(p->at[p->frames]);
    if (fread(p->data, 1, p->at[p->frames], f) != p->at[p->frames]) die("parties file data");
    for (uint32_t k = 0; k < p->frames; k++) {
      uint32_t len = p->at[k + 1] - p->at[k];
      if (len < 12 || len > MAX_PACKET) { errno = EINVAL; die("packet length"); }
    }
  }
  fclose(f);
}

static void record_late(double ms) {
  long t = ms > 0 ? (long)ceil(ms * 10 - 1e-9) : 0;
  hist[t > TENTHS ? TENTHS : t]++;
  if (ms > max_late_all) max_late_all = ms;
}

/* Sends the batch; a packet's lateness is taken just before, as one send call carries them all. */
static void flush_batch(void) {
  if (batch_n == 0) return;
  double now = now_ms();
  for (int i = 0; i < batch_n; i++) {
    double lag = now - batch_due[i];
    struct leg *l = batch_leg[i];
    record_late(lag);
    if (l) {
      l->sent++;
      if (lag > late_ms) l->late++;
      if (lag > l->max_late) l->max_late = lag;
    }
  }
  int off = 0;
  while (off < batch_n) {
    int r = sendmmsg(sock, msgs + off, batch_n - off, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      /* ECONNREFUSED from an earlier ICMP, ENOBUFS: this packet is lost, as on a real network. */
      off++;
      continue;
    }
    off += r;
  }
  total_sent += batch_n;
  batch_n = 0;
}

static int take(double now) {
  cap.tokens = fmin(cap.burst, cap.tokens + (now - cap.at) * cap.per_ms);
  cap.at = now;
  if (cap.tokens < 1) return 0;
  cap.tokens -= 1;
  return 1;
}

static void send_due(struct leg *l, double now) {
  while (l->due <= now) {
    if (!cap.on || take(now)) {
      struct party *p = l->party;
      uint32_t a = p->at[l->frame], len = p->at[l->frame + 1] - a;
      uint8_t *b = bufs[batch_n];
      memcpy(b, p->data + a, len);
      if (l->n == 0) b[1] = (uint8_t)(pt | 0x80);
      b[2] = l->seq >> 8; b[3] = l->seq & 0xff;
      b[4] = l->ts >> 24; b[5] = (l->ts >> 16) & 0xff; b[6] = (l->ts >> 8) & 0xff; b[7] = l->ts & 0xff;
      b[8] = l->ssrc >> 24; b[9] = (l->ssrc >> 16) & 0xff; b[10] = (l->ssrc >> 8) & 0xff; b[11] = l->ssrc & 0xff;
      iovs[batch_n].iov_base = b;
      iovs[batch_n].iov_len = len;
      msgs[batch_n].msg_hdr.msg_name = &l->to;
      msgs[batch_n].msg_hdr.msg_namelen = sizeof l->to;
      msgs[batch_n].msg_hdr.msg_iov = &iovs[batch_n];
      msgs[batch_n].msg_hdr.msg_iovlen = 1;
      batch_due[batch_n] = l->due;
      batch_leg[batch_n] = l;
      if (++batch_n == BATCH) flush_batch();
    } else {
      l->skipped++;
      total_skipped++;
    }
    l->seq++;
    l->ts += ts_step;
    l->frame = l->frame + 1 >= l->party->frames ? 0 : l->frame + 1;
    l->n++;
    l->due += PERIOD_MS;
  }
}

static void slot_add(struct leg *l) {
  int s = l->slot;
  if (slot_n[s] == slot_cap[s]) slots[s] = grow(slots[s], &slot_cap[s], sizeof *slots[s]);
  l->slot_at = (int)slot_n[s];
  slots[s][slot_n[s]++] = l;
}

static void slot_remove(struct leg *l) {
  int s = l->slot;
  struct leg *last = slots[s][--slot_n[s]];
  if (last != l) {
    slots[s][l->slot_at] = last;
    last->slot_at = l->slot_at;
  }
}

static struct leg *find(long id) {
  for (size_t i = 0; i < nlegs; i++) if (legs[i]->id == id) return legs[i];
  return NULL;
}

static double visited = -1;

static void command(char *line) {
  long id, port, party, start;
  double due;
  unsigned long ssrc, seq, ts;
  if (sscanf(line, "add %ld %ld %ld %ld %lf %lu %lu %lu", &id, &port, &party, &start, &due, &ssrc, &seq, &ts) == 8) {
    if (party < 0 || (uint32_t)party >= nparties || port <= 0 || port > 65535) {
      fprintf(stderr, "rtp-sendmmsg: bad add: %s\n", line);
      exit(2);
    }
    struct leg *l = calloc(1, sizeof *l);
    l->id = id;
    l->to.sin_family = AF_INET;
    l->to.sin_port = htons((uint16_t)port);
    l->to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    l->party = &parties[party];
    l->frame = (uint32_t)(start % l->party->frames);
    l->ssrc = (uint32_t)ssrc;
    l->seq = (uint16_t)seq;
    l->ts = (uint32_t)ts;
    l->due = ceil(due);
    l->slot = (int)(((long long)l->due % PERIOD_MS + PERIOD_MS) % PERIOD_MS);
    l->live = 1;
    if (nlegs == cap_legs) legs = grow(legs, &cap_legs, sizeof *legs);
    legs[nlegs++] = l;
    slot_add(l);
    /* A leg added after its slot went by this cycle is caught up now. */
    if (l->due <= visited) send_due(l, now_ms());
    printf("added %ld\n", id);
  } else if (sscanf(line, "stop %ld", &id) == 1) {
    flush_batch();
    struct leg *l = find(id);
    if (l) {
      slot_remove(l);
      for (size_t i = 0; i < nlegs; i++) if (legs[i] == l) { legs[i] = legs[--nlegs]; break; }
      printf("stopped %ld %ld %ld %ld %.3f\n", id, l->sent, l->late, l->skipped, l->max_late);
      free(l);
    } else {
      printf("stopped %ld 0 0 0 0\n", id);
    }
  } else if (strncmp(line, "end", 3) == 0) {
    flush_batch();
    for (size_t i = 0; i <= TENTHS; i++) if (hist[i]) printf("h %zu %u\n", i, hist[i]);
    printf("max %.3f\n", max_late_all);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("cpu %.6f\n", ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
    printf("bye\n");
    fflush(stdout);
    exit(0);
  } else {
    fprintf(stderr, "rtp-sendmmsg: unknown command: %s\n", line);
    exit(2);
  }
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: rtp-sendmmsg PARTIES_FILE PAYLOAD_TYPE TS_STEP LATE_MS PPS_CAP\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  load_parties(argv[1]);
  pt = atoi(argv[2]);
  ts_step = atoi(argv[3]);
  late_ms = atof(argv[4]);
  double pps = atof(argv[5]);
  if (pps > 0) {
    cap.on = 1;
    cap.per_ms = pps / 1000;
    cap.burst = fmax(1, pps * CAP_BURST_MS / 1000);
    cap.tokens = fmax(1, pps / 1000);
    cap.at = now_ms();
  }
  sock = socket(AF_INET, SOCK_DGRAM, 0);
  if (sock < 0) die("socket");
  struct sockaddr_in me = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  if (bind(sock, (struct sockaddr *)&me, sizeof me) < 0) die("bind");
  setvbuf(stdout, NULL, _IOFBF, 1 << 16);

  char in[1 << 16];
  size_t have = 0;
  double counted_at = now_ms();
  struct pollfd pfd = { .fd = 0, .events = POLLIN };
  for (;;) {
    /* Every slot from the one after the last visited up to now; after a stall of a cycle or more, each slot once. */
    double now = now_ms();
    double up_to = floor(now);
    double from = fmax(visited + 1, up_to - PERIOD_MS + 1);
    for (double ms = from; ms <= up_to; ms++) {
      int s = (int)fmod(ms, PERIOD_MS);
      for (size_t i = 0; i < slot_n[s]; i++) send_due(slots[s][i], now);
    }
    flush_batch();
    visited = up_to;
    if (now - counted_at >= 100) {
      printf("c %.0f %.0f\n", total_sent, total_skipped);
      counted_at = now;
    }
    fflush(stdout);
    double wait = up_to + 1 - now_ms();
    struct timespec ts = { 0, wait > 0 ? (long)(wait * 1e6) : 0 };
    int r = ppoll(&pfd, 1, &ts, NULL);
    if (r < 0 && errno != EINTR) die("ppoll");
    if (r > 0) {
      ssize_t got = read(0, in + have, sizeof in - have - 1);
      if (got <= 0) return 0; /* the bench went away */
      have += (size_t)got;
      in[have] = 0;
      char *start = in, *nl;
      while ((nl = memchr(start, '\n', have - (size_t)(start - in)))) {
        *nl = 0;
        command(start);
        start = nl + 1;
      }
      have -= (size_t)(start - in);
      memmove(in, start, have);
    }
  }
}
