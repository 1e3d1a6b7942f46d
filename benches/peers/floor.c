/*
 * floor.c - the "physical floor" for the Lambda custom-runtime benchmark.
 *
 * A deliberately minimal AWS Lambda Runtime API client: it long-polls
 * /next, echoes each event body back to /response, and repeats. Per
 * invocation it makes exactly the socket calls any correct runtime must make:
 *   write()  GET  {prefix}/2018-06-01/runtime/invocation/next
 *   read()s  until the response head and whole body are in
 *   writev() POST {prefix}/2018-06-01/runtime/invocation/{id}/response
 *   read()s  until the reply is complete, so the connection can be reused
 * A real runtime's CPU time and latency per invocation are reported as a
 * ratio to this program.
 *
 * It is honest: a correct HTTP/1.1 client for what the benchmark exercises
 * (Content-Length, chunked bodies with extensions and trailers, bodies ended
 * by EOF, keep-alive and Connection: close, case-insensitive header names,
 * bracketed IPv6, optional http:// scheme and path prefix in
 * AWS_LAMBDA_RUNTIME_API). It is minimal: one static buffer, no allocation,
 * no printf on the hot path, no syscalls beyond the four above.
 *
 * It deliberately does NOT: resolve names other than "localhost" (no DNS and
 * no getaddrinfo, so the static glibc build links cleanly), parse JSON, post
 * /init/error or /invocation/error, set _X_AMZN_TRACE_ID, handle 1xx interim
 * responses, pipeline, speak TLS, or retry. Any I/O error, unexpected EOF,
 * message larger than 8 MiB + 64 KiB, or non-200 /next is reported in one
 * line on stderr and exits 1.
 *
 * Build: cc -O2 -Wall -Wextra -o floor floor.c   (or add -static)
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define BUF_CAP (8u * 1024 * 1024 + 64 * 1024)

static char buf[BUF_CAP];       /* each response is read (and de-chunked) here */
static size_t have;             /* bytes of buf filled by read() */
static char get_req[2048];      /* prebuilt GET /next request */
static char post_a[1024], post_b[1024]; /* POST head before/after the id */
static char head[4096];         /* POST head built per invocation */
static size_t get_len, post_a_len, post_b_len;
static struct sockaddr_storage addr;
static socklen_t addr_len;

struct resp {
    int status, close;
    char *body, *id, *inv;      /* id: Lambda-Runtime-Aws-Request-Id */
    size_t body_len, id_len, inv_len; /* inv: Lambda-Runtime-Invocation-Id */
};

static void die(const char *msg, int err)
{
    fprintf(stderr, "floor: %s%s%s\n", msg, err ? ": " : "", err ? strerror(err) : "");
    exit(1);
}

/* One read() appending to buf. EOF is fatal unless eof_ok; returns bytes read. */
static size_t read_more(int fd, int eof_ok)
{
    if (have == BUF_CAP) die("response larger than buffer", 0);
    ssize_t n = read(fd, buf + have, BUF_CAP - have);
    if (n < 0) die("read", errno);
    if (n == 0 && !eof_ok) die("unexpected EOF from Runtime API", 0);
    have += (size_t)n;
    return (size_t)n;
}

static void fill_to(int fd, size_t upto)
{
    if (upto > BUF_CAP) die("response larger than buffer", 0);
    while (have < upto) read_more(fd, 0);
}

/* Index of the "\r\n" ending the line that starts at p, reading as needed. */
static size_t line_end(int fd, size_t p)
{
    for (;; read_more(fd, 0))
        for (; p + 1 < have; p++)
            if (buf[p] == '\r' && buf[p + 1] == '\n') return p;
}

static int is_name(const char *s, size_t n, const char *name)
{
    return n == strlen(name) && strncasecmp(s, name, n) == 0;
}

static int has_word(const char *s, size_t n, const char *w)
{
    size_t wl = strlen(w);
    for (size_t i = 0; i + wl <= n; i++)
        if (strncasecmp(s + i, w, wl) == 0) return 1;
    return 0;
}

