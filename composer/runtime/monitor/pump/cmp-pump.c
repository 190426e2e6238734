/* cmp-pump: the idle half of a container's monitor.
 *
 * The Python monitor (runtime/monitor.py) starts the container, then execs this program once nobody
 * is attached, so an idle container costs ~0.2 MB instead of ~1 MB of a Python heap. It keeps the
 * pid (still the parent and subreaper of PID 1: both survive execve) and copies PID 1's stdout and
 * stderr into container.log exactly as the Python pump does (docker json-file lines, 16 KiB partial
 * records, rotation by max-size/max-file between whole lines). When anything needs a decision (PID 1
 * exited, a healthcheck is due) it execs the Python monitor again with the same fds; policy lives
 * in one place only.
 *
 *   cmp-pump COMM PID1 OUT_FD ERR_FD LOG MAX_SIZE MAX_FILE WAKE_MS [QUIT_IF] -- RESUME_ARGV...
 *
 * OUT_FD/ERR_FD: -1 when closed already; LOG "-" for no log; MAX_SIZE 0 = unlimited; WAKE_MS: wall
 * clock in ms when to hand back (0 = never). On PID 1's exit RESUME_ARGV is exec'd with "exit" CODE
 * appended (docker's code: status, or 128+signal), on the wake time with "wake" 0; then the stdout
 * and stderr fds still open (-1 for an ended stream). QUIT_IF: a path; when it exists at PID 1's
 * exit, the run's container is being removed (`down`), so nobody needs the exit recorded: exit
 * instead of resuming, which would cost an interpreter start (~20 ms of CPU, 30 at once in a
 * `down` of 30 services). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PARTIAL_MAX (16 * 1024) /* docker's json-file splits longer lines */
#define READ_SIZE 65536

struct stream {
    int fd;
    const char *name;
    unsigned char buf[PARTIAL_MAX + READ_SIZE];
    size_t len;
};

static const char *log_path;
static int log_fd = -1;
static long long log_size, max_size;
static int max_file = 1;
static char *rec; /* one json record; worst case 12 bytes of output per input byte */
static size_t rec_cap;

static void log_open(void) {
    struct stat st;
    log_fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    log_size = (log_fd >= 0 && fstat(log_fd, &st) == 0) ? st.st_size : 0;
}

static void log_rotate(void) {
    char src[4096], dst[4096];
    if (max_file <= 1) {
        if (ftruncate(log_fd, 0) == 0) log_size = 0;
        return;
    }
    close(log_fd);
    for (int n = max_file - 1; n >= 1; n--) {
        if (n == 1) snprintf(src, sizeof src, "%s", log_path);
        else snprintf(src, sizeof src, "%s.%d", log_path, n - 1);
        snprintf(dst, sizeof dst, "%s.%d", log_path, n);
        rename(src, dst); /* ENOENT: nothing to move yet */
    }
    log_open();
}

static void log_write(const char *data, size_t n) {
    if (log_fd < 0) return;
    if (max_size > 0 && log_size > 0 && log_size + (long long)n > max_size) log_rotate();
    while (n > 0) {
        ssize_t w = write(log_fd, data, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return; /* disk full: drop, as docker does, rather than block the container */
        }
        data += w;
        n -= (size_t)w;
        log_size += w;
    }
}

/* ---- JSON as Python's json.encoder.encode_basestring_ascii(bytes.decode("utf-8", "replace")) */

static char *put_u(char *o, unsigned v) {
    static const char hex[] = "0123456789abcdef";
    *o++ = '\\'; *o++ = 'u';
    *o++ = hex[(v >> 12) & 15]; *o++ = hex[(v >> 8) & 15]; *o++ = hex[(v >> 4) & 15]; *o++ = hex[v & 15];
    return o;
}

