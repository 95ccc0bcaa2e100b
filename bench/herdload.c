/*
 * herdload: the native load generator of `deno task bench` (bench/bench.ts builds it with
 * the system `cc -O2`). One thread, epoll, no dependencies beyond libc (and OpenSSL, when
 * built with TLS: see below).
 *
 * Why native: a generator written in JavaScript spends about as much CPU per reply as the
 * server it drives, so it saturates first and every ratio drifts toward 1.0. This one
 * reports its own CPU use (`gen_cpu`, CPU seconds per wall second over the measured
 * window) so the driver can refuse rows where it, not the server, was the limit.
 *
 * Modes (first argument), each printing one JSON object on stdout:
 *   closed    closed loop: --conns connections, --depth lines in flight on each, IAMAT
 *             (--kind iamat: each connection cycles through --ids ids of its own, current
 *             time) or WHATSAT (--kind whatsat: ids 0..--ids-1, already registered).
 *             Warm-up (--warmup-ms), then a measured window (--measure-ms).
 *   register  IAMAT for ids --first .. --first+--count-1, pipelined; each id's time is
 *             --time-base seconds plus its index in nanoseconds, so `check` can verify it.
 *   check     WHATSAT <id> 0.01 1 for the same ids: is the stored time exactly the one
 *             `register` (or `flood`) sent?
 *   flood     open loop: --rate IAMAT/s to --port for --duration-ms, one new id per update;
 *             a sample (--track-rate/s) is polled at --dst with WHATSAT until it is there.
 *   idle      opens --conns connections that each send one IAMAT (same id, same time: no
 *             state grows) and then stay silent; times --probes fresh clients; reads the
 *             server's VmRSS (--pid) before and after.
 *   features  prints {"mode":"features","tls":0|1}: was it built with TLS (below)?
 *
 * TLS: built with -DHERDLOAD_TLS and -lssl -lcrypto (OpenSSL), `--tls-ca FILE` makes every
 * connection of closed, register, check and flood TLS, verifying the server's certificate
 * against the CA in FILE and its name against 127.0.0.1. The handshake is made when a
 * connection opens (non-blocking, waiting with poll), before anything is measured; then
 * SSL_read / SSL_write run non-blocking in the same epoll loop as plain sockets.
 *
 * Ids are 16 bytes: the two-character --ns namespace and 14 hex digits. Locations are
 * 21 bytes (+DD.dddddd+DDD.dddddd) near real cities. Every phase has a time bound.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#ifdef HERDLOAD_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#endif

#define NS_PER_S 1000000000ull
#define NS_PER_MS 1000000ull
#define EVENTS_MAX 256
#define READ_CHUNK 65536

/* ------------------------------------------------------------------ time and CPU */

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * NS_PER_S + (uint64_t)t.tv_nsec;
}

static uint64_t wall_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (uint64_t)t.tv_sec * NS_PER_S + (uint64_t)t.tv_nsec;
}

/** CPU seconds (user + system) this process has used. */
static double cpu_seconds(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec / 1e6 + (double)u.ru_stime.tv_sec +
         (double)u.ru_stime.tv_usec / 1e6;
}

static void pause_ns(uint64_t ns) {
  struct timespec t = {(time_t)(ns / NS_PER_S), (long)(ns % NS_PER_S)};
  while (nanosleep(&t, &t) == -1 && errno == EINTR) {
  }
}

/* ------------------------------------------------------------------ latency histogram */

/*
 * Latencies in nanoseconds, bucketed by power of two with 64 linear steps inside each
 * (relative error under 1.6 %). Values below 64 ns get a bucket each.
 */
#define STEPS_LOG2 6
#define STEPS (1 << STEPS_LOG2)
#define BUCKETS (STEPS * 40)

typedef struct {
  uint64_t count[BUCKETS];
  uint64_t n;
  uint64_t max;
} histogram;

static int bucket_of(uint64_t v) {
  if (v < STEPS) return (int)v;
  int top = 63 - __builtin_clzll(v); /* >= STEPS_LOG2 */
  int shift = top - STEPS_LOG2;
  int b = (shift + 1) * STEPS + (int)((v >> shift) - STEPS);
  return b < BUCKETS ? b : BUCKETS - 1;
}

/** The middle of a bucket's range. */
static uint64_t bucket_value(int b) {
  if (b < STEPS) return (uint64_t)b;
  int shift = b / STEPS - 1;
  uint64_t low = (uint64_t)(b % STEPS + STEPS) << shift;
  return low + ((1ull << shift) >> 1);
}

static void record(histogram *h, uint64_t v) {
  h->count[bucket_of(v)]++;
  h->n++;
  if (v > h->max) h->max = v;
}

/** The p-quantile (0..1) in microseconds; 0 when empty. */
static double quantile_us(const histogram *h, double p) {
  if (h->n == 0) return 0;
  uint64_t rank = (uint64_t)ceil(p * (double)h->n), seen = 0;
  if (rank == 0) rank = 1;
  for (int b = 0; b < BUCKETS; b++) {
    seen += h->count[b];
    if (seen >= rank) {
      uint64_t v = bucket_value(b);
      return (double)(v < h->max ? v : h->max) / 1000.0;
    }
  }
  return (double)h->max / 1000.0;
}

/* ------------------------------------------------------------------ options */

static struct {
  const char *mode, *kind, *ns, *tls_ca;
  int port, dst, conns, depth, probes, pid, track_rate;
  long ids, first, count;
  double rate;
  uint64_t warmup_ms, measure_ms, duration_ms, max_ms, time_base;
} opt = {.kind = "iamat", .ns = "hb", .conns = 16, .depth = 1, .probes = 20, .track_rate = 200,
         .ids = 1000, .count = 1000, .rate = 1000, .warmup_ms = 1000, .measure_ms = 3000,
         .duration_ms = 4000, .max_ms = 60000, .time_base = 1700000000};

static void fail(const char *fmt, ...) {
  char message[256];
  va_list args;
  va_start(args, fmt);
  vsnprintf(message, sizeof message, fmt, args);
  va_end(args);
  printf("{\"mode\":\"%s\",\"error\":\"%s\"}\n", opt.mode ? opt.mode : "", message);
  fprintf(stderr, "herdload: %s\n", message);
  exit(1);
}

