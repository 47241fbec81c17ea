"""What the notebook's install display says of an interrupt (the display itself: tests/e2e)."""

from __future__ import annotations

from ipydeps.live import interruption


def test_an_interrupt_before_the_commit_changed_nothing() -> None:
    assert interruption(KeyboardInterrupt()) == "interrupted: nothing changed"


def test_an_interrupt_says_what_its_notes_say_changed() -> None:
    late = KeyboardInterrupt()
    late.add_note(
        "ipydeps: the interrupt came during the commit, which was finished first: "
        "the wheels are installed"
    )
    assert interruption(late) == (
        "interrupted: the interrupt came during the commit, which was finished first: "
        "the wheels are installed"
    )
    apks = KeyboardInterrupt()
    apks.add_note(
        "apk had already installed py3-numpy; those stay installed, the wheels were rolled back"
    )
    assert interruption(apks).startswith("interrupted: apk had already installed py3-numpy")
