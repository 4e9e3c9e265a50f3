;; EXPECT: get_artist_mbid writes 10 MiB to stderr (fd_write) -> the call succeeds, captured stderr keeps the newest 64 KiB and says how much it dropped
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 18)
  (global $next (mut i32) (i32.const 1024))
  (data (i32.const 256) "plugin:not_implemented")  ;; every other method: the not-implemented error
  (data (i32.const 512) "\0a\05flood")  ;; ArtistMBIDResponse{mbid: flood}
  ;; Bump allocator from 1024 that grows memory on demand and never reuses anything; 0 when full.
  (func $malloc (export "malloc") (param $n i32) (result i32)
    (local $p i32) (local $end i32) (local $have i32)
    (if (i32.eqz (local.get $n)) (then (return (i32.const 0))))
    (local.set $p (global.get $next))
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (local.set $have (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.eq
              (memory.grow (i32.shr_u (i32.add (i32.sub (local.get $end) (local.get $have)) (i32.const 65535))
                                      (i32.const 16)))
              (i32.const -1))
          (then (return (i32.const 0))))))
    (global.set $next (local.get $end))
    (local.get $p))
  (func (export "free") (param i32))
  (func (export "metadata_agent_api_version") (result i64) (i64.const 1))
  (func (export "metadata_agent_get_artist_mbid") (param $ptr i32) (param $size i32) (result i64)
    ;; 1 MiB of 'A' at 64 KiB, one iovec {buf, len} at 16, nwritten at 24; ten writes to fd 2.
    (local $i i32)
    (memory.fill (i32.const 65536) (i32.const 0x41) (i32.const 1048576))
    (i32.store (i32.const 16) (i32.const 65536))
    (i32.store (i32.const 20) (i32.const 1048576))
    (loop $write
      (drop (call $fd_write (i32.const 2) (i32.const 16) (i32.const 1) (i32.const 24)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $write (i32.lt_u (local.get $i) (i32.const 10))))
    (i64.const 2199023255559))
  (func (export "metadata_agent_get_artist_url") (param i32 i32) (result i64) (i64.const 1101659111446))
  (func (export "metadata_agent_get_artist_biography") (param i32 i32) (result i64) (i64.const 1101659111446))
  (func (export "metadata_agent_get_similar_artists") (param i32 i32) (result i64) (i64.const 1101659111446))
  (func (export "metadata_agent_get_artist_images") (param i32 i32) (result i64) (i64.const 1101659111446))
  (func (export "metadata_agent_get_artist_top_songs") (param i32 i32) (result i64) (i64.const 1101659111446))
  (func (export "metadata_agent_get_album_info") (param i32 i32) (result i64) (i64.const 1101659111446))
  (func (export "metadata_agent_get_album_images") (param i32 i32) (result i64) (i64.const 1101659111446))
)