static void parse_options(int argc, char **argv) {
  if (argc < 2) fail("usage: herdload closed|register|check|flood|idle --port P [options]");
  opt.mode = argv[1];
  for (int i = 2; i < argc; i += 2) {
    const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (v == NULL) fail("option %s needs a value", k);
    if (!strcmp(k, "--kind")) opt.kind = v;
    else if (!strcmp(k, "--ns")) opt.ns = v;
    else if (!strcmp(k, "--port")) opt.port = atoi(v);
    else if (!strcmp(k, "--dst")) opt.dst = atoi(v);
    else if (!strcmp(k, "--conns")) opt.conns = atoi(v);
    else if (!strcmp(k, "--depth")) opt.depth = atoi(v);
    else if (!strcmp(k, "--probes")) opt.probes = atoi(v);
    else if (!strcmp(k, "--pid")) opt.pid = atoi(v);
    else if (!strcmp(k, "--track-rate")) opt.track_rate = atoi(v);
    else if (!strcmp(k, "--ids")) opt.ids = atol(v);
    else if (!strcmp(k, "--first")) opt.first = atol(v);
    else if (!strcmp(k, "--count")) opt.count = atol(v);
    else if (!strcmp(k, "--rate")) opt.rate = atof(v);
    else if (!strcmp(k, "--warmup-ms")) opt.warmup_ms = strtoull(v, NULL, 10);
    else if (!strcmp(k, "--measure-ms")) opt.measure_ms = strtoull(v, NULL, 10);
    else if (!strcmp(k, "--duration-ms")) opt.duration_ms = strtoull(v, NULL, 10);
    else if (!strcmp(k, "--max-ms")) opt.max_ms = strtoull(v, NULL, 10);
    else if (!strcmp(k, "--time-base")) opt.time_base = strtoull(v, NULL, 10);
    else if (!strcmp(k, "--tls-ca")) opt.tls_ca = v;
    else fail("unknown option %s", k);
  }
  if (opt.port <= 0 || opt.port > 65535) fail("--port is required");
  if (strlen(opt.ns) != 2) fail("--ns must be two characters");
  if (opt.conns < 1 || opt.conns > 19000) fail("--conns must be 1..19000");
  if (opt.depth < 1 || opt.depth > 64) fail("--depth must be 1..64");
  if (opt.ids < 1 || opt.count < 0 || opt.first < 0) fail("--ids, --count, --first out of range");
  if (opt.rate <= 0 || opt.rate > 1e6 || opt.track_rate < 1) fail("--rate, --track-rate out of range");
  if (opt.max_ms < 1 || opt.max_ms > 600000) fail("--max-ms must be 1..600000");
}

/* ------------------------------------------------------------------ request text */

/* Places the generated clients stand near (lat, lng), jittered per id by up to ±0.25°. */
static const double TOWNS[][2] = {
    {48.8566, 2.3522},    {51.5074, -0.1278},   {40.4168, -3.7038},  {41.9028, 12.4964},
    {52.5200, 13.4050},   {59.3293, 18.0686},   {55.7558, 37.6173},  {30.0444, 31.2357},
    {-1.2921, 36.8219},   {6.5244, 3.3792},     {-33.9249, 18.4241}, {19.0760, 72.8777},
    {28.6139, 77.2090},   {1.3521, 103.8198},   {35.6895, 139.6917}, {-34.6037, -58.3816},
    {-23.5505, -46.6333}, {4.7110, -74.0721},   {19.4326, -99.1332}, {40.7128, -74.0060},
    {41.8781, -87.6298},  {34.0522, -118.2437}, {49.2827, -123.1207}, {-37.8136, 144.9631},
};
#define TOWN_COUNT (sizeof TOWNS / sizeof TOWNS[0])

