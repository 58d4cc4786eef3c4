/* Native tar stream of a scanned tree; see fastpack_native.h and src/fastpack/tarstream.py.
 *
 * Every byte written here must equal what the pure-Python TarReader writes
 * (tests compare both against each other and against GNU tar).
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "fastpack_native.h"

#define BLOCK 512
#define RECORD 10240
#define NAME_MAX_LEN 100
#define LINK_MAX_LEN 100
#define OCTAL11_LIMIT ((int64_t)1 << 33) /* 8**11: does not fit a 12-byte octal field */
#define INT64_DIGITS 20

typedef struct {
    const char *name;
    size_t name_len;
    const char *link;
    size_t link_len;
    const char *source;
    int64_t size;
    uint32_t mode;
    char typeflag;
    uint64_t dev;
    uint64_t ino;
    int64_t mtime_ns;
    int64_t ctime_ns;
} fp_entry;

struct fp_reader {
    fp_entry *entries;
    size_t count;
    size_t next;          /* index of the next entry to start */
    size_t current;       /* index of the file being read */
    int64_t mtime;
    unsigned char *pending; /* header or padding bytes not yet copied out */
    size_t pending_cap;
    size_t pending_len;
    size_t pending_off;
    int fd;
    int64_t remaining;    /* bytes of the current file still to read */
    uint64_t written;
    int finished;
    fp_error error;       /* sticky: once set, every fill returns it */
};

/* ---------------------------------------------------------------- encoding */

static size_t padded(size_t size) { return (size + BLOCK - 1) / BLOCK * BLOCK; }

static int needs_pax(const char *data, size_t len, size_t limit) {
    if (len > limit) return 1;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)data[i] >= 0x80) return 1;
    return 0;
}

static size_t decimal_digits(size_t value) {
    size_t digits = 1;
    while (value >= 10) {
        value /= 10;
        digits++;
    }
    return digits;
}

/* Length of the pax record "<len> <key>=<value>\n", whose length counts its own digits. */
static size_t pax_record_len(size_t key_len, size_t value_len) {
    size_t body = key_len + value_len + 3;
    size_t length = body + 1;
    while (decimal_digits(length) + body != length) length++;
    return length;
}

static size_t put_pax_record(unsigned char *out, const char *key, const char *value, size_t value_len) {
    size_t key_len = strlen(key);
    size_t length = pax_record_len(key_len, value_len);
    int n = snprintf((char *)out, INT64_DIGITS + 2, "%zu ", length);
    size_t pos = (size_t)n;
    memcpy(out + pos, key, key_len);
    pos += key_len;
    out[pos++] = '=';
    memcpy(out + pos, value, value_len);
    pos += value_len;
    out[pos++] = '\n';
    return pos;
}

/* width-1 zero-padded octal digits and a NUL, as GNU tar writes numeric fields. */
static void put_octal(unsigned char *field, size_t width, uint64_t value) {
    field[width - 1] = '\0';
    for (size_t i = width - 1; i-- > 0;) {
        field[i] = (unsigned char)('0' + (value & 7));
        value >>= 3;
    }
}

static void ustar_block(unsigned char *block, const char *name, size_t name_len, uint32_t mode, uint64_t size,
                        int64_t mtime, char typeflag, const char *link, size_t link_len, int octal_devs) {
    memset(block, 0, BLOCK);
    memcpy(block, name, name_len < NAME_MAX_LEN ? name_len : NAME_MAX_LEN);
    put_octal(block + 100, 8, mode);
    put_octal(block + 108, 8, 0);
    put_octal(block + 116, 8, 0);
    put_octal(block + 124, 12, size);
    put_octal(block + 136, 12, (uint64_t)mtime);
    memset(block + 148, ' ', 8);
    block[156] = (unsigned char)typeflag;
    if (link_len) memcpy(block + 157, link, link_len < LINK_MAX_LEN ? link_len : LINK_MAX_LEN);
    memcpy(block + 257, "ustar\0" "00", 8);
    if (octal_devs) {
        put_octal(block + 329, 8, 0);
        put_octal(block + 337, 8, 0);
    }
    unsigned checksum = 0;
    for (size_t i = 0; i < BLOCK; i++) checksum += block[i];
    put_octal(block + 148, 7, checksum);
    block[155] = ' ';
}

