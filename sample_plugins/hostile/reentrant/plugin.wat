;; EXPECT: get_artist_mbid calls env.schedule_one_time with a request in its own malloc'd buffer (fine), then with an out-of-range pointer -> PluginTrap naming env.schedule_one_time (hard error)
(module
  (import "env" "schedule_one_time" (func $schedule_one_time (param i32 i32) (result i64)))
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (data (i32.const 256) "plugin:not_implemented")  ;; every other method: the not-implemented error
  (data (i32.const 512) "\08<\1a\02ok")  ;; ScheduleOneTimeRequest{delay_seconds: 60, schedule_id: "ok"}
  (data (i32.const 600) "\0a\09reentrant")  ;; ArtistMBIDResponse{mbid: reentrant}
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
    (local $req i32)
    (local.set $req (call $malloc (i32.const 6)))
    (memory.copy (local.get $req) (i32.const 512) (i32.const 6))
    ;; Good: the host reads our buffer and calls malloc re-entrantly for the ScheduleResponse.
    (drop (call $schedule_one_time (local.get $req) (i32.const 6)))
    ;; Bad: 16 bytes at 0x7fff0000, far past the end of memory.
    (drop (call $schedule_one_time (i32.const 0x7fff0000) (i32.const 16)))
    (i64.const 2576980377611))
  (func (export "metadata_agent_get_artist_url") (param i32 i32) (result i64) (i64.const 1101659111446))
  (func (export "metadata_agent_get_artist_biography") (param i32 i32) (result i64) (i64.const 1101659111446))
  (func (export "metadata_agent_get_similar_artists") (param i32 i32) (result i64) (i64.const 1101659111446))
  (func (export "metadata_agent_get_artist_images") (param i32 i32) (result i64) (i64.const 1101659111446))
  (func (export "metadata_agent_get_artist_top_songs") (param i32 i32) (result i64) (i64.const 1101659111446))
  (func (export "metadata_agent_get_album_info") (param i32 i32) (result i64) (i64.const 1101659111446))
  (func (export "metadata_agent_get_album_images") (param i32 i32) (result i64) (i64.const 1101659111446))
  (func (export "scheduler_callback_api_version") (result i64) (i64.const 1))
  (func (export "scheduler_callback_on_scheduler_callback") (param i32 i32) (result i64) (i64.const 0))
)