static uint64_t scramble(uint64_t x) { /* splitmix64 finaliser */
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static const char HEX[] = "0123456789abcdef";

/** Writes the 16-byte id of `num`; returns its length. */
static int put_id(char *p, uint64_t num) {
  p[0] = opt.ns[0];
  p[1] = opt.ns[1];
  for (int i = 15; i >= 2; i--, num >>= 4) p[i] = HEX[num & 15];
  return 16;
}

/*
 * 21-byte locations near the towns, formatted once: formatting floats per line would cost
 * the generator more than the rest of a request.
 */
#define LOCATIONS 4096
#define LOCATION_BYTES 21
static char locations[LOCATIONS][LOCATION_BYTES + 1];

static void make_locations(void) {
  for (uint64_t i = 0; i < LOCATIONS; i++) {
    uint64_t h = scramble(i + 1);
    const double *town = TOWNS[h % TOWN_COUNT];
    double lat = town[0] + ((double)((h >> 8) & 0xffff) / 65535.0 - 0.5) * 0.5;
    double lng = town[1] + ((double)((h >> 24) & 0xffff) / 65535.0 - 0.5) * 0.5;
    snprintf(locations[i], sizeof locations[i], "%+010.6f%+011.6f", lat, lng);
  }
}

/** Writes the location of id `num` (fixed per id). */
static int put_location(char *p, uint64_t num) {
  memcpy(p, locations[scramble(num) % LOCATIONS], LOCATION_BYTES);
  return LOCATION_BYTES;
}

/** POSIX time with nine decimals. */
static int put_time(char *p, uint64_t ns) {
  char digits[24];
  int n = 0;
  for (uint64_t s = ns / NS_PER_S; n == 0 || s > 0; s /= 10) digits[n++] = (char)('0' + s % 10);
  int len = 0;
  while (n > 0) p[len++] = digits[--n];
  p[len++] = '.';
  uint64_t fraction = ns % NS_PER_S;
  for (int i = 8; i >= 0; i--, fraction /= 10) p[len + i] = (char)('0' + fraction % 10);
  return len + 9;
}

/** The client time `register`, `check` and `flood` give to id `num`. */
static uint64_t planned_time(uint64_t num) { return opt.time_base * NS_PER_S + num; }

static int format_iamat(char *p, uint64_t num, uint64_t time) {
  char *s = p;
  memcpy(p, "IAMAT ", 6);
  p += 6;
  p += put_id(p, num);
  *p++ = ' ';
  p += put_location(p, num);
  *p++ = ' ';
  p += put_time(p, time);
  *p++ = '\n';
  return (int)(p - s);
}

static int format_whatsat(char *p, uint64_t num, const char *radius_and_bound) {
  char *s = p;
  size_t args = strlen(radius_and_bound);
  memcpy(p, "WHATSAT ", 8);
  p += 8;
  p += put_id(p, num);
  *p++ = ' ';
  memcpy(p, radius_and_bound, args);
  p += args;
  *p++ = '\n';
  return (int)(p - s);
}

/* ------------------------------------------------------------------ replies */

/** Splits the first line of a reply into at most `max` fields; returns how many. */
static int fields_of(const char *s, size_t len, const char **field, size_t *flen, int max) {
  int n = 0;
  size_t i = 0;
  while (n < max) {
    while (i < len && (s[i] == ' ' || s[i] == '\t')) i++;
    if (i >= len || s[i] == '\n' || s[i] == '\r') break;
    field[n] = s + i;
    while (i < len && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') i++;
    flen[n] = (size_t)(s + i - field[n]);
    n++;
  }
  return n;
}

/** True when the reply's first line is `AT <server> <skew> <id of num> ...`. */
static int is_at_for(const char *s, size_t len, uint64_t num) {
  const char *f[6];
  size_t fl[6];
  char id[32];
  int idlen = put_id(id, num);
  return fields_of(s, len, f, fl, 6) == 6 && fl[0] == 2 && !memcmp(f[0], "AT", 2) &&
         fl[3] == (size_t)idlen && !memcmp(f[3], id, (size_t)idlen);
}

/** True when the AT line in a reply carries exactly client time `time`. */
static int has_time(const char *s, size_t len, uint64_t time) {
  const char *f[6];
  size_t fl[6];
  char want[32];
  int wl = put_time(want, time);
  return fields_of(s, len, f, fl, 6) == 6 && fl[5] == (size_t)wl && !memcmp(f[5], want, (size_t)wl);
}

/* ------------------------------------------------------------------ connections */

enum { ASK_IAMAT, ASK_WHATSAT };

typedef struct {
  uint64_t sent_ns; /* monotonic time the line was queued */
  uint64_t num;     /* the id's number */
  int ask;
} request;

typedef struct {
  char *data;
  size_t len, cap, off;
} buffer;

typedef struct {
  int fd, index, open, writable_wait;
#ifdef HERDLOAD_TLS
  SSL *ssl; /* NULL: plain TCP */
#endif
  buffer in, out;
  request *queue; /* ring of lines awaiting their reply, oldest first */
  int queue_cap, queue_head, queue_len;
  uint64_t next, replies_in_window;
  /* flood pollers */
  int tracking;
  uint64_t track_num, track_since_ns, failed_poll_ns;
} conn;

static int epfd;
static uint64_t n_errors, n_refused, n_closed;

static void grow(buffer *b, size_t need) {
  if (b->len + need <= b->cap) return;
  if (b->off > 0) {
    memmove(b->data, b->data + b->off, b->len - b->off);
    b->len -= b->off;
    b->off = 0;
  }
  while (b->len + need > b->cap) b->cap = b->cap ? b->cap * 2 : 4096;
  b->data = realloc(b->data, b->cap);
  if (!b->data) fail("out of memory");
}

static void raise_open_files(void) {
  struct rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
}

static struct sockaddr_in loopback(int port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

static void no_delay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/** Connects to 127.0.0.1:port within `timeout_ms`; returns a non-blocking socket or -1. */
static int connect_to(int port, int timeout_ms) {
  struct sockaddr_in a = loopback(port);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
    no_delay(fd);
    return fd;
  }
  struct pollfd p = {.fd = fd, .events = POLLOUT};
  int err = 0;
  socklen_t errlen = sizeof err;
  if (errno != EINPROGRESS || poll(&p, 1, timeout_ms) != 1 ||
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) != 0 || err != 0) {
    close(fd);
    return -1;
  }
  no_delay(fd);
  return fd;
}

static void watch(conn *c, int want_write) {
  struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP | (want_write ? EPOLLOUT : 0), .data.ptr = c};
  epoll_ctl(epfd, c->writable_wait == -1 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c->fd, &e);
  c->writable_wait = want_write;
}

/* ------------------------------------------------------------------ TLS (optional) */

#ifdef HERDLOAD_TLS
static SSL_CTX *tls_ctx;
static char tls_failure[256]; /* why the last handshake failed */

static const char *tls_reason(void) {
  static char text[160];
  unsigned long e = ERR_get_error();
  if (e == 0) return "no OpenSSL error";
  ERR_error_string_n(e, text, sizeof text);
  for (char *p = text; *p; p++)
    if (*p == '"' || *p == '\\') *p = '\'';
  return text;
}

static void tls_init(void) {
  tls_ctx = SSL_CTX_new(TLS_client_method());
  if (!tls_ctx) fail("TLS: cannot make a context: %s", tls_reason());
  if (SSL_CTX_load_verify_locations(tls_ctx, opt.tls_ca, NULL) != 1)
    fail("TLS: cannot read the CA %s: %s", opt.tls_ca, tls_reason());
  SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_PEER, NULL);
  SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

/** Makes the TLS handshake on a connected non-blocking socket within `timeout_ms`. */
static SSL *tls_handshake(int fd, int timeout_ms) {
  SSL *ssl = SSL_new(tls_ctx);
  if (!ssl) return NULL;
  SSL_set_fd(ssl, fd);
  X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1");
  uint64_t deadline = now_ns() + (uint64_t)timeout_ms * NS_PER_MS;
  for (;;) {
    int r = SSL_connect(ssl);
    if (r == 1) return ssl;
    int e = SSL_get_error(ssl, r);
    uint64_t t = now_ns();
    struct pollfd p = {.fd = fd, .events = e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN};
    if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) || t >= deadline ||
        poll(&p, 1, (int)((deadline - t) / NS_PER_MS) + 1) != 1) {
      snprintf(tls_failure, sizeof tls_failure, "%s (verify: %s)", tls_reason(),
               X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
      SSL_free(ssl);
      return NULL;
    }
  }
}
#endif