/* Read one complete HTTP/1.x response into buf; body is left contiguous. */
static void read_resp(int fd, struct resp *r)
{
    size_t p, e, cl = 0, w;
    int has_cl = 0, chunked = 0;

    *r = (struct resp){0};
    have = 0;
    e = line_end(fd, 0);
    if (e < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ' ||
        buf[9] < '1' || buf[9] > '5' || buf[10] < '0' || buf[10] > '9' ||
        buf[11] < '0' || buf[11] > '9')
        die("bad status line", 0);
    r->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    r->close = buf[7] == '0';   /* HTTP/1.0: no keep-alive */
    for (p = e + 2; (e = line_end(fd, p)) != p; p = e + 2) {
        char *l = buf + p, *c = memchr(l, ':', e - p), *v, *ve = buf + e;
        if (!c) die("malformed header line", 0);
        for (v = c + 1; v < ve && (*v == ' ' || *v == '\t'); v++) {}
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
        size_t nl = (size_t)(c - l), vl = (size_t)(ve - v);
        if (is_name(l, nl, "content-length")) {
            if (vl == 0) die("bad Content-Length", 0);
            for (cl = 0, has_cl = 1; v < ve; v++) {
                if (*v < '0' || *v > '9' || cl > BUF_CAP) die("bad Content-Length", 0);
                cl = cl * 10 + (size_t)(*v - '0');
            }
        } else if (is_name(l, nl, "transfer-encoding")) {
            chunked = has_word(v, vl, "chunked");
        } else if (is_name(l, nl, "connection")) {
            r->close = has_word(v, vl, "close");
        } else if (is_name(l, nl, "lambda-runtime-aws-request-id")) {
            r->id = v, r->id_len = vl;
        } else if (is_name(l, nl, "lambda-runtime-invocation-id")) {
            r->inv = v, r->inv_len = vl;
        }
    }
    p += 2;
    r->body = buf + p;
    if (chunked) {              /* decode in place: data moves down to w */
        for (w = p;;) {
            size_t sz = 0, nd = 0;
            for (e = line_end(fd, p); p < e; p++, nd++) {
                int ch = buf[p] | 32, d = ch >= '0' && ch <= '9' ? ch - '0'
                                      : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
                if (d < 0) break;   /* chunk extensions are ignored */
                if (sz > BUF_CAP) die("chunk larger than buffer", 0);
                sz = sz * 16 + (size_t)d;
            }
            if (nd == 0) die("bad chunk size", 0);
            p = e + 2;
            if (sz == 0) break;
            fill_to(fd, p + sz + 2);
            if (buf[p + sz] != '\r' || buf[p + sz + 1] != '\n') die("bad chunk end", 0);
            memmove(buf + w, buf + p, sz);
            w += sz, p += sz + 2;
        }
        while ((e = line_end(fd, p)) != p) p = e + 2;  /* skip trailers */
        p += 2;
        r->body_len = w - (size_t)(r->body - buf);
    } else if (has_cl) {
        fill_to(fd, p + cl);
        r->body_len = cl, p += cl;
    } else if (r->status != 204 && r->status != 304) {  /* body ends at EOF */
        while (read_more(fd, 1) > 0) {}
        r->body_len = have - p, p = have, r->close = 1;
    }
    if (have != p) die("unexpected bytes after response", 0);
}

static int dial(void)
{
    int one = 1, fd = socket(addr.ss_family, SOCK_STREAM, 0);
    if (fd < 0) die("socket", errno);
    if (connect(fd, (struct sockaddr *)&addr, addr_len) < 0) die("connect", errno);
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
        die("setsockopt TCP_NODELAY", errno);
    return fd;
}

