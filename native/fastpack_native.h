/* Native tar stream of a scanned tree (the hot path of `fastpack pack`).
 *
 * The reader fills caller buffers with the exact bytes fastpack.tarstream.TarReader
 * produces: headers (pax when needed), file data read straight into the buffer,
 * padding and the end-of-archive record, for many entries per call. Errors are
 * reported as a kind, an errno and the entry index; Python turns them into the
 * same FastpackError subclasses and messages as the pure-Python reader.
 *
 * This header is also the cffi cdef, so it holds only plain declarations.
 */

typedef struct fp_reader fp_reader;

typedef struct {
    int kind;          /* one of FP_ERR_* */
    int errnum;        /* errno of the failing syscall, 0 if none */
    size_t index;      /* entry the error is about */
    int64_t now_size;  /* FP_ERR_SIZE: the file's size when checked */
} fp_error;

#define FP_OK 0
#define FP_ERR_DISAPPEARED 1 /* open: ENOENT */
#define FP_ERR_OPEN 2        /* open: other errno */
#define FP_ERR_REPLACED 3    /* fstat: other dev/ino than at scan time */
#define FP_ERR_SIZE 4        /* fstat: other size than at scan time */
#define FP_ERR_READ 5        /* read: errno */
#define FP_ERR_SHRANK 6      /* read: end of file before the scanned size */
#define FP_ERR_MODIFIED 7    /* fstat after reading: mtime/ctime changed */
#define FP_ERR_NOMEM 8       /* allocation failed */
#define FP_ERR_FSTAT 9       /* fstat: errno */
#define FP_ERR_INVALID 10    /* arguments the encoder cannot represent */

/* Entries are given as parallel arrays; names, link targets and source paths
 * are NUL-terminated strings concatenated in entry order. The reader keeps
 * pointers into all of them: the caller keeps them alive until fp_reader_free. */
fp_reader *fp_reader_new(size_t count, const char *names, const char *links, const char *sources,
                         const int64_t *sizes, const uint32_t *modes, const char *typeflags,
                         const uint64_t *devs, const uint64_t *inos, const int64_t *mtimes_ns,
                         const int64_t *ctimes_ns, int64_t mtime);

/* Fill buf with up to len bytes of the stream; *filled < len only at the end.
 * Returns FP_OK or an FP_ERR_* kind (also stored in *err); errors are sticky. */
int fp_reader_fill(fp_reader *reader, unsigned char *buf, size_t len, size_t *filled, fp_error *err);

/* Close the file being read, if any (the reader cannot continue afterwards). */
void fp_reader_close(fp_reader *reader);

void fp_reader_free(fp_reader *reader);

/* Header bytes of one member (pax 'x' header when needed + ustar header), as
 * tarformat.member_header; returns the length, or 0 if out is too small.
 * fp_header_capacity gives a size that is always enough. */
size_t fp_header_capacity(size_t name_len, size_t link_len);
size_t fp_encode_header(const char *name, size_t name_len, uint32_t mode, int64_t size, int64_t mtime,
                        char typeflag, const char *link, size_t link_len, unsigned char *out, size_t out_len);

/* ---- native scan: the plain case of fastpack.tree.scan (regular files and directories only) ---- */

#define FP_SCAN_FALLBACK 11 /* anything but plain files/dirs, or any error: use tree.scan */

typedef struct fp_scan fp_scan;

typedef struct {
    size_t count;
    const char *names;   /* NUL-terminated, back to back, directories end with '/' */
    size_t names_len;
    const char *links;   /* count empty strings */
    const char *sources;
    size_t sources_len;
    const int64_t *sizes;
    const uint32_t *modes;
    const char *typeflags;
    const uint64_t *devs;
    const uint64_t *inos;
    const int64_t *mtimes_ns;
    const int64_t *ctimes_ns;
    int64_t tar_size;    /* exact length of the tar stream of these entries */
} fp_scan_view;

/* Entries of the tree under root in archive order, as tree.scan without options would
 * list them. Returns FP_OK, FP_SCAN_FALLBACK (symlink, special file, non-UTF-8 name,
 * directory loop, any syscall error: tree.scan reports it) or FP_ERR_NOMEM. */
int fp_scan_tree(const char *root, fp_scan **out);
void fp_scan_get_view(const fp_scan *scan, fp_scan_view *view);
void fp_scan_free(fp_scan *scan);