/** Connects `n` connections to `port` into `cs`, numbered from `index_base`. */
static void open_into(conn *cs, int n, int port, int index_base) {
  for (int i = 0; i < n; i++) {
    conn *c = &cs[i];
    c->fd = connect_to(port, 5000);
    if (c->fd < 0) fail("cannot connect to 127.0.0.1:%d (connection %d): %s", port, i, strerror(errno));
#ifdef HERDLOAD_TLS
    if (tls_ctx && !(c->ssl = tls_handshake(c->fd, 5000)))
      fail("TLS handshake with 127.0.0.1:%d failed (connection %d): %s", port, i, tls_failure);
#endif
    c->index = index_base + i;
    c->open = 1;
    c->queue_cap = 128;
    c->queue = calloc((size_t)c->queue_cap, sizeof(request));
    c->writable_wait = -1;
    watch(c, 0);
  }
}

static conn *open_conns(int n, int port) {
  conn *cs = calloc((size_t)n, sizeof(conn));
  if (!cs) fail("out of memory");
  open_into(cs, n, port, 0);
  return cs;
}

static void shut(conn *c) {
  if (!c->open) return;
  epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
#ifdef HERDLOAD_TLS
  if (c->ssl) SSL_free(c->ssl), c->ssl = NULL;
#endif
  close(c->fd);
  c->open = 0;
  n_closed++;
}

static void free_conns(conn *cs, int n) {
  for (int i = 0; i < n; i++) {
    if (cs[i].open) {
      shut(&cs[i]);
      n_closed--; /* closed by us, on purpose */
    }
    free(cs[i].in.data);
    free(cs[i].out.data);
    free(cs[i].queue);
  }
  free(cs);
}

#define QUEUE_CAP_MAX (1 << 20)

/** Doubles a full ring of awaited replies (an open loop can run ahead of a slow server). */
static void grow_queue(conn *c) {
  if (c->queue_cap >= QUEUE_CAP_MAX) fail("more than %d lines await replies on one connection", QUEUE_CAP_MAX);
  request *bigger = calloc((size_t)c->queue_cap * 2, sizeof(request));
  if (!bigger) fail("out of memory");
  for (int i = 0; i < c->queue_len; i++) bigger[i] = c->queue[(c->queue_head + i) % c->queue_cap];
  free(c->queue);
  c->queue = bigger;
  c->queue_cap *= 2;
  c->queue_head = 0;
}

/** Queues a line (at most 160 bytes) and remembers what it asked; returns when. */
static uint64_t ask(conn *c, int kind, uint64_t num, uint64_t time, const char *whatsat_args) {
  if (c->queue_len == c->queue_cap) grow_queue(c);
  grow(&c->out, 160);
  char *p = c->out.data + c->out.len;
  c->out.len += (size_t)(kind == ASK_IAMAT ? format_iamat(p, num, time) : format_whatsat(p, num, whatsat_args));
  request *r = &c->queue[(c->queue_head + c->queue_len++) % c->queue_cap];
  r->sent_ns = now_ns();
  r->num = num;
  r->ask = kind;
  return r->sent_ns;
}

/** Writes what is queued; waits for writability when the socket is full. */
static void flush(conn *c) {
  while (c->open && c->out.off < c->out.len) {
#ifdef HERDLOAD_TLS
    if (c->ssl) {
      size_t written = 0;
      if (SSL_write_ex(c->ssl, c->out.data + c->out.off, c->out.len - c->out.off, &written) == 1) {
        c->out.off += written;
        continue;
      }
      int e = SSL_get_error(c->ssl, 0);
      if (e == SSL_ERROR_WANT_WRITE) {
        if (c->writable_wait != 1) watch(c, 1);
        return;
      }
      if (e == SSL_ERROR_WANT_READ) return; /* readable is always watched */
      n_errors++;
      shut(c);
      return;
    }
#endif
    ssize_t k = send(c->fd, c->out.data + c->out.off, c->out.len - c->out.off, MSG_NOSIGNAL);
    if (k > 0) {
      c->out.off += (size_t)k;
    } else if (k < 0 && errno == EINTR) {
      continue;
    } else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (c->writable_wait != 1) watch(c, 1);
      return;
    } else {
      n_errors++;
      shut(c);
      return;
    }
  }
  c->out.off = c->out.len = 0;
  if (c->open && c->writable_wait == 1) watch(c, 0);
}

/*
 * The length of the first whole reply in `s`, or 0 when it is incomplete. An IAMAT reply
 * and `? ...` are one line; a WHATSAT reply is the AT line, the JSON line and an empty line.
 */
static size_t reply_length(const char *s, size_t len, int kind) {
  const char *nl = memchr(s, '\n', len);
  if (!nl) return 0;
  if (kind == ASK_IAMAT || s[0] == '?') return (size_t)(nl - s) + 1;
  const char *end = memmem(nl + 1, len - (size_t)(nl + 1 - s), "\n\n", 2);
  return end ? (size_t)(end - s) + 2 : 0;
}

/* What a mode does with each reply, and how it keeps its connections busy. */
typedef void (*on_reply_fn)(conn *c, const request *r, const char *s, size_t len, uint64_t at_ns);
typedef void (*refill_fn)(conn *c);

