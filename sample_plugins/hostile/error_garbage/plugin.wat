;; EXPECT: get_artist_mbid sets the error bit over invalid UTF-8 -> PluginError with U+FFFD, no crash
(module
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (data (i32.const 256) "plugin:not_implemented")  ;; every other method: the not-implemented error
  (data (i32.const 512) "\ff\febad\c3(utf8\80")  ;; invalid UTF-8 error text
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
    (i64.const 2201170739212))
  (func (export "metadata_agent_get_artist_url") (param i32 i32) (result i64) (i64.const 1101659111446))
  (func (export "metadata_agent_get_artist_biography") (param i32 i32) (result i64) (i64.const 1101659111446))
  (func (export "metadata_agent_get_similar_artists") (param i32 i32) (result i64) (i64.const 1101659111446))
  (func (export "metadata_agent_get_artist_images") (param i32 i32) (result i64) (i64.const 1101659111446))
  (func (export "metadata_agent_get_artist_top_songs") (param i32 i32) (result i64) (i64.const 1101659111446))
  (func (export "metadata_agent_get_album_info") (param i32 i32) (result i64) (i64.const 1101659111446))
  (func (export "metadata_agent_get_album_images") (param i32 i32) (result i64) (i64.const 1101659111446))
)