static char *put_cp(char *o, unsigned cp) {
    if (cp == '"') { *o++ = '\\'; *o++ = '"'; }
    else if (cp == '\\') { *o++ = '\\'; *o++ = '\\'; }
    else if (cp == '\n') { *o++ = '\\'; *o++ = 'n'; }
    else if (cp == '\r') { *o++ = '\\'; *o++ = 'r'; }
    else if (cp == '\t') { *o++ = '\\'; *o++ = 't'; }
    else if (cp == '\b') { *o++ = '\\'; *o++ = 'b'; }
    else if (cp == '\f') { *o++ = '\\'; *o++ = 'f'; }
    else if (cp >= 0x20 && cp <= 0x7e) *o++ = (char)cp;
    else if (cp >= 0x10000) {
        cp -= 0x10000;
        o = put_u(o, 0xd800 | (cp >> 10));
        o = put_u(o, 0xdc00 | (cp & 0x3ff));
    } else o = put_u(o, cp);
    return o;
}

/* Decode one UTF-8 character at s[0..n); *used = bytes consumed. Invalid input yields U+FFFD for
 * the maximal valid prefix of a sequence, as CPython's "replace" handler. */
static unsigned utf8(const unsigned char *s, size_t n, size_t *used) {
    unsigned c = s[0], need, cp;
    unsigned char lo = 0x80, hi = 0xbf;
    *used = 1;
    if (c < 0x80) return c;
    if (c >= 0xc2 && c <= 0xdf) { need = 1; cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) {
        need = 2; cp = c & 0x0f;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3; cp = c & 0x07;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else return 0xfffd;
    for (unsigned i = 1; i <= need; i++) {
        if (i >= n) { *used = i; return 0xfffd; }
        unsigned char b = s[i];
        if (b < lo || b > hi) { *used = i; return 0xfffd; }
        lo = 0x80; hi = 0xbf;
        cp = (cp << 6) | (b & 0x3f);
    }
    *used = need + 1;
    return cp;
}

static void now_text(char *out, size_t cap) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t k = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + k, cap - k, ".%09ldZ", ts.tv_nsec);
}

static void emit(const char *stream, const unsigned char *line, size_t n, const char *when) {
    size_t need = 64 + strlen(stream) + strlen(when) + 12 * n;
    if (need > rec_cap) {
        free(rec);
        rec_cap = need;
        rec = malloc(rec_cap);
        if (!rec) { rec_cap = 0; return; }
    }
    char *o = rec;
    o += sprintf(o, "{\"log\": \"");
    for (size_t i = 0; i < n;) {
        size_t used;
        unsigned cp = utf8(line + i, n - i, &used);
        o = put_cp(o, cp);
        i += used;
    }
    o += sprintf(o, "\", \"stream\": \"%s\", \"time\": \"%s\"}\n", stream, when);
    log_write(rec, (size_t)(o - rec));
}

/* Records for every whole line (and 16 KiB pieces of a longer one); with final, the rest too. */
static void flush(struct stream *s, int final) {
    char when[64];
    size_t start = 0;
    now_text(when, sizeof when);
    while (start < s->len) {
        unsigned char *nl = memchr(s->buf + start, '\n', s->len - start);
        size_t rest = s->len - start, cut;
        if (!nl && rest < PARTIAL_MAX && !final) break;
        cut = nl ? (size_t)(nl - (s->buf + start)) + 1 : (rest < PARTIAL_MAX ? rest : PARTIAL_MAX);
        emit(s->name, s->buf + start, cut, when);
        start += cut;
    }
    memmove(s->buf, s->buf + start, s->len - start);
    s->len -= start;
}

/* 0 at EOF (or EIO: a pty whose slaves are all closed), 1 otherwise. */
static int pump(struct stream *s) {
    ssize_t n = read(s->fd, s->buf + s->len, READ_SIZE);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return 1;
    if (n <= 0) {
        flush(s, 1);
        close(s->fd);
        s->fd = -1;
        return 0;
    }
    s->len += (size_t)n;
    flush(s, 0);
    return 1;
}

static long long wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct stream out_s, err_s;