/** Reads what arrived on `c` and hands every whole reply to `on_reply`. */
static void take_replies(conn *c, on_reply_fn on_reply, uint64_t at_ns) {
  for (;;) {
    grow(&c->in, READ_CHUNK);
#ifdef HERDLOAD_TLS
    if (c->ssl) { /* until OpenSSL has nothing buffered either: epoll cannot see its buffer */
      size_t got = 0;
      if (SSL_read_ex(c->ssl, c->in.data + c->in.len, c->in.cap - c->in.len, &got) == 1) {
        c->in.len += got;
        continue;
      }
      int e = SSL_get_error(c->ssl, 0);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
      shut(c);
      return;
    }
#endif
    ssize_t k = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
    if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      shut(c);
      return;
    }
    if (k < 0) break;
    c->in.len += (size_t)k;
    if ((size_t)k < READ_CHUNK) break;
  }
  while (c->queue_len > 0) {
    request *r = &c->queue[c->queue_head];
    size_t n = reply_length(c->in.data + c->in.off, c->in.len - c->in.off, r->ask);
    if (n == 0) break;
    request done = *r;
    c->queue_head = (c->queue_head + 1) % c->queue_cap;
    c->queue_len--;
    on_reply(c, &done, c->in.data + c->in.off, n, at_ns);
    c->in.off += n;
  }
  if (c->queue_len == 0 && c->in.off < c->in.len) n_errors++; /* bytes nobody asked for */
  if (c->queue_len == 0) c->in.off = c->in.len = 0;
}

/** Acts on what epoll reported: writes what waits, takes replies, tops connections up. */
static void handle_events(const struct epoll_event *events, int k, on_reply_fn on_reply, refill_fn refill) {
  uint64_t at = now_ns();
  for (int e = 0; e < k; e++) {
    conn *c = events[e].data.ptr;
    if (!c->open) continue;
    if (events[e].events & EPOLLOUT) flush(c);
    if (c->open && (events[e].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
      take_replies(c, on_reply, at);
      if (c->open && refill) refill(c);
    }
    if (c->open) flush(c);
  }
}

/**
 * Runs the event loop until `until_ns`, or (with `stop_when_idle`) until no connection
 * awaits a reply. `refill` tops a connection up after its replies were taken.
 */
static void run_loop(conn *cs, int n, uint64_t until_ns, int stop_when_idle, on_reply_fn on_reply,
                     refill_fn refill) {
  struct epoll_event events[EVENTS_MAX];
  if (refill)
    for (int i = 0; i < n; i++)
      if (cs[i].open) refill(&cs[i]), flush(&cs[i]);
  for (;;) {
    uint64_t t = now_ns();
    if (t >= until_ns) return;
    if (stop_when_idle) {
      int waiting = 0;
      for (int i = 0; i < n && !waiting; i++) waiting = cs[i].open && cs[i].queue_len > 0;
      if (!waiting) return;
    }
    uint64_t wait_ms = (until_ns - t) / NS_PER_MS + 1;
    int k = epoll_wait(epfd, events, EVENTS_MAX, wait_ms > 50 ? 50 : (int)wait_ms);
    handle_events(events, k, on_reply, refill);
  }
}

/* ------------------------------------------------------------------ JSON output */

static void json_begin(void) {
  printf("{\"mode\":\"%s\"", opt.mode);
}
static void json_num(const char *key, double v) { printf(",\"%s\":%.6g", key, v); }
static void json_int(const char *key, uint64_t v) { printf(",\"%s\":%llu", key, (unsigned long long)v); }
static void json_hist(const char *prefix, const histogram *h) {
  printf(",\"%sn\":%llu,\"%sp50_us\":%.1f,\"%sp99_us\":%.1f,\"%sp999_us\":%.1f,\"%smax_us\":%.1f", prefix,
         (unsigned long long)h->n, prefix, quantile_us(h, 0.5), prefix, quantile_us(h, 0.99), prefix,
         quantile_us(h, 0.999), prefix, (double)h->max / 1000.0);
}
static void json_end(void) {
  json_int("errors", n_errors);
  json_int("refused", n_refused);
  json_int("closed", n_closed);
  printf("}\n");
  fflush(stdout);
}

static long status_kb(int pid, const char *key) {
  char path[64], line[256];
  size_t klen = strlen(key);
  long kb = -1;
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, key, klen) && line[klen] == ':') {
      kb = atol(line + klen + 1);
      break;
    }
  fclose(f);
  return kb;
}

/* ------------------------------------------------------------------ closed loop */

static struct {
  histogram *latency;
  uint64_t window_start, window_end, replies, reply_bytes;
  int issuing, priming;
} run;

static void closed_reply(conn *c, const request *r, const char *s, size_t len, uint64_t at_ns) {
  if (s[0] == '?') n_refused++;
  else if (!is_at_for(s, len, r->num)) n_errors++;
  if (r->sent_ns >= run.window_start && at_ns <= run.window_end) {
    record(run.latency, at_ns - r->sent_ns);
    run.replies++;
    run.reply_bytes += len;
    c->replies_in_window++;
  }
}

static void closed_refill(conn *c) {
  if (run.priming && c->next > 0) return;
  while (run.issuing && c->queue_len < opt.depth) {
    if (!strcmp(opt.kind, "whatsat")) {
      ask(c, ASK_WHATSAT, scramble(c->next++ * 131u + (uint64_t)c->index) % (uint64_t)opt.ids, 0, "10 20");
    } else {
      uint64_t num = (uint64_t)c->index * 1000000ull + c->next++ % (uint64_t)opt.ids;
      ask(c, ASK_IAMAT, num, wall_ns(), NULL);
    }
  }
}

