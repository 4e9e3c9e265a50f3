"""Everything we emulate from Go's standard library (and robfig/cron), one module per Go package.

The original host was a Go program: its error texts, its URL readings and its parsing rules are what a
plugin saw, so each caller here reproduces them through one port instead of keeping its own copy.

One convention throughout: a Go ``string`` is a Python ``str`` in which every byte that is not part of
valid UTF-8 is surrogate-escaped (``utf8.go_bytes`` / ``utf8.go_string`` convert losslessly). Ports that
look at bytes where Go does (net/url, netip, time.ParseDuration) work on those bytes internally, so index
arithmetic and quoted fragments of error texts are Go's even where a multi-byte character is cut.

Modules: ``utf8``, ``strconv``, ``strings``, ``path`` (path and path/filepath), ``oserr`` (OS error texts),
``neturl`` (net/url, net/netip, net.JoinHostPort), ``time``, ``cron`` (robfig/cron v3's parser),
``json`` (encoding/json's scanner and Unmarshal model).
"""