size_t fp_header_capacity(size_t name_len, size_t link_len) {
    size_t records = pax_record_len(4, name_len) + pax_record_len(8, link_len) + pax_record_len(4, INT64_DIGITS);
    return 2 * BLOCK + padded(records);
}

size_t fp_encode_header(const char *name, size_t name_len, uint32_t mode, int64_t size, int64_t mtime,
                        char typeflag, const char *link, size_t link_len, unsigned char *out, size_t out_len) {
    if (size < 0 || mtime < 0 || mtime >= OCTAL11_LIMIT || out_len < fp_header_capacity(name_len, link_len))
        return 0;
    unsigned char *records = out + BLOCK;
    size_t records_len = 0;
    /* GNU tar's rules and record order: linkpath (only when too long), path, size. */
    if (link_len > LINK_MAX_LEN) records_len += put_pax_record(records, "linkpath", link, link_len);
    if (needs_pax(name, name_len, NAME_MAX_LEN))
        records_len += put_pax_record(records + records_len, "path", name, name_len);
    uint64_t size_field = (uint64_t)size;
    if (size >= OCTAL11_LIMIT) {
        char digits[INT64_DIGITS + 1];
        int n = snprintf(digits, sizeof digits, "%lld", (long long)size);
        records_len += put_pax_record(records + records_len, "size", digits, (size_t)n);
        size_field = 0;
    }
    if (!records_len) {
        ustar_block(out, name, name_len, mode, size_field, mtime, typeflag, link, link_len, 1);
        return BLOCK;
    }
    /* GNU's exthdr.name=%d/PaxHeaders/%f: trailing '/' dropped, %d is "." at the top level. */
    size_t trimmed = name_len;
    while (trimmed && name[trimmed - 1] == '/') trimmed--;
    size_t slash = trimmed;
    while (slash && name[slash - 1] != '/') slash--;
    unsigned char pax_name[NAME_MAX_LEN];
    size_t pax_len = 0;
    const char *dir = slash ? name : ".";
    size_t dir_len = slash ? slash - 1 : 1;
    const char *parts[3] = {dir, "/PaxHeaders/", name + slash};
    size_t lens[3] = {dir_len, 12, trimmed - slash};
    for (int i = 0; i < 3 && pax_len < NAME_MAX_LEN; i++) {
        size_t take = lens[i] < NAME_MAX_LEN - pax_len ? lens[i] : NAME_MAX_LEN - pax_len;
        memcpy(pax_name + pax_len, parts[i], take);
        pax_len += take;
    }
    size_t padded_records = padded(records_len);
    memset(records + records_len, 0, padded_records - records_len);
    ustar_block(out, (const char *)pax_name, pax_len, 0644, records_len, mtime, 'x', "", 0, 0);
    ustar_block(out + BLOCK + padded_records, name, name_len, mode, size_field, mtime, typeflag, link, link_len, 1);
    return 2 * BLOCK + padded_records;
}

/* ----------------------------------------------------------------- reading */

static int fail(fp_reader *r, int kind, int errnum, size_t index, int64_t now_size) {
    r->error.kind = kind;
    r->error.errnum = errnum;
    r->error.index = index;
    r->error.now_size = now_size;
    fp_reader_close(r);
    return kind;
}

static int reserve_pending(fp_reader *r, size_t size) {
    if (size <= r->pending_cap) return 1;
    unsigned char *grown = realloc(r->pending, size);
    if (!grown) return 0;
    r->pending = grown;
    r->pending_cap = size;
    return 1;
}

static int queue_zeros(fp_reader *r, size_t size) {
    if (!reserve_pending(r, size)) return 0;
    memset(r->pending, 0, size);
    r->pending_len = size;
    r->pending_off = 0;
    return 1;
}