static void mode_closed(void) {
  if (strcmp(opt.kind, "iamat") && strcmp(opt.kind, "whatsat")) fail("--kind must be iamat or whatsat");
  conn *cs = open_conns(opt.conns, opt.port);
  run.latency = calloc(1, sizeof(histogram));
  run.window_start = run.window_end = UINT64_MAX;
  /* Every connection answered once first: a server still accepting must not skew the window. */
  run.issuing = run.priming = 1;
  run_loop(cs, opt.conns, now_ns() + 10 * NS_PER_S, 1, closed_reply, closed_refill);
  run.priming = 0;
  run.window_start = now_ns() + opt.warmup_ms * NS_PER_MS;
  run.window_end = run.window_start + opt.measure_ms * NS_PER_MS;
  run_loop(cs, opt.conns, run.window_start, 0, closed_reply, closed_refill);
  double cpu0 = cpu_seconds();
  run_loop(cs, opt.conns, run.window_end, 0, closed_reply, closed_refill);
  double cpu = cpu_seconds() - cpu0;
  double wall = (double)(now_ns() - run.window_start) / 1e9;
  run.issuing = 0;
  run_loop(cs, opt.conns, now_ns() + 2 * NS_PER_S, 1, closed_reply, NULL);
  uint64_t least = UINT64_MAX, most = 0, unanswered = 0;
  for (int i = 0; i < opt.conns; i++) {
    if (cs[i].replies_in_window < least) least = cs[i].replies_in_window;
    if (cs[i].replies_in_window > most) most = cs[i].replies_in_window;
    unanswered += (uint64_t)cs[i].queue_len;
  }
  double seconds = (double)opt.measure_ms / 1000.0;
  json_begin();
  printf(",\"kind\":\"%s\"", opt.kind);
  json_int("conns", (uint64_t)opt.conns);
  json_int("depth", (uint64_t)opt.depth);
  json_num("seconds", seconds);
  json_int("replies", run.replies);
  json_num("rate", (double)run.replies / seconds);
  json_hist("", run.latency);
  json_num("reply_bytes", run.replies ? (double)run.reply_bytes / (double)run.replies : 0);
  json_int("conn_min", least);
  json_int("conn_max", most);
  json_int("unanswered", unanswered);
  json_num("gen_cpu", cpu / wall);
  json_end();
  fprintf(stderr, "closed %s c=%d k=%d: %.0f/s p50 %.0f us p99 %.0f us p999 %.0f us, per conn %llu..%llu, gen_cpu %.2f\n",
          opt.kind, opt.conns, opt.depth, (double)run.replies / seconds, quantile_us(run.latency, .5),
          quantile_us(run.latency, .99), quantile_us(run.latency, .999), (unsigned long long)least,
          (unsigned long long)most, cpu / wall);
  free_conns(cs, opt.conns);
}

/* ------------------------------------------------------------------ register and check */

static struct {
  uint64_t next, end, ok, older, missing;
  int whatsat;
} batch;

static void batch_refill(conn *c) {
  while (batch.next < batch.end && c->queue_len < opt.depth) {
    uint64_t num = batch.next++;
    if (batch.whatsat) ask(c, ASK_WHATSAT, num, 0, "0.01 1");
    else ask(c, ASK_IAMAT, num, planned_time(num), NULL);
  }
}

static void batch_reply(conn *c, const request *r, const char *s, size_t len, uint64_t at_ns) {
  (void)c, (void)at_ns;
  if (s[0] == '?') {
    batch.missing++;
  } else if (!is_at_for(s, len, r->num)) {
    n_errors++;
  } else if (!batch.whatsat || has_time(s, len, planned_time(r->num))) {
    batch.ok++;
  } else {
    batch.older++;
  }
}

/** `register` (IAMAT) or `check` (WHATSAT) over ids first..first+count-1. */
static void mode_batch(int whatsat) {
  conn *cs = open_conns(opt.conns, opt.port);
  batch.next = (uint64_t)opt.first;
  batch.end = (uint64_t)(opt.first + opt.count);
  batch.whatsat = whatsat;
  uint64_t start = now_ns();
  double cpu0 = cpu_seconds();
  run_loop(cs, opt.conns, start + opt.max_ms * NS_PER_MS, 1, batch_reply, batch_refill);
  double seconds = (double)(now_ns() - start) / 1e9;
  uint64_t answered = batch.ok + batch.older + batch.missing;
  json_begin();
  json_int("asked", batch.next - (uint64_t)opt.first);
  json_int("ok", batch.ok);
  json_int("older", batch.older);
  json_int("missing", batch.missing);
  json_int("complete", batch.next == batch.end && answered + n_errors == (uint64_t)opt.count);
  json_num("seconds", seconds);
  json_num("rate", (double)answered / seconds);
  json_num("gen_cpu", (cpu_seconds() - cpu0) / seconds);
  json_end();
  free_conns(cs, opt.conns);
}

/* ------------------------------------------------------------------ flood */

#define FLOOD_WRITERS 4
#define FLOOD_POLLERS 4
#define POLL_GIVE_UP_NS (2 * NS_PER_S)

static struct {
  histogram *ack, *upper, *lower, *poll_rtt;
  uint64_t sent, acked, acked_in_time, bad_acks, tracked, seen, gave_up, stop_ns;
} fl;

static void writer_reply(conn *c, const request *r, const char *s, size_t len, uint64_t at_ns) {
  (void)c;
  fl.acked++;
  if (at_ns <= fl.stop_ns) fl.acked_in_time++;
  record(fl.ack, at_ns - r->sent_ns);
  if (!is_at_for(s, len, r->num)) fl.bad_acks++;
}

static void poll_once(conn *p) { ask(p, ASK_WHATSAT, p->track_num, 0, "0.01 1"); }

/*
 * A poll that finds the update bounds its arrival from above (its reply came after it);
 * the last poll that did not find it bounds it from below (the server read that poll
 * after it was sent, and before the update arrived).
 */
static void poller_reply(conn *p, const request *r, const char *s, size_t len, uint64_t at_ns) {
  record(fl.poll_rtt, at_ns - r->sent_ns);
  if (!p->tracking) return;
  if (is_at_for(s, len, p->track_num)) {
    record(fl.upper, at_ns - p->track_since_ns);
    record(fl.lower, p->failed_poll_ns > p->track_since_ns ? p->failed_poll_ns - p->track_since_ns : 0);
    fl.seen++;
    p->tracking = 0;
  } else if (at_ns - p->track_since_ns > POLL_GIVE_UP_NS) {
    fl.gave_up++;
    p->tracking = 0;
  } else {
    p->failed_poll_ns = r->sent_ns;
    poll_once(p);
  }
}

static void flood_reply(conn *c, const request *r, const char *s, size_t len, uint64_t at_ns) {
  if (c->index < FLOOD_WRITERS) writer_reply(c, r, s, len, at_ns);
  else poller_reply(c, r, s, len, at_ns);
}

