;; EXPECT: OnInit connects "feed"; OnClose of "feed" calls env.schedule_recurring with the 6-field cron "*/2 * * * * *", which the original refuses (a hard error) -> the callback traps; the host only logs it, the harness warns (fails under --wasm-strict-callbacks) and the suite's test_websocket_callbacks fails
(module
  (import "env" "connect" (func $connect (param i32 i32) (result i64)))
  (import "env" "schedule_recurring" (func $schedule_recurring (param i32 i32) (result i64)))
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  ;; ConnectRequest{url: "wss://feed.example.com/live", connection_id: "feed"}
  (data (i32.const 256) "\0a\1bwss://feed.example.com/live\1a\04feed")
  ;; ScheduleRecurringRequest{cron_expression: "*/2 * * * * *", schedule_id: "reconnect"}
  (data (i32.const 320) "\0a\0d*/2 * * * * *\1a\09reconnect")
  ;; The first bytes of a callback request for connection "feed": field 1, length 4, "feed"
  (data (i32.const 384) "\0a\04feed")
  ;; Bump allocator from 1024 (never reuses anything); the host's responses land here.
  (func (export "malloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $n)))
    (local.get $p))
  (func (export "free") (param i32))
  ;; 1 when the request starts with connection_id "feed", else 0
  (func $is_feed (param $ptr i32) (param $size i32) (result i32)
    (local $i i32)
    (if (i32.lt_u (local.get $size) (i32.const 6)) (then (return (i32.const 0))))
    (block $differs
      (loop $next_byte
        (br_if $differs
          (i32.ne (i32.load8_u (i32.add (local.get $ptr) (local.get $i)))
                  (i32.load8_u (i32.add (i32.const 384) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $next_byte (i32.lt_u (local.get $i) (i32.const 6))))
      (return (i32.const 1)))
    (i32.const 0))
  (func (export "lifecycle_management_api_version") (result i64) (i64.const 1))
  (func (export "lifecycle_management_on_init") (param i32 i32) (result i64)
    (drop (call $connect (i32.const 256) (i32.const 35)))
    (i64.const 0))
  (func (export "web_socket_callback_api_version") (result i64) (i64.const 1))
  (func (export "web_socket_callback_on_text_message") (param i32 i32) (result i64) (i64.const 0))
  (func (export "web_socket_callback_on_binary_message") (param i32 i32) (result i64) (i64.const 0))
  (func (export "web_socket_callback_on_error") (param i32 i32) (result i64) (i64.const 0))
  (func (export "web_socket_callback_on_close") (param $ptr i32) (param $size i32) (result i64)
    (if (call $is_feed (local.get $ptr) (local.get $size))
      (then (drop (call $schedule_recurring (i32.const 320) (i32.const 26)))))
    (i64.const 0))
)