/* Timestamps in nanoseconds as Python's st_mtime_ns; 0 when they do not fit 64 bits
 * (past the year 2262), which the scan treats as unusual and the reader as a change. */
static int timespec_ns(const struct timespec *ts, int64_t *out) {
    int64_t ns;
    if (__builtin_mul_overflow((int64_t)ts->tv_sec, (int64_t)1000000000, &ns) ||
        __builtin_add_overflow(ns, (int64_t)ts->tv_nsec, out))
        return 0;
    return 1;
}

#define CHECK_DONE 0     /* all data read */
#define CHECK_EOF 1      /* end of file before the scanned size */
#define CHECK_READ_ERR 2 /* read failed with read_errno */

/* The one fstat per file, after its data (or a failed read): still the scanned file,
 * same size, then what happened, then not modified. This is the order of the Python
 * reader's checks (identity and size at open, read, mtime/ctime at the end), so the
 * same change gets the same message. */
static int check_file(fp_reader *r, int outcome, int read_errno) {
    const fp_entry *e = &r->entries[r->current];
    struct stat st;
    if (fstat(r->fd, &st) != 0) return fail(r, FP_ERR_FSTAT, errno, r->current, 0);
    if ((uint64_t)st.st_dev != e->dev || (uint64_t)st.st_ino != e->ino) return fail(r, FP_ERR_REPLACED, 0, r->current, 0);
    if ((int64_t)st.st_size != e->size) return fail(r, FP_ERR_SIZE, 0, r->current, (int64_t)st.st_size);
    if (outcome == CHECK_READ_ERR) return fail(r, FP_ERR_READ, read_errno, r->current, 0);
    if (outcome == CHECK_EOF) return fail(r, FP_ERR_SHRANK, 0, r->current, 0);
    int64_t mtime_ns, ctime_ns;
    if (!timespec_ns(&st.st_mtim, &mtime_ns) || !timespec_ns(&st.st_ctim, &ctime_ns) || mtime_ns != e->mtime_ns ||
        ctime_ns != e->ctime_ns)
        return fail(r, FP_ERR_MODIFIED, 0, r->current, 0);
    return FP_OK;
}

/* After the last byte of a file: the checks, then its padding. */
static int finish_file(fp_reader *r) {
    const fp_entry *e = &r->entries[r->current];
    int status = check_file(r, CHECK_DONE, 0);
    if (status != FP_OK) return status;
    int fd = r->fd;
    r->fd = -1;
    if (close(fd) != 0) return fail(r, FP_ERR_READ, errno, r->current, 0);
    if (!queue_zeros(r, padded((size_t)e->size) - (size_t)e->size)) return fail(r, FP_ERR_NOMEM, ENOMEM, r->current, 0);
    return FP_OK;
}

