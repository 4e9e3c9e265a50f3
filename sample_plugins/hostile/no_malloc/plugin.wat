;; EXPECT: no malloc export -> PluginLoadError "malloc is not exported"
(module
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (data (i32.const 256) "plugin:not_implemented")  ;; every other method: the not-implemented error
  (func (export "free") (param i32))
  (func (export "metadata_agent_api_version") (result i64) (i64.const 1))
  (func (export "metadata_agent_get_artist_mbid") (param $ptr i32) (param $size i32) (result i64)
    (i64.const 0))
  (func (export "metadata_agent_get_artist_url") (param i32 i32) (result i64) (i64.const 1101659111446))
  (func (export "metadata_agent_get_artist_biography") (param i32 i32) (result i64) (i64.const 1101659111446))
  (func (export "metadata_agent_get_similar_artists") (param i32 i32) (result i64) (i64.const 1101659111446))
  (func (export "metadata_agent_get_artist_images") (param i32 i32) (result i64) (i64.const 1101659111446))
  (func (export "metadata_agent_get_artist_top_songs") (param i32 i32) (result i64) (i64.const 1101659111446))
  (func (export "metadata_agent_get_album_info") (param i32 i32) (result i64) (i64.const 1101659111446))
  (func (export "metadata_agent_get_album_images") (param i32 i32) (result i64) (i64.const 1101659111446))
)
