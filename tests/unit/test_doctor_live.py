"""What ``doctor --live`` tells a user from its numbers (the live run itself is in ``tests/podman/``)."""

from __future__ import annotations

from pathlib import Path

from nanoclaw_app.doctor import render
from nanoclaw_app.doctor_live import Latency, LiveReport, _verdict
from nanoclaw_app.paths import Paths

PATHS = Paths(home=Path("/data/nanoclaw"), config=Path("/data/nanoclaw-config"))


def _report(**changes: object) -> LiveReport:
    values: dict[str, object] = {
        "rows": 100, "answered": 100, "inbound": Latency.of([2_000_000] * 100),
        "outbound": Latency.of([3_000_000] * 100), "heartbeat_moved": True, "heartbeat_age_ms": 20.0,
        "container_watch": "inotify", "container_events": True, "host_watch": "inotify", "host_events": True,
        "container_start_s": 0.4, "host_write": Latency.of([1_000_000] * 100),
    }
    values.update(changes)
    return LiveReport(**values)  # type: ignore[arg-type]


def test_percentiles_are_nearest_rank_in_ms() -> None:
    latency = Latency.of([n * 1_000_000 for n in range(1, 101)])

    assert (latency.p50_ms, latency.p99_ms, latency.max_ms) == (50.0, 99.0, 100.0)
    assert Latency.of([]).words() == "no row crossed"


def test_a_polling_container_is_slower_than_expected_and_told_to_raise_the_inotify_limits() -> None:
    slow = Latency.of([1_900_000_000] * 100)
    check = _verdict(_report(inbound=slow, container_watch="polling", container_events=False), PATHS)

    assert (check.ok, check.required) == (False, False)
    assert check.detail.startswith("slower than expected: host → container p99 1900.0 ms is above the 50 ms target")
    assert "fs.inotify.max_user_instances" in check.fix
    assert check.data is not None
    assert check.data["verdict"].startswith("slower than expected: ")
    assert "[warn] live: slower than expected" in render([check])


def test_lost_rows_fail_and_point_at_the_data_folder() -> None:
    check = _verdict(_report(answered=97), PATHS)

    assert (check.ok, check.required) == (False, True)
    assert check.detail.startswith("rows lost: 3 of 100 rows never made it across the session folder")
    assert "/data/nanoclaw" in check.fix


def test_within_target_shows_both_directions_on_their_own_lines() -> None:
    text = render([_verdict(_report(), PATHS)])

    assert text.splitlines() == [
        "[ok  ] live: within target: messages cross the session folder in both directions, 99 in 100 within 50 ms",
        "       host → container (inbound.db): 100 of 100 rows seen; half within 2.0 ms, 99 in 100 within 2.0 ms, "
        "the slowest after 2.0 ms",
        "       container → host (outbound.db): 100 of 100 rows seen; half within 3.0 ms, 99 in 100 within 3.0 ms, "
        "the slowest after 3.0 ms",
        "       writing alone (included in the host → container times): half within 1.0 ms, 99 in 100 within 1.0 ms, "
        "the slowest after 1.0 ms",
        "       heartbeat: moved (touched 20 ms ago)",
        "       file events: inotify in the container, inotify on this computer; the container started in 0.4 s",
    ]


def test_slow_rows_with_working_file_events_blame_the_disk_with_the_write_times() -> None:
    slow = Latency.of([80_000_000] * 100)
    check = _verdict(_report(outbound=slow, host_write=Latency.of([60_000_000] * 100)), PATHS)

    assert check.detail.startswith("slower than expected: container → host p99 80.0 ms is above the 50 ms target")
    assert check.fix.startswith("writing alone takes up to 60 ms here, so the disk under NanoClaw's data folder "
                                "(/data/nanoclaw) or the computer is busy")