/* Open a file for reading; check_file compares it with the scan once its data is read. */
static int open_member(fp_reader *r, size_t index) {
    const fp_entry *e = &r->entries[index];
    int fd = open(e->source, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(r, errno == ENOENT ? FP_ERR_DISAPPEARED : FP_ERR_OPEN, errno, index, 0);
    r->fd = fd;
    r->current = index;
    r->remaining = e->size;
    return FP_OK;
}

/* Queue the next member's header (and open its file); *more = 0 when the stream is done. */
static int advance(fp_reader *r, int *more) {
    *more = 0;
    if (r->finished) return FP_OK;
    *more = 1;
    if (r->next == r->count) {
        r->finished = 1;
        uint64_t total = r->written + 2 * BLOCK;
        size_t tail = (size_t)(2 * BLOCK + (RECORD - total % RECORD) % RECORD);
        return queue_zeros(r, tail) ? FP_OK : fail(r, FP_ERR_NOMEM, ENOMEM, r->count, 0);
    }
    size_t index = r->next++;
    const fp_entry *e = &r->entries[index];
    size_t capacity = fp_header_capacity(e->name_len, e->link_len);
    if (!reserve_pending(r, capacity)) return fail(r, FP_ERR_NOMEM, ENOMEM, index, 0);
    size_t len = fp_encode_header(e->name, e->name_len, e->mode, e->size, r->mtime, e->typeflag, e->link,
                                  e->link_len, r->pending, r->pending_cap);
    if (!len) return fail(r, FP_ERR_INVALID, EINVAL, index, 0);
    r->pending_len = len;
    r->pending_off = 0;
    return e->typeflag == '0' ? open_member(r, index) : FP_OK;
}

/* Read file data straight into the caller's buffer; an empty file goes straight to its checks. */
static int read_file(fp_reader *r, unsigned char *buf, size_t len, size_t *count) {
    if (!r->remaining) return finish_file(r);
    size_t want = (uint64_t)r->remaining < len ? (size_t)r->remaining : len;
    ssize_t got;
    do {
        got = read(r->fd, buf, want);
    } while (got < 0 && errno == EINTR);
    if (got < 0) return check_file(r, CHECK_READ_ERR, errno);
    if (got == 0) return check_file(r, CHECK_EOF, 0);
    *count = (size_t)got;
    r->remaining -= got;
    return r->remaining ? FP_OK : finish_file(r);
}

int fp_reader_fill(fp_reader *r, unsigned char *buf, size_t len, size_t *filled, fp_error *err) {
    size_t done = 0;
    int status = r->error.kind;
    while (status == FP_OK && done < len) {
        size_t count = 0;
        if (r->pending_off < r->pending_len) {
            count = r->pending_len - r->pending_off;
            if (count > len - done) count = len - done;
            memcpy(buf + done, r->pending + r->pending_off, count);
            r->pending_off += count;
        } else if (r->fd >= 0) {
            status = read_file(r, buf + done, len - done, &count);
        } else {
            int more;
            status = advance(r, &more);
            if (!more) break;
        }
        done += count;
        r->written += count;
    }
    *filled = done;
    *err = r->error;
    return status;
}

/* ----------------------------------------------------------------- lifetime */

fp_reader *fp_reader_new(size_t count, const char *names, const char *links, const char *sources,
                         const int64_t *sizes, const uint32_t *modes, const char *typeflags,
                         const uint64_t *devs, const uint64_t *inos, const int64_t *mtimes_ns,
                         const int64_t *ctimes_ns, int64_t mtime) {
    if (mtime < 0 || mtime >= OCTAL11_LIMIT) return NULL;
    fp_reader *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->fd = -1;
    r->mtime = mtime;
    r->count = count;
    if (count) {
        if (count > SIZE_MAX / sizeof(fp_entry) || !(r->entries = malloc(count * sizeof(fp_entry)))) {
            free(r);
            return NULL;
        }
    }
    for (size_t i = 0; i < count; i++) {
        fp_entry *e = &r->entries[i];
        e->name = names;
        e->name_len = strlen(names);
        names += e->name_len + 1;
        e->link = links;
        e->link_len = strlen(links);
        links += e->link_len + 1;
        e->source = sources;
        sources += strlen(sources) + 1;
        e->size = sizes[i];
        e->mode = modes[i];
        e->typeflag = typeflags[i];
        e->dev = devs[i];
        e->ino = inos[i];
        e->mtime_ns = mtimes_ns[i];
        e->ctime_ns = ctimes_ns[i];
    }
    return r;
}

void fp_reader_close(fp_reader *r) {
    if (r->fd >= 0) {
        close(r->fd);
        r->fd = -1;
    }
}

void fp_reader_free(fp_reader *r) {
    if (!r) return;
    fp_reader_close(r);
    free(r->pending);
    free(r->entries);
    free(r);
}

/* -------------------------------------------------------------------- scan */

typedef struct {
    unsigned char *data;
    size_t len;
    size_t cap;
} fp_bytes;

struct fp_scan {
    fp_bytes names, sources, sizes, modes, typeflags, devs, inos, mtimes, ctimes, links;
    size_t count;
    int64_t tar_size;
};

static int bytes_append(fp_bytes *b, const void *data, size_t len) {
    if (len > SIZE_MAX - b->len) return 0;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len) {
            if (cap > SIZE_MAX / 2) return 0;
            cap *= 2;
        }
        unsigned char *grown = realloc(b->data, cap);
        if (!grown) return 0;
        b->data = grown;
        b->cap = cap;
    }
    if (len) memcpy(b->data + b->len, data, len);
    b->len += len;
    return 1;
}

