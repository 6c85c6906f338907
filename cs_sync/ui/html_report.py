"""Render the report pages: one self-contained HTML file each (inline CSS, script and SVG).

The templates (``ui/templates/*.html.j2``, package data) lay out the view-model of
``ui/report_view.py``; Jinja2 escapes every value (autoescape on: fault names come
from remote listings), and the data the page was made from is embedded as JSON
(``tojson`` escapes ``<``, ``>`` and ``&``). No URL to anywhere: the page opens
from a laptop with no network.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache

from cs_sync.core.sizes import format_size
from cs_sync.ui import report_view


@lru_cache(maxsize=1)
def _env():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("cs_sync.ui", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["filesize"] = format_size
    # compact and in the document's own key order: the embedded data is the status JSON as printed
    env.policies["json.dumps_kwargs"] = {"sort_keys": False, "separators": (",", ":")}
    return env


def made_now() -> str:
    """When the report was made, as shown in its header."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _render(name: str, view: dict) -> str:
    return _env().get_template(name).render(v=view)


def render_version(doc: dict, *, made: str | None = None, run: dict | None = None) -> str:
    """The page of one version; ``doc`` is ``cs-sync status CS_VER --json``; ``run``: a Slurm run's
    report ({"kind", "lines", "ok"}) shown above it."""
    return _render("report.html.j2", report_view.version_view(doc, made=made or made_now(), run=run))


def render_run(kind: str, version: str | None, lines: list[str], ok: bool, *, made: str | None = None) -> str:
    """A Slurm run's page without a version document (the summary of a download)."""
    return _render("report.html.j2", report_view.run_view(kind, version, lines, ok, made=made or made_now()))


def render_versions(doc: dict, *, made: str | None = None, links: dict[str, str] | None = None) -> str:
    """The overview of every version under a root; ``doc`` is ``cs-sync status --json``."""
    return _render("versions.html.j2", report_view.versions_view(doc, made=made or made_now(), links=links))


def render_stocktake(pdoc: dict, *, made: str | None = None) -> str:
    """The page ``cs-sync-preprocess --html`` writes, before anything is uploaded."""
    return _render("report.html.j2", report_view.stocktake_page_view(pdoc, made=made or made_now()))
