"""Benchmark of the encoded WebRTC fan-out (``scripts/bench_fanout.py``).

Modules (``bench_fanout.py`` drives the first group, ``bench_room.py`` the second):

- ``common``: /proc readers, child processes, the JSON-lines protocol between
  the coordinator and its worker processes, SDP helpers, logging, git facts.
- ``peers``: aiortc pieces the workers share with the tests (``tests/support/peers.py``):
  no ICE servers, codec preference, a paced tone, a frame-counting consumer.
- ``publisher``: the WHIP publisher worker (synthetic 720p video + Opus tone).
- ``viewers``: the WHEP viewer worker (cheap counting viewers, one decoding viewer).
- ``baseline_server``: aiortc's stock ``MediaRelay`` behind the same WHIP/WHEP API.
- ``servers``: starting and stopping the servers under test (Cunhui, the baseline).
- ``runner``: the coordinator: starts the publisher and the viewer workers, ramps viewers.
- ``measure``: snapshots of every process's counters at one instant; one window's figures.
- ``report``: the JSON (parameters, ratio, targets) and the table on stderr.
- ``recording``: the cost of recording + live HLS (``--recording-compare``): a
  server with ``RECORD_MEETINGS=0`` against one with ``RECORD_MEETINGS=1``.
- ``thread_names/sitecustomize.py``: put on the Cunhui server's PYTHONPATH by
  the runner; names the server's threads in /proc (``recorder-<id>``), so the
  recorder's own CPU can be read per thread.
- ``room_server``, ``room_runner``, ``room_measure``, ``room_report``, ``room_stats``,
  ``room_clients``: the same split for the socket.io room benchmark (its server and
  audience, the run, what is measured, the JSON, histograms, the client worker).

Only public interfaces of the product are used (the ``cunhui`` CLI and the HTTP
API, including ``GET /api/meetings/{id}/media``) plus
``media.aiortc_hooks.restrict_host_addresses`` to keep ICE on 127.0.0.1.
Bench-only aiortc/aioice internals are touched in the worker processes
(``viewers.py``, ``publisher.py``), never in the server.

Choices that shape the figures (all in the JSON's ``params``):

- viewers are added, not re-created, from one N to the next; all are DELETEd
  at the end (``*_after_delete`` shows the server forgot them);
- the publisher's x264 runs with preset ``ultrafast`` (``--publisher-preset``)
  so the load generator leaves the two cores to the server; the relay's
  per-viewer encoders are aiortc's own (x264 ``medium``);
- counting viewers gather 5 ms of datagrams per wake-up
  (``--viewer-coalesce-ms``): on loopback the server's ``sendto`` runs the
  receive path and wakes the receiving process, a cost a real network does
  not charge to the server;
- every process reads its counters at one agreed instant (CLOCK_MONOTONIC);
- the fan-out server runs with ``RECORD_MEETINGS=0`` (``--fanout-recording``
  turns it on): recording's cost is measured apart, in the ``recording`` object.
"""