/* Strict UTF-8 as Python's bytes.decode("utf-8"): no overlongs, surrogates or code points > U+10FFFF. */
static int valid_utf8(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            return 0;
        }
        if (len - i - 1 < need) return 0;
        if (s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (size_t k = 2; k <= need; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF) return 0;
        i += need + 1;
    }
    return 1;
}

static size_t member_header_size(const char *name, size_t name_len, int64_t size) {
    size_t records = 0;
    if (needs_pax(name, name_len, NAME_MAX_LEN)) records += pax_record_len(4, name_len);
    if (size >= OCTAL11_LIMIT) records += pax_record_len(4, decimal_digits((size_t)size));
    return BLOCK + (records ? BLOCK + padded(records) : 0);
}

static int add_entry(fp_scan *s, const char *member, size_t member_len, const char *source, size_t source_len,
                     const struct stat *st, char typeflag) {
    int64_t size = typeflag == '0' ? (int64_t)st->st_size : 0;
    uint32_t mode = (typeflag == '5' || (st->st_mode & 0111)) ? 0755 : 0644;
    uint64_t dev = (uint64_t)st->st_dev, ino = (uint64_t)st->st_ino;
    int64_t mtime_ns, ctime_ns;
    if (!timespec_ns(&st->st_mtim, &mtime_ns) || !timespec_ns(&st->st_ctim, &ctime_ns)) return FP_SCAN_FALLBACK;
    const char nul = '\0';
    if (!(bytes_append(&s->names, member, member_len) && bytes_append(&s->names, &nul, 1) &&
          bytes_append(&s->sources, source, source_len) && bytes_append(&s->sources, &nul, 1) &&
          bytes_append(&s->links, &nul, 1) && bytes_append(&s->sizes, &size, sizeof size) &&
          bytes_append(&s->modes, &mode, sizeof mode) && bytes_append(&s->typeflags, &typeflag, 1) &&
          bytes_append(&s->devs, &dev, sizeof dev) && bytes_append(&s->inos, &ino, sizeof ino) &&
          bytes_append(&s->mtimes, &mtime_ns, sizeof mtime_ns) && bytes_append(&s->ctimes, &ctime_ns, sizeof ctime_ns)))
        return FP_ERR_NOMEM;
    s->count++;
    s->tar_size += (int64_t)(member_header_size(member, member_len, size) + padded((size_t)size));
    return FP_OK;
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

typedef struct {
    uint64_t dev, ino;
} fp_identity;

/* os.path.join(directory, name) */
static char *join_path(const char *dir, size_t dir_len, const char *name, size_t name_len, size_t *out_len) {
    int slash = dir_len && dir[dir_len - 1] != '/';
    if (name_len > SIZE_MAX - dir_len - 2) return NULL;
    size_t len = dir_len + (size_t)slash + name_len;
    char *path = malloc(len + 1);
    if (!path) return NULL;
    memcpy(path, dir, dir_len);
    if (slash) path[dir_len] = '/';
    memcpy(path + dir_len + slash, name, name_len);
    path[len] = '\0';
    *out_len = len;
    return path;
}

static void free_names(char **names, size_t count) {
    for (size_t i = 0; i < count; i++) free(names[i]);
    free(names);
}

/* Sorted child names of a directory, or NULL (with *status set) on any problem. The
 * directory stays open in *dir_out (for fstatat) when names are returned. */
static char **list_directory(const char *path, DIR **dir_out, size_t *count, int *status) {
    *count = 0;
    *dir_out = NULL;
    DIR *dir = opendir(path);
    if (!dir) {
        *status = FP_SCAN_FALLBACK;
        return NULL;
    }
    size_t cap = 64;
    char **names = malloc(cap * sizeof *names);
    *status = names ? FP_OK : FP_ERR_NOMEM;
    for (;;) {
        if (*status != FP_OK) break;
        errno = 0;
        struct dirent *d = readdir(dir);
        if (!d) {
            if (errno) *status = FP_SCAN_FALLBACK;
            break;
        }
        if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, "..")) continue;
        if (*count == cap) {
            char **grown = cap <= SIZE_MAX / 2 / sizeof *names ? realloc(names, 2 * cap * sizeof *names) : NULL;
            if (!grown) {
                *status = FP_ERR_NOMEM;
                break;
            }
            names = grown;
            cap *= 2;
        }
        if (!(names[*count] = strdup(d->d_name))) {
            *status = FP_ERR_NOMEM;
            break;
        }
        (*count)++;
    }
    if (*status != FP_OK) {
        closedir(dir);
        if (names) free_names(names, *count);
        return NULL;
    }
    qsort(names, *count, sizeof *names, compare_names);
    *dir_out = dir;
    return names;
}

