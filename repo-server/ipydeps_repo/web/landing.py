"""The landing page: what this repository serves and copy-paste configuration for each client."""

from __future__ import annotations

import html
from typing import Any

import tornado.ioloop

from ..settings import Settings
from ..store.pages import version_sort_key
from ..store.store import Store
from .base import BaseHandler


def render_landing(base_url: str, listing: dict[str, Any], key_names: list[str]) -> str:
    """Return the landing page HTML for a repository reachable at ``base_url`` (ends in /)."""
    esc = html.escape
    targets = sorted(listing.get("apks", {}))
    wheels: dict[str, list[dict[str, Any]]] = listing.get("wheels", {})
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>ipydeps repository</title>',
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "pre{background:#f4f4f4;padding:.6em;overflow-x:auto}</style></head><body>",
        "<h1>ipydeps repository</h1>",
        "<p>Signed Alpine apk repositories and a PEP 503/691 wheel index, "
        "served from one store.</p>",
        "<h2>Alpine (apk)</h2>",
    ]
    if key_names:
        key_lines = "\n".join(
            f"wget -O /etc/apk/keys/{esc(name)} {esc(base_url)}keys/{esc(name)}"
            for name in key_names
        )
        parts.append(f"<p>Trust the signing key:</p><pre>{key_lines}</pre>")
    else:
        parts.append("<p>No signing key yet: run <code>ipydeps-repo keygen</code>.</p>")
    example = targets[0].rsplit("/", 1)[0] if targets else "v3.22/sci"
    parts.append(
        "<p>Add the repository (one line per branch/repo):</p>"
        f"<pre>echo '{esc(base_url)}alpine/{esc(example)}' &gt;&gt; /etc/apk/repositories\n"
        "apk update</pre>"
    )
    parts.append("<h3>Targets</h3><ul>")
    for target in targets:
        count = len(listing["apks"][target])
        parts.append(f"<li><code>{esc(target)}</code>: {count} package(s)</li>")
    parts.append("</ul>" if targets else "<li>none yet</li></ul>")
    parts += [
        "<h2>pip</h2>",
        f"<pre>pip install --index-url {esc(base_url)}simple/ PACKAGE</pre>",
        "<h2>ipydeps</h2>",
        "<p>In <code>~/.config/ipydeps/config.toml</code> "
        "(or <code>/etc/ipydeps/config.toml</code>):</p>",
        f'<pre>repository_url = "{esc(base_url)}"\napk_repository = "{esc(example)}"</pre>',
        "<p>or in the environment:</p>"
        f"<pre>export IPYDEPS_REPOSITORY_URL={esc(base_url)}\n"
        f"export IPYDEPS_APK_REPOSITORY={esc(example)}</pre>",
        "<h2>Publishing</h2>",
        "<p>With a token from <code>ipydeps-repo token create</code> (user name "
        "<code>__token__</code>):</p>",
        f'<pre>twine upload --repository-url {esc(base_url)}legacy/ -u __token__ -p "$TOKEN" '
        f'dist/*\nuv publish --publish-url {esc(base_url)}legacy/ --token "$TOKEN" dist/*</pre>',
        "<h2>Wheels and sdists</h2><ul>",
    ]
    for project, files in sorted(wheels.items()):
        versions = ", ".join(
            esc(version) + (" (yanked)" if yanked else "") for version, yanked in _versions(files)
        )
        parts.append(f'<li><a href="simple/{esc(project)}/">{esc(project)}</a> {versions}</li>')
    parts.append("</ul>" if wheels else "<li>none yet</li></ul>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _versions(files: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    """Return each version once, sorted as versions, and whether all its files are yanked."""
    yanked: dict[str, bool] = {}
    for item in files:
        version = str(item.get("version"))
        yanked[version] = yanked.get(version, True) and item.get("yanked") is not None
    return [(version, yanked[version]) for version in sorted(yanked, key=version_sort_key)]


class LandingHandler(BaseHandler):
    """``GET /``: the landing page."""

    def initialize(self, settings: Settings, store: Store) -> None:
        """Receive settings (for the public URL) and the store."""
        self.repo_settings = settings
        self.store = store

    async def get(self) -> None:
        """Render the page from the current listing (read off the event loop)."""
        base_url = (
            self.repo_settings.public_url or f"{self.request.protocol}://{self.request.host}/"
        )
        listing = await tornado.ioloop.IOLoop.current().run_in_executor(None, self.store.listing)
        keys = sorted(
            path.name
            for path in self.store.layout.public_keys.glob("*.rsa.pub")
            if not path.name.startswith(".")
        )
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.write(render_landing(base_url, listing, keys))