/** Hands the update just queued (id `num`, IAMAT queued at `at`) to an idle poller. */
static void track(conn *pollers, uint64_t num, uint64_t at) {
  for (int i = 0; i < FLOOD_POLLERS; i++) {
    conn *p = &pollers[i];
    if (!p->open || p->tracking || p->queue_len > 0) continue;
    p->tracking = 1;
    p->track_num = num;
    p->track_since_ns = at;
    p->failed_poll_ns = 0;
    poll_once(p);
    flush(p);
    fl.tracked++;
    return;
  }
}

/** Queues every update due by `t` (one new id each), round robin over the writers. */
static void send_due(conn *cs, uint64_t start, uint64_t gap, uint64_t t, uint64_t *next_track) {
  uint64_t due = (t - start) / gap + 1;
  for (; fl.sent < due; fl.sent++) {
    conn *w = &cs[fl.sent % FLOOD_WRITERS];
    uint64_t queued = ask(w, ASK_IAMAT, fl.sent, planned_time(fl.sent), NULL);
    if (t >= *next_track) {
      flush(w); /* the update leaves before its first poll */
      track(cs + FLOOD_WRITERS, fl.sent, queued);
      *next_track = t + NS_PER_S / (uint64_t)opt.track_rate;
    }
  }
  for (int i = 0; i < FLOOD_WRITERS; i++) flush(&cs[i]);
}

/** True while an update awaits its AT or a tracked update has not been found yet. */
static int flood_waiting(const conn *cs) {
  for (int i = 0; i < FLOOD_WRITERS + FLOOD_POLLERS; i++)
    if (cs[i].open && (cs[i].queue_len > 0 || cs[i].tracking)) return 1;
  return 0;
}

static void flood_report(const conn *cs, double gen_cpu) {
  uint64_t unacked = 0;
  for (int i = 0; i < FLOOD_WRITERS; i++) unacked += (uint64_t)cs[i].queue_len;
  double seconds = (double)opt.duration_ms / 1000.0;
  json_begin();
  json_num("rate_asked", opt.rate);
  json_int("sent", fl.sent);
  json_num("rate_sent", (double)fl.sent / seconds);
  json_int("acked", fl.acked);
  json_num("rate_acked", (double)fl.acked_in_time / seconds);
  json_int("unacked", unacked);
  json_int("bad_acks", fl.bad_acks);
  json_hist("ack_", fl.ack);
  json_int("tracked", fl.tracked);
  json_int("seen", fl.seen);
  json_int("gave_up", fl.gave_up);
  json_hist("prop_", fl.upper);
  json_hist("prop_low_", fl.lower);
  json_hist("poll_", fl.poll_rtt);
  json_num("gen_cpu", gen_cpu);
  json_end();
  fprintf(stderr, "flood %.0f/s: sent %llu acked %llu, propagation p50 %.0f us p99 %.0f us (poll rtt p50 %.0f us)\n",
          opt.rate, (unsigned long long)fl.sent, (unsigned long long)fl.acked, quantile_us(fl.upper, .5),
          quantile_us(fl.upper, .99), quantile_us(fl.poll_rtt, .5));
}

/*
 * Sends on a schedule (not when replies come back: an open loop), waking with nanosecond
 * timeouts so 10k/s is a steady 100 us apart rather than bursts per millisecond tick.
 */
static void mode_flood(void) {
  if (opt.dst <= 0) fail("--dst is required for flood");
  conn *cs = calloc(FLOOD_WRITERS + FLOOD_POLLERS, sizeof(conn));
  if (!cs) fail("out of memory");
  open_into(cs, FLOOD_WRITERS, opt.port, 0);                            /* writers, at the source */
  open_into(cs + FLOOD_WRITERS, FLOOD_POLLERS, opt.dst, FLOOD_WRITERS); /* pollers, at the far end */
  fl.ack = calloc(1, sizeof(histogram)), fl.upper = calloc(1, sizeof(histogram));
  fl.lower = calloc(1, sizeof(histogram)), fl.poll_rtt = calloc(1, sizeof(histogram));
  uint64_t start = now_ns(), gap = (uint64_t)(1e9 / opt.rate), next_track = start;
  fl.stop_ns = start + opt.duration_ms * NS_PER_MS;
  uint64_t hard_stop = fl.stop_ns + 8 * NS_PER_S; /* then give up on late replies */
  double cpu0 = cpu_seconds();
  struct epoll_event events[EVENTS_MAX];
  for (uint64_t t = start; t < hard_stop; t = now_ns()) {
    if (t < fl.stop_ns) send_due(cs, start, gap, t, &next_track);
    else if (!flood_waiting(cs)) break;
    uint64_t next_due = start + fl.sent * gap, wake = 10 * NS_PER_MS;
    if (t < fl.stop_ns) wake = next_due > t ? next_due - t : 0;
    if (wake > 10 * NS_PER_MS) wake = 10 * NS_PER_MS;
    struct timespec timeout = {0, (long)wake};
    handle_events(events, epoll_pwait2(epfd, events, EVENTS_MAX, &timeout, NULL), flood_reply, NULL);
  }
  flood_report(cs, (cpu_seconds() - cpu0) / ((double)(now_ns() - start) / 1e9));
  free_conns(cs, FLOOD_WRITERS + FLOOD_POLLERS);
}

/* ------------------------------------------------------------------ idle connections */

#define CONNECTS_IN_FLIGHT 128
#define IDLE_SAMPLE 100

/** Sends `line` on a blocking-style fd and waits up to `timeout_ms` for a whole line back. */
static int say_and_hear(int fd, const char *line, size_t len, char *reply, size_t cap, int timeout_ms) {
  if (send(fd, line, len, MSG_NOSIGNAL) != (ssize_t)len) return -1;
  size_t got = 0;
  uint64_t deadline = now_ns() + (uint64_t)timeout_ms * NS_PER_MS;
  while (got < cap - 1 && !memchr(reply, '\n', got)) {
    uint64_t t = now_ns();
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (t >= deadline || poll(&p, 1, (int)((deadline - t) / NS_PER_MS) + 1) != 1) return -1;
    ssize_t k = recv(fd, reply + got, cap - 1 - got, 0);
    if (k <= 0) return -1;
    got += (size_t)k;
  }
  return (int)got;
}