static int walk(fp_scan *s, const char *dir, size_t dir_len, const char *prefix, size_t prefix_len,
                fp_identity *ancestors, size_t depth, size_t max_depth);

static int add_child(fp_scan *s, int dir_fd, const char *dir, size_t dir_len, const char *prefix,
                     size_t prefix_len, const char *name, fp_identity *ancestors, size_t depth, size_t max_depth) {
    size_t name_len = strlen(name);
    if (!valid_utf8((const unsigned char *)name, name_len)) return FP_SCAN_FALLBACK;
    size_t full_len, member_len;
    char *full = join_path(dir, dir_len, name, name_len, &full_len);
    if (!full) return FP_ERR_NOMEM;
    /* member = prefix + name (+ "/" for directories) */
    char *member = prefix_len + name_len <= SIZE_MAX - 2 ? malloc(prefix_len + name_len + 2) : NULL;
    if (!member) {
        free(full);
        return FP_ERR_NOMEM;
    }
    memcpy(member, prefix, prefix_len);
    memcpy(member + prefix_len, name, name_len);
    member_len = prefix_len + name_len;
    member[member_len] = '\0';
    struct stat st;
    int status;
    if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        status = FP_SCAN_FALLBACK;
    } else if (S_ISREG(st.st_mode)) {
        status = add_entry(s, member, member_len, full, full_len, &st, '0');
    } else if (S_ISDIR(st.st_mode)) {
        status = FP_OK;
        for (size_t i = 0; i < depth; i++)
            if (ancestors[i].dev == (uint64_t)st.st_dev && ancestors[i].ino == (uint64_t)st.st_ino)
                status = FP_SCAN_FALLBACK;
        if (depth == max_depth) status = FP_SCAN_FALLBACK;
        if (status == FP_OK) {
            member[member_len++] = '/';
            member[member_len] = '\0';
            status = add_entry(s, member, member_len, full, full_len, &st, '5');
        }
        if (status == FP_OK) {
            ancestors[depth].dev = (uint64_t)st.st_dev;
            ancestors[depth].ino = (uint64_t)st.st_ino;
            status = walk(s, full, full_len, member, member_len, ancestors, depth + 1, max_depth);
        }
    } else {
        status = FP_SCAN_FALLBACK; /* symlink or special file */
    }
    free(member);
    free(full);
    return status;
}

static int walk(fp_scan *s, const char *dir, size_t dir_len, const char *prefix, size_t prefix_len,
                fp_identity *ancestors, size_t depth, size_t max_depth) {
    size_t count;
    int status;
    DIR *handle;
    char **names = list_directory(dir, &handle, &count, &status);
    if (!names) return status;
    int fd = dirfd(handle);
    for (size_t i = 0; i < count && status == FP_OK; i++)
        status = add_child(s, fd, dir, dir_len, prefix, prefix_len, names[i], ancestors, depth, max_depth);
    free_names(names, count);
    if (closedir(handle) != 0 && status == FP_OK) status = FP_SCAN_FALLBACK;
    return status;
}