/* Parse AWS_LAMBDA_RUNTIME_API, fill addr and the prebuilt request parts. */
static void setup(const char *api)
{
    const char *s = api, *hs = api, *he = api, *pe = api;
    char host[512];
    unsigned long port = 80;

    if (strlen(api) > 400) die("AWS_LAMBDA_RUNTIME_API too long", 0);
    if (strncmp(s, "http://", 7) == 0) s = hs = s + 7;
    if (*s != '[') he = pe = s + strcspn(s, ":/");
    else if ((he = strchr(hs = s + 1, ']'))) pe = he + 1;
    else die("bad AWS_LAMBDA_RUNTIME_API", 0);
    if (*pe == ':') {
        for (port = 0, pe++; *pe >= '0' && *pe <= '9' && port <= 65535; pe++)
            port = port * 10 + (unsigned long)(*pe - '0');
        if (port == 0 || port > 65535) die("bad port in AWS_LAMBDA_RUNTIME_API", 0);
    }
    if ((*pe && *pe != '/') || he == hs) die("bad AWS_LAMBDA_RUNTIME_API", 0);
    int alen = (int)(pe - s), plen = (int)strlen(pe);
    while (plen > 0 && pe[plen - 1] == '/') plen--;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    if (strcmp(host, "localhost") == 0) strcpy(host, "127.0.0.1");

    struct sockaddr_in *a4 = (struct sockaddr_in *)&addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&addr;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET, a4->sin_port = htons((uint16_t)port);
        addr_len = sizeof *a4;
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6, a6->sin6_port = htons((uint16_t)port);
        addr_len = sizeof *a6;
    } else {
        die("Runtime API host must be a numeric address or localhost", 0);
    }
    get_len = (size_t)snprintf(get_req, sizeof get_req,
        "GET %.*s/2018-06-01/runtime/invocation/next HTTP/1.1\r\n"
        "Host: %.*s\r\nUser-Agent: floor\r\n\r\n", plen, pe, alen, s);
    post_a_len = (size_t)snprintf(post_a, sizeof post_a,
        "POST %.*s/2018-06-01/runtime/invocation/", plen, pe);
    post_b_len = (size_t)snprintf(post_b, sizeof post_b,
        "/response HTTP/1.1\r\nHost: %.*s\r\nUser-Agent: floor\r\n"
        "Content-Type: application/json\r\nContent-Length: ", alen, s);
}

static char *put(char *h, const void *s, size_t n)
{
    if (n > (size_t)(head + sizeof head - h)) die("request id too long", 0);
    memcpy(h, s, n);
    return h + n;
}

/* Build the POST head (no printf) and send head + body with one writev(). */
static void post_response(int fd, const struct resp *r)
{
    char num[24], *q = num + sizeof num, *h = head;
    size_t n = r->body_len;

    do *--q = (char)('0' + n % 10); while (n /= 10);
    h = put(h, post_a, post_a_len);
    h = put(h, r->id, r->id_len);
    h = put(h, post_b, post_b_len);
    h = put(h, q, (size_t)(num + sizeof num - q));
    if (r->inv) {
        h = put(h, "\r\nLambda-Runtime-Invocation-Id: ", 32);
        h = put(h, r->inv, r->inv_len);
    }
    h = put(h, "\r\n\r\n", 4);

    struct iovec iov[2] = {{head, (size_t)(h - head)}, {r->body, r->body_len}}, *v = iov;
    int cnt = 2;
    while (cnt > 0) {
        ssize_t w = writev(fd, v, cnt);
        if (w < 0) die("writev", errno);
        for (; cnt > 0 && (size_t)w >= v->iov_len; v++, cnt--) w -= (ssize_t)v->iov_len;
        if (cnt > 0) v->iov_base = (char *)v->iov_base + w, v->iov_len -= (size_t)w;
    }
}

int main(void)
{
    const char *api = getenv("AWS_LAMBDA_RUNTIME_API");
    if (!api || !*api) die("AWS_LAMBDA_RUNTIME_API is not set", 0);
    signal(SIGPIPE, SIG_IGN);   /* a dead peer is an EPIPE error, not a signal */
    setup(api);

    int fd = dial();
    for (struct resp r;;) {
        for (size_t off = 0; off < get_len;) {
            ssize_t w = write(fd, get_req + off, get_len - off);
            if (w < 0) die("write", errno);
            off += (size_t)w;
        }
        read_resp(fd, &r);
        if (r.status != 200) {
            fprintf(stderr, "floor: /next returned HTTP %d\n", r.status);
            exit(1);
        }
        if (!r.id || r.id_len == 0) die("/next without Lambda-Runtime-Aws-Request-Id", 0);
        if (r.close) close(fd), fd = dial();

        post_response(fd, &r);
        read_resp(fd, &r);      /* reuses buf: the event body is already sent */
        if (r.status / 100 != 2) {
            char m[] = "floor: /response returned HTTP 000\n";
            m[sizeof m - 5] = (char)('0' + r.status / 100);
            m[sizeof m - 4] = (char)('0' + r.status / 10 % 10);
            m[sizeof m - 3] = (char)('0' + r.status % 10);
            if (write(2, m, sizeof m - 1) < 0) {}
        }
        if (r.close) close(fd), fd = dial();
    }
}