/** Opens `n` connections that each say `hello` and get their AT; returns how many did. */
static int open_idle(int *fds, int n, const char *hello, size_t hello_len, uint64_t deadline) {
  int started = 0, ready = 0, pending = 0;
  char reply[512];
  struct epoll_event events[EVENTS_MAX];
  struct sockaddr_in a = loopback(opt.port);
  for (int i = 0; i < n; i++) fds[i] = -1;
  while (started < n || pending > 0) {
    if (now_ns() >= deadline) break;
    for (; started < n && pending < CONNECTS_IN_FLIGHT; started++) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) break;
      if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
        close(fd);
        continue;
      }
      struct epoll_event e = {.events = EPOLLOUT, .data.u64 = (uint64_t)started};
      epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e);
      fds[started] = fd;
      pending++;
    }
    if (started < n && pending == 0) break; /* out of descriptors */
    int k = epoll_wait(epfd, events, EVENTS_MAX, 50);
    for (int e = 0; e < k; e++) {
      int i = (int)events[e].data.u64, fd = fds[i], err = 0;
      socklen_t errlen = sizeof err;
      if (events[e].events & EPOLLOUT) { /* connected (or failed): say hello */
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen);
        struct epoll_event in = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
        if (err == 0) no_delay(fd);
        if (err == 0 && send(fd, hello, hello_len, MSG_NOSIGNAL) == (ssize_t)hello_len &&
            epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &in) == 0)
          continue;
      } else {
        ssize_t got = recv(fd, reply, sizeof reply, 0);
        if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (got > 0 && reply[0] == 'A') { /* answered: now it idles, out of the poll set */
          epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
          ready++;
          pending--;
          continue;
        }
      }
      epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
      close(fd);
      fds[i] = -1;
      pending--;
    }
  }
  return ready;
}

/** Connections the server closed while they idled (a zero-byte read). */
static int count_closed_idle(const int *fds, int n) {
  int gone = 0;
  char b[64];
  for (int i = 0; i < n; i++) {
    if (fds[i] < 0) continue;
    ssize_t k = recv(fds[i], b, sizeof b, MSG_DONTWAIT | MSG_PEEK);
    gone += k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
  }
  return gone;
}

static void mode_idle(void) {
  raise_open_files();
  int n = opt.conns, *fds = malloc(sizeof(int) * (size_t)n);
  long rss_before = status_kb(opt.pid, "VmRSS");
  char hello[160], line[160], reply[4096];
  size_t hello_len = (size_t)format_iamat(hello, 0xfffffffffull, planned_time(0));
  uint64_t start = now_ns();
  int opened = open_idle(fds, n, hello, hello_len, start + opt.max_ms * NS_PER_MS);
  double open_seconds = (double)(now_ns() - start) / 1e9;
  pause_ns(NS_PER_S); /* let the server settle before reading its memory */
  long rss_held = status_kb(opt.pid, "VmRSS");
  histogram *h = calloc(1, sizeof(histogram));
  int probe_failed = 0;
  for (int i = 0; i < opt.probes; i++) {
    uint64_t t = now_ns();
    int fd = connect_to(opt.port, 1000), ok = 0;
    if (fd >= 0) {
      int len = format_iamat(line, 0x1000000ull + (uint64_t)i, wall_ns());
      int got = say_and_hear(fd, line, (size_t)len, reply, sizeof reply, 1000);
      ok = got > 0 && is_at_for(reply, (size_t)got, 0x1000000ull + (uint64_t)i);
      close(fd);
    }
    if (ok) record(h, now_ns() - t);
    else probe_failed++;
    pause_ns(10 * NS_PER_MS);
  }
  int sampled = 0, sample_ok = 0;
  for (int i = 0; i < n && sampled < IDLE_SAMPLE; i += n / IDLE_SAMPLE > 0 ? n / IDLE_SAMPLE : 1) {
    if (fds[i] < 0) continue;
    sampled++;
    int got = say_and_hear(fds[i], hello, hello_len, reply, sizeof reply, 1000);
    sample_ok += got > 0 && reply[0] == 'A';
  }
  int closed_by_server = count_closed_idle(fds, n);
  json_begin();
  json_int("asked", (uint64_t)n);
  json_int("opened", (uint64_t)opened);
  json_num("open_seconds", open_seconds);
  json_int("closed_by_server", (uint64_t)closed_by_server);
  printf(",\"rss_before_kb\":%ld,\"rss_held_kb\":%ld", rss_before, rss_held);
  json_num("bytes_per_conn", opened > 0 ? (double)(rss_held - rss_before) * 1024.0 / opened : 0);
  json_int("probes", (uint64_t)opt.probes);
  json_int("probe_failed", (uint64_t)probe_failed);
  json_hist("probe_", h);
  json_int("idle_sampled", (uint64_t)sampled);
  json_int("idle_sample_ok", (uint64_t)sample_ok);
  json_end();
  for (int i = 0; i < n; i++)
    if (fds[i] >= 0) close(fds[i]);
  free(fds);
}

/* ------------------------------------------------------------------ main */

static int built_with_tls(void) {
#ifdef HERDLOAD_TLS
  return 1;
#else
  return 0;
#endif
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc == 2 && !strcmp(argv[1], "features")) {
    printf("{\"mode\":\"features\",\"tls\":%d}\n", built_with_tls());
    return 0;
  }
  parse_options(argc, argv);
  make_locations();
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (opt.tls_ca) {
    if (!built_with_tls()) fail("--tls-ca: this herdload was built without TLS (no OpenSSL headers)");
    if (!strcmp(opt.mode, "idle")) fail("--tls-ca: idle mode speaks plain TCP only");
#ifdef HERDLOAD_TLS
    tls_init();
#endif
  }
  if (opt.conns > 512) raise_open_files();
  if (!strcmp(opt.mode, "closed")) mode_closed();
  else if (!strcmp(opt.mode, "register")) mode_batch(0);
  else if (!strcmp(opt.mode, "check")) mode_batch(1);
  else if (!strcmp(opt.mode, "flood")) mode_flood();
  else if (!strcmp(opt.mode, "idle")) mode_idle();
  else fail("unknown mode %s", opt.mode);
  return 0;
}