#define FP_MAX_DEPTH 4096 /* deeper trees go through tree.scan */
#define FP_SCAN_THREADS 4   /* at most; never more than the online CPUs */
#define FP_SCAN_TASKS 256   /* at most; a task is a run of consecutive root children */
#define FP_SCAN_STACK ((size_t)8 << 20)

/* The root's children are independent subtrees: workers take runs of them in turns, each
 * run into its own fp_scan, and the parts are joined in name order, so the result equals a
 * serial walk. */
typedef struct {
    const char *root;
    size_t root_len;
    int root_fd;
    char **names;
    size_t count;
    size_t per_task;
    size_t tasks;
    fp_scan *parts;
    int *statuses;
    fp_identity root_identity;
    size_t next;   /* next task to take (atomic) */
    int failed;    /* set once any child failed: the others stop early (atomic) */
} fp_scan_job;

static void *scan_worker(void *arg) {
    fp_scan_job *job = arg;
    fp_identity *ancestors = calloc(FP_MAX_DEPTH + 1, sizeof *ancestors);
    if (!ancestors) {
        __atomic_store_n(&job->failed, FP_ERR_NOMEM, __ATOMIC_SEQ_CST);
        return NULL;
    }
    ancestors[0] = job->root_identity;
    while (!__atomic_load_n(&job->failed, __ATOMIC_SEQ_CST)) {
        size_t task = __atomic_fetch_add(&job->next, 1, __ATOMIC_SEQ_CST);
        if (task >= job->tasks) break;
        size_t end = (task + 1) * job->per_task < job->count ? (task + 1) * job->per_task : job->count;
        int status = FP_OK;
        for (size_t i = task * job->per_task; i < end && status == FP_OK; i++)
            status = add_child(&job->parts[task], job->root_fd, job->root, job->root_len, "", 0, job->names[i],
                               ancestors, 1, FP_MAX_DEPTH);
        job->statuses[task] = status;
        if (status != FP_OK) __atomic_store_n(&job->failed, status, __ATOMIC_SEQ_CST);
    }
    free(ancestors);
    return NULL;
}

static int bytes_extend(fp_bytes *to, const fp_bytes *from) { return bytes_append(to, from->data, from->len); }

static int join_part(fp_scan *s, const fp_scan *part) {
    if (!(bytes_extend(&s->names, &part->names) && bytes_extend(&s->sources, &part->sources) &&
          bytes_extend(&s->sizes, &part->sizes) && bytes_extend(&s->modes, &part->modes) &&
          bytes_extend(&s->typeflags, &part->typeflags) && bytes_extend(&s->devs, &part->devs) &&
          bytes_extend(&s->inos, &part->inos) && bytes_extend(&s->mtimes, &part->mtimes) &&
          bytes_extend(&s->ctimes, &part->ctimes) && bytes_extend(&s->links, &part->links)))
        return FP_ERR_NOMEM;
    s->count += part->count;
    s->tar_size += part->tar_size;
    return FP_OK;
}

static void free_parts(fp_scan *parts, size_t count) {
    for (size_t i = 0; i < count; i++) {
        fp_bytes *all[] = {&parts[i].names, &parts[i].sources, &parts[i].sizes, &parts[i].modes,
                           &parts[i].typeflags, &parts[i].devs, &parts[i].inos, &parts[i].mtimes,
                           &parts[i].ctimes, &parts[i].links};
        for (size_t k = 0; k < sizeof all / sizeof *all; k++) free(all[k]->data);
    }
    free(parts);
}

