"""Read argparse's ``--help`` output as a user does: each option and the text beside it."""

from __future__ import annotations


def option_texts(help_text: str) -> dict[str, str]:
    """Map each option's first spelling (``-U``, ``--port``) to its help text, joined up.

    The text is what follows the option's signature on its line and the indented lines
    below it, so an option without help maps to "".
    """
    section = help_text.split("\noptions:\n", 1)[1]
    texts: dict[str, str] = {}
    current = ""
    for line in section.splitlines():
        if line.startswith("  -"):
            signature, _, text = line.strip().partition("  ")
            current = signature.split(",")[0].split()[0]
            texts[current] = text.strip()
        elif current and line.startswith("    "):
            texts[current] = f"{texts[current]} {line.strip()}".strip()
        else:
            current = ""
    return texts
