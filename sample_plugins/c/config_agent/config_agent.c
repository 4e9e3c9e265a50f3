/*
 * config_agent: a MetadataAgent plugin written in C (wasm32-wasi reactor)
 * for the Navidrome legacy plugin ABI (go-plugin v0.9 calling convention).
 *
 *   GetArtistBiography  biography = config["greeting"] + ", " + name
 *                       (greeting is "Hello" when absent or empty);
 *                       empty name -> error "plugin:not_found"
 *   GetArtistURL        error "config_agent: no url for <name>"
 *   everything else     error "plugin:not_implemented"
 *
 * ABI summary (see the project's spec, abi.md):
 *   - the host writes a request into a buffer from our exported malloc and
 *     calls <capability>_<method>(ptr, len); it frees that buffer afterwards;
 *   - we return ptr<<32 | len of a malloc'ed buffer (the host frees it),
 *     with bit 31 set when the bytes are an error string; 0 = empty result;
 *   - host functions are imports from module "env" with the same
 *     (ptr, len) -> ptr<<32|len shape; the host allocates the response
 *     through our malloc, so we free it when done.
 *
 * Protobuf is decoded and encoded by hand: only what this plugin needs
 * (string fields and map<string,string> entries), skipping unknown fields.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT(name) __attribute__((export_name(name)))

__attribute__((import_module("env"), import_name("get_plugin_config")))
extern uint64_t host_get_plugin_config(uint32_t offset, uint32_t size);

static const char ERR_NOT_IMPLEMENTED[] = "plugin:not_implemented";
static const char ERR_NOT_FOUND[] = "plugin:not_found";
static const char ERR_BAD_REQUEST[] = "config_agent: malformed request";

#define ERROR_BIT UINT64_C(0x80000000)

/* ------------------------------------------------------------ memory */

/* Real allocator (wasi-libc malloc). malloc(0) returns 0 like the Go glue. */
EXPORT("malloc") void *guest_malloc(size_t size) { return size ? malloc(size) : NULL; }

EXPORT("free") void guest_free(void *ptr) { free(ptr); }

/* ------------------------------------------------- protobuf decoding */

typedef struct {
    const uint8_t *ptr;
    size_t len;
} bytes_t;

typedef struct {
    const uint8_t *pos;
    const uint8_t *end;
} reader_t;