static void resume(char **argv, const char *event, const char *arg) {
    int argc = 0;
    while (argv[argc]) argc++;
    char **args = calloc((size_t)argc + 5, sizeof *args), out[16], err[16];
    if (!args) _exit(70);
    /* what was read but is not a whole line yet becomes its own record: the resumed monitor starts
     * with empty buffers */
    if (out_s.fd >= 0) flush(&out_s, 1);
    if (err_s.fd >= 0) flush(&err_s, 1);
    snprintf(out, sizeof out, "%d", out_s.fd); /* -1 once a stream has ended */
    snprintf(err, sizeof err, "%d", err_s.fd);
    for (int i = 0; i < argc; i++) args[i] = argv[i];
    args[argc] = (char *)event;
    args[argc + 1] = (char *)arg;
    args[argc + 2] = out;
    args[argc + 3] = err;
    execv(args[0], args);
    fprintf(stderr, "cmp-pump: cannot exec %s: %s\n", args[0], strerror(errno));
    _exit(70);
}

int main(int argc, char **argv) {
    const char *quit_if = NULL;
    int sep = 9;
    if (argc > 11 && strcmp(argv[9], "--") != 0 && strcmp(argv[10], "--") == 0) quit_if = argv[sep++];
    if (argc < sep + 2 || strcmp(argv[sep], "--") != 0) {
        fprintf(stderr, "usage: cmp-pump COMM PID1 OUT_FD ERR_FD LOG MAX_SIZE MAX_FILE WAKE_MS [QUIT_IF] -- RESUME...\n");
        return 64;
    }
    prctl(PR_SET_NAME, argv[1], 0, 0, 0);
    pid_t pid1 = (pid_t)atoi(argv[2]);
    out_s.fd = atoi(argv[3]);
    out_s.name = "stdout";
    err_s.fd = atoi(argv[4]);
    err_s.name = "stderr";
    if (strcmp(argv[5], "-") != 0) {
        log_path = argv[5];
        max_size = atoll(argv[6]);
        max_file = atoi(argv[7]);
        log_open();
    }
    long long wake = atoll(argv[8]);
    char **resume_argv = argv + sep + 1;
    signal(SIGCHLD, SIG_DFL);
    /* a pidfd, not SIGCHLD: a poll wakes for PID 1 alone, and the pid is ours until we reap it */
    int pidfd = (int)syscall(SYS_pidfd_open, pid1, 0);
    if (pidfd < 0) resume(resume_argv, "nopump", "0"); /* no pidfds: the monitor stays Python */
    for (;;) {
        struct pollfd p[3];
        int n = 0, io = 0;
        if (out_s.fd >= 0) p[n++] = (struct pollfd){.fd = out_s.fd, .events = POLLIN};
        if (err_s.fd >= 0) p[n++] = (struct pollfd){.fd = err_s.fd, .events = POLLIN};
        io = n;
        p[n++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
        int timeout = -1;
        if (wake > 0) {
            long long left = wake - wall_ms();
            if (left <= 0) resume(resume_argv, "wake", "0");
            timeout = left > 3600000 ? 3600000 : (int)left + 1;
        }
        int r = poll(p, (nfds_t)n, timeout);
        if (r < 0 && errno == EINTR) continue;
        for (int i = 0; i < io; i++)
            if (p[i].revents) pump(p[i].fd == out_s.fd ? &out_s : &err_s);
        if (p[io].revents) {
            int status, code = 255;
            while (waitpid(pid1, &status, 0) < 0 && errno == EINTR) {}
            if (WIFEXITED(status)) code = WEXITSTATUS(status);
            else if (WIFSIGNALED(status)) code = 128 + WTERMSIG(status);
            if (quit_if && access(quit_if, F_OK) == 0) {
                if (out_s.fd >= 0) flush(&out_s, 1);
                if (err_s.fd >= 0) flush(&err_s, 1);
                _exit(0);
            }
            char text[16];
            snprintf(text, sizeof text, "%d", code);
            resume(resume_argv, "exit", text);
        }
    }
}
