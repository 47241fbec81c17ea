"""What to fetch for a wheel with a stored copy, and the probe that checks the choice."""

from __future__ import annotations

import pytest

from ipydeps.transfer import BacklogProbe, CopyChoice, stored_copy_choice


@pytest.mark.parametrize(
    ("url", "setting", "expected"),
    [
        ("http://127.0.0.1:8080/files/a.whl.stored", "auto", CopyChoice.TRIAL),
        ("http://localhost/files/a.whl.stored", "auto", CopyChoice.TRIAL),
        ("http://[::1]/files/a.whl.stored", "auto", CopyChoice.TRIAL),
        ("http://10.1.2.3/files/a.whl.stored", "auto", CopyChoice.TRIAL),
        ("https://192.168.0.7/files/a.whl.stored", "auto", CopyChoice.TRIAL),
        ("https://[fd00::5]/files/a.whl.stored", "auto", CopyChoice.TRIAL),
        ("https://8.8.8.8/files/a.whl.stored", "auto", CopyChoice.WHEEL),
        ("https://no-such-host.invalid/files/a.whl.stored", "auto", CopyChoice.WHEEL),
        ("https://8.8.8.8/files/a.whl.stored", "always", CopyChoice.STORED),
        ("http://127.0.0.1/files/a.whl.stored", "always", CopyChoice.STORED),
        ("http://127.0.0.1/files/a.whl.stored", "never", CopyChoice.WHEEL),
    ],
)
def test_near_repositories_get_the_copy_on_trial_far_ones_the_wheel(
    url: str, setting: str, expected: CopyChoice
) -> None:
    assert stored_copy_choice(url, setting) is expected


def feed(probe: BacklogProbe, backlogs: list[float]) -> list[bool | None]:
    return [probe.add(ahead) for ahead in backlogs]


def test_a_network_that_keeps_a_read_waiting_keeps_the_copy() -> None:
    # Unshaped loopback and 6 Gbit/s: 1.2 to 3 reads' worth already waiting.
    verdicts = feed(BacklogProbe(), [0.1, 1.7, 1.6, 1.4, 1.7, 1.6, 1.5, 1.7, 0.0])
    assert verdicts == [None] * 7 + [True, True]


def test_a_network_the_install_drains_gives_the_wheel() -> None:
    # 1 Gbit/s: the reader empties the buffer and waits for the next bytes.
    verdicts = feed(BacklogProbe(), [0.1, 0.2, 0.27, 0.18, 0.02, 0.02, 0.3, 0.02])
    assert verdicts == [None] * 7 + [False]


def test_slow_start_is_left_out_and_a_few_outliers_do_not_decide() -> None:
    # The first reads come before TCP has opened its window; later, two stalls of the
    # reader (another thread held the CPU) leave a burst waiting.
    backlogs = [0.0, 0.0, 0.1, 2.5, 0.2, 3.0, 0.1, 0.2]
    assert feed(BacklogProbe(), backlogs)[-1] is False
    assert feed(BacklogProbe(), [0.0, 0.0, 1.5, 0.1, 1.4, 1.6, 0.2, 1.5])[-1] is True


# Read after read through nginx on 127.0.0.1 (2 cores): reads' worth waiting, then the
# seconds of the read over the seconds of writing it out.
NGINX_UNSHAPED = [(0.2, 0.29), (0.06, 0.22), (0.06, 0.44), (0.19, 0.19), (0.05, 0.87)]
NGINX_UNSHAPED += [(0.05, 0.85), (0.19, 0.29), (0.05, 0.55)]
NGINX_1_GBIT = [(0.33, 1.53), (0.6, 1.4), (0.14, 7.7), (0.51, 0.84), (0.19, 2.6)]
NGINX_1_GBIT += [(0.06, 10.9), (0.12, 3.5), (0.12, 6.9)]


def test_reads_quicker_than_the_writing_keep_the_copy_whatever_the_buffer_holds() -> None:
    probe = BacklogProbe()
    assert [probe.add(*sample) for sample in NGINX_UNSHAPED] == [None] * 7 + [True]
    # The backlog alone read nginx on loopback as a slow network.
    assert feed(BacklogProbe(), [ahead for ahead, _ in NGINX_UNSHAPED])[-1] is False


def test_reads_that_wait_longer_than_the_writing_give_the_wheel() -> None:
    probe = BacklogProbe()
    assert [probe.add(*sample) for sample in NGINX_1_GBIT] == [None] * 7 + [False]


def test_the_verdict_stays_once_given() -> None:
    probe = BacklogProbe(skipped=0, window=2)
    assert feed(probe, [0.9, 0.9, 0.0, 0.0, 0.0]) == [None, True, True, True, True]
    assert probe.verdict is True