static int scan_root(fp_scan *s, const char *root, const struct stat *st) {
    size_t count;
    int status;
    DIR *handle;
    char **names = list_directory(root, &handle, &count, &status);
    if (!names) return status;
    fp_scan_job job = {.root = root, .root_len = strlen(root), .root_fd = dirfd(handle), .names = names,
                       .count = count, .root_identity = {(uint64_t)st->st_dev, (uint64_t)st->st_ino}};
    job.per_task = count / FP_SCAN_TASKS + 1;
    job.tasks = (count + job.per_task - 1) / job.per_task;
    job.parts = calloc(job.tasks + 1, sizeof *job.parts);
    job.statuses = calloc(job.tasks + 1, sizeof *job.statuses);
    status = job.parts && job.statuses ? FP_OK : FP_ERR_NOMEM;
    if (status == FP_OK) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        size_t extra = cpus > 1 ? (size_t)(cpus < FP_SCAN_THREADS ? cpus : FP_SCAN_THREADS) - 1 : 0;
        if (extra > job.tasks / 2) extra = job.tasks / 2;
        pthread_t threads[FP_SCAN_THREADS];
        size_t started = 0;
        /* Helpers get a known stack (the walk recurses per level) and no signals: those stay
         * with the calling thread, as when the walk ran there alone. */
        pthread_attr_t attr;
        sigset_t all, old;
        if (extra && pthread_attr_init(&attr) == 0) {
            if (pthread_attr_setstacksize(&attr, FP_SCAN_STACK) == 0) {
                sigfillset(&all);
                pthread_sigmask(SIG_BLOCK, &all, &old);
                while (started < extra && pthread_create(&threads[started], &attr, scan_worker, &job) == 0)
                    started++;
                pthread_sigmask(SIG_SETMASK, &old, NULL);
            }
            pthread_attr_destroy(&attr);
        }
        scan_worker(&job); /* this thread works too; with no extra thread it walks everything */
        for (size_t i = 0; i < started; i++) pthread_join(threads[i], NULL);
        status = __atomic_load_n(&job.failed, __ATOMIC_SEQ_CST);
        /* The first failure in name order, as a serial walk would stop at. */
        for (size_t i = 0; i < job.tasks && status != FP_OK; i++)
            if (job.statuses[i] != FP_OK) {
                status = job.statuses[i];
                break;
            }
    }
    for (size_t i = 0; i < job.tasks && status == FP_OK; i++) status = join_part(s, &job.parts[i]);
    if (job.parts) free_parts(job.parts, job.tasks);
    free(job.statuses);
    free_names(names, count);
    if (closedir(handle) != 0 && status == FP_OK) status = FP_SCAN_FALLBACK;
    return status;
}

int fp_scan_tree(const char *root, fp_scan **out) {
    *out = NULL;
    struct stat st;
    if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) return FP_SCAN_FALLBACK;
    fp_scan *s = calloc(1, sizeof *s);
    if (!s) return FP_ERR_NOMEM;
    int status = scan_root(s, root, &st);
    if (status != FP_OK) {
        fp_scan_free(s);
        return status;
    }
    uint64_t total = (uint64_t)s->tar_size + 2 * BLOCK;
    s->tar_size += (int64_t)(2 * BLOCK + (RECORD - total % RECORD) % RECORD);
    *out = s;
    return FP_OK;
}

void fp_scan_get_view(const fp_scan *s, fp_scan_view *view) {
    view->count = s->count;
    view->names = (const char *)s->names.data;
    view->names_len = s->names.len;
    view->links = (const char *)s->links.data;
    view->sources = (const char *)s->sources.data;
    view->sources_len = s->sources.len;
    view->sizes = (const int64_t *)(const void *)s->sizes.data;
    view->modes = (const uint32_t *)(const void *)s->modes.data;
    view->typeflags = (const char *)s->typeflags.data;
    view->devs = (const uint64_t *)(const void *)s->devs.data;
    view->inos = (const uint64_t *)(const void *)s->inos.data;
    view->mtimes_ns = (const int64_t *)(const void *)s->mtimes.data;
    view->ctimes_ns = (const int64_t *)(const void *)s->ctimes.data;
    view->tar_size = s->tar_size;
}

void fp_scan_free(fp_scan *s) {
    if (!s) return;
    fp_bytes *all[] = {&s->names, &s->sources, &s->sizes, &s->modes, &s->typeflags,
                       &s->devs,  &s->inos,    &s->mtimes, &s->ctimes, &s->links};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]->data);
    free(s);
}