static int read_varint(reader_t *r, uint64_t *out) {
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (r->pos >= r->end) return -1;
        uint8_t c = *r->pos++;
        if (shift == 63 && c > 1) return -1;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (c < 0x80) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

static int read_tag(reader_t *r, uint32_t *field, uint32_t *wire) {
    uint64_t tag;
    if (read_varint(r, &tag) != 0) return -1;
    if ((tag >> 3) == 0 || (tag >> 3) > 0x1fffffff) return -1;
    *field = (uint32_t)(tag >> 3);
    *wire = (uint32_t)(tag & 7);
    return 0;
}

static int read_length_delimited(reader_t *r, bytes_t *out) {
    uint64_t n;
    if (read_varint(r, &n) != 0) return -1;
    if (n > (uint64_t)(r->end - r->pos)) return -1;
    out->ptr = r->pos;
    out->len = (size_t)n;
    r->pos += n;
    return 0;
}

static int skip_value(reader_t *r, uint32_t field, uint32_t wire, int depth) {
    uint64_t v;
    bytes_t b;
    switch (wire) {
    case 0:
        return read_varint(r, &v);
    case 1:
        if (r->end - r->pos < 8) return -1;
        r->pos += 8;
        return 0;
    case 2:
        return read_length_delimited(r, &b);
    case 5:
        if (r->end - r->pos < 4) return -1;
        r->pos += 4;
        return 0;
    case 3: /* group: skip up to the matching end-group tag */
        if (depth > 32) return -1;
        for (;;) {
            uint32_t f, w;
            if (read_tag(r, &f, &w) != 0) return -1;
            if (w == 4) return f == field ? 0 : -1;
            if (skip_value(r, f, w, depth + 1) != 0) return -1;
        }
    default: /* 4 (stray end group), 6, 7 */
        return -1;
    }
}

/* Finds string field `field` (last occurrence wins). Absent -> empty.
 * Returns -1 when the message is malformed. */
static int get_string_field(bytes_t msg, uint32_t field, bytes_t *out) {
    reader_t r = {msg.ptr, msg.ptr + msg.len};
    out->ptr = NULL;
    out->len = 0;
    while (r.pos < r.end) {
        uint32_t f, w;
        if (read_tag(&r, &f, &w) != 0) return -1;
        if (f == field) {
            if (w != 2 || read_length_delimited(&r, out) != 0) return -1;
        } else if (skip_value(&r, f, w, 0) != 0) {
            return -1;
        }
    }
    return 0;
}

static int bytes_equal(bytes_t b, const char *s) {
    size_t n = strlen(s);
    return b.len == n && (n == 0 || memcmp(b.ptr, s, n) == 0);
}

/* Looks `key` up in the map<string,string> field `field` (entries with
 * key = 1, value = 2; the last entry for a key wins). Sets *found. */
static int map_lookup(bytes_t msg, uint32_t field, const char *key, bytes_t *value, int *found) {
    reader_t r = {msg.ptr, msg.ptr + msg.len};
    *found = 0;
    while (r.pos < r.end) {
        uint32_t f, w;
        if (read_tag(&r, &f, &w) != 0) return -1;
        if (f != field) {
            if (skip_value(&r, f, w, 0) != 0) return -1;
            continue;
        }
        bytes_t entry, k, v;
        if (w != 2 || read_length_delimited(&r, &entry) != 0) return -1;
        if (get_string_field(entry, 1, &k) != 0 || get_string_field(entry, 2, &v) != 0) return -1;
        if (bytes_equal(k, key)) {
            *value = v;
            *found = 1;
        }
    }
    return 0;
}

/* ----------------------------------------------------------- results */

/* Result buffers are malloc'ed (the host frees them). Running out of memory
 * means memory.grow failed: trap, there is nothing sensible to return. */
static void *xmalloc(size_t size) {
    void *p = malloc(size);
    if (!p) __builtin_trap();
    return p;
}

static uint64_t pack(const void *ptr, size_t len, int is_error) {
    uint64_t r = ((uint64_t)(uintptr_t)ptr << 32) | (uint64_t)(uint32_t)len;
    return is_error ? r | ERROR_BIT : r;
}

/* An error result: the message bytes in a malloc'ed buffer, bit 31 set. */
static uint64_t error_result(const char *msg, size_t len) {
    if (len == 0) return ERROR_BIT;
    char *buf = xmalloc(len);
    memcpy(buf, msg, len);
    return pack(buf, len, 1);
}

#define ERROR_LITERAL(s) error_result((s), sizeof(s) - 1)

static size_t varint_size(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v) {
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* A response message holding one string field made of up to three parts
 * (concatenated). An empty string is the default value: empty result. */
static uint64_t string_field_result(uint32_t field, bytes_t a, bytes_t b, bytes_t c) {
    size_t len = a.len + b.len + c.len;
    if (len == 0) return 0;
    size_t total = varint_size((uint64_t)field << 3) + varint_size(len) + len;
    uint8_t *buf = xmalloc(total);
    uint8_t *p = put_varint(buf, (uint64_t)field << 3 | 2);
    p = put_varint(p, len);
    if (a.len) memcpy(p, a.ptr, a.len);
    if (b.len) memcpy(p + a.len, b.ptr, b.len);
    if (c.len) memcpy(p + a.len + b.len, c.ptr, c.len);
    return pack(buf, total, 0);
}

static bytes_t cstr(const char *s) {
    bytes_t b = {(const uint8_t *)s, strlen(s)};
    return b;
}

static bytes_t request(uint32_t ptr, uint32_t size) {
    bytes_t b = {(const uint8_t *)(uintptr_t)ptr, size};
    return b;
}

/* --------------------------------------------------- capability: api */

#define API_VERSION(name) \
    EXPORT(#name) uint64_t name(void) { return 1; }

API_VERSION(metadata_agent_api_version)
API_VERSION(scrobbler_api_version)
API_VERSION(scheduler_callback_api_version)
API_VERSION(lifecycle_management_api_version)
API_VERSION(web_socket_callback_api_version)

#define NOT_IMPLEMENTED(name)                             \
    EXPORT(#name) uint64_t name(uint32_t ptr, uint32_t size) { \
        (void)ptr;                                        \
        (void)size;                                       \
        return ERROR_LITERAL(ERR_NOT_IMPLEMENTED);        \
    }

/* ArtistBiographyRequest{id = 1, name = 2, mbid = 3}
 * -> ArtistBiographyResponse{biography = 1} */
EXPORT("metadata_agent_get_artist_biography")
uint64_t metadata_agent_get_artist_biography(uint32_t ptr, uint32_t size) {
    bytes_t name;
    if (get_string_field(request(ptr, size), 2, &name) != 0) return ERROR_LITERAL(ERR_BAD_REQUEST);
    if (name.len == 0) return ERROR_LITERAL(ERR_NOT_FOUND);

    /* GetPluginConfigRequest is empty: a zero-length request is (0, 0). */
    uint64_t packed = host_get_plugin_config(0, 0);
    uint8_t *config_buf = (uint8_t *)(uintptr_t)(uint32_t)(packed >> 32);
    bytes_t config = {config_buf, (size_t)(uint32_t)packed};

    /* GetPluginConfigResponse{map<string,string> config = 1} */
    bytes_t greeting;
    int found;
    uint64_t result;
    if (map_lookup(config, 1, "greeting", &greeting, &found) != 0) {
        result = ERROR_LITERAL(ERR_BAD_REQUEST);
    } else {
        if (!found || greeting.len == 0) greeting = cstr("Hello");
        result = string_field_result(1, greeting, cstr(", "), name);
    }
    free(config_buf); /* allocated by the host through our malloc */
    return result;
}

/* ArtistURLRequest{id = 1, name = 2, mbid = 3}: always a plain error. */
EXPORT("metadata_agent_get_artist_url")
uint64_t metadata_agent_get_artist_url(uint32_t ptr, uint32_t size) {
    static const char prefix[] = "config_agent: no url for ";
    bytes_t name;
    if (get_string_field(request(ptr, size), 2, &name) != 0) return ERROR_LITERAL(ERR_BAD_REQUEST);
    size_t len = sizeof prefix - 1 + name.len;
    char *buf = xmalloc(len);
    memcpy(buf, prefix, sizeof prefix - 1);
    if (name.len) memcpy(buf + sizeof prefix - 1, name.ptr, name.len);
    return pack(buf, len, 1);
}

/* The loader looks up every method export of a declared capability, so all
 * of them must exist; the ones we do not support say so. */
NOT_IMPLEMENTED(metadata_agent_get_artist_mbid)
NOT_IMPLEMENTED(metadata_agent_get_similar_artists)
NOT_IMPLEMENTED(metadata_agent_get_artist_images)
NOT_IMPLEMENTED(metadata_agent_get_artist_top_songs)
NOT_IMPLEMENTED(metadata_agent_get_album_info)
NOT_IMPLEMENTED(metadata_agent_get_album_images)
NOT_IMPLEMENTED(scrobbler_is_authorized)
NOT_IMPLEMENTED(scrobbler_now_playing)
NOT_IMPLEMENTED(scrobbler_scrobble)
NOT_IMPLEMENTED(scheduler_callback_on_scheduler_callback)
NOT_IMPLEMENTED(lifecycle_management_on_init)
NOT_IMPLEMENTED(web_socket_callback_on_text_message)
NOT_IMPLEMENTED(web_socket_callback_on_binary_message)
NOT_IMPLEMENTED(web_socket_callback_on_error)
NOT_IMPLEMENTED(web_socket_callback_on_close)
