"""The Growthlens dashboard shell: one template, a sidebar grouped by section, pages discovered from ``pages/``.

Every module ``dashboard/pages/<name>.py`` that exposes ``TITLE``, ``SECTION`` ("Marketing" | "Customers" | "Data"),
``ORDER`` and ``page(client)`` becomes a sidebar entry; a page is chosen with ``?page=<name>`` or by clicking its
entry. Pages that are not built (or fail to import) are simply absent. Run with ``panel serve dashboard/app.py``.

Each browser session builds only the page it shows. The sidebar is plain links (one light HTML element rather than a
widget per page), so opening a page is an ordinary navigation: bookmarkable, and the back button works.
"""

from __future__ import annotations

import html
import importlib
import logging
import pkgutil
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import panel as pn

from dashboard.client import ApiClient
from dashboard.components import error_alert

log = logging.getLogger(__name__)

SECTIONS = ("Marketing", "Customers", "Data")
DEFAULT_PAGE = "overview"

SIDEBAR_CSS = """
.gl-nav {display: flex; flex-direction: column; gap: 2px; font-size: 15px;}
.gl-nav-section {font-size: 12px; font-weight: 600; color: #5f6b7a; text-transform: uppercase;
                 letter-spacing: .06em; margin: 14px 0 4px 4px;}
.gl-nav a {display: block; padding: 7px 12px; border-radius: 6px; color: #1d2733; text-decoration: none;}
.gl-nav a:hover {background: #eef3fc;}
.gl-nav a.active {background: #2f6fde; color: #fff; font-weight: 600;}
"""

@dataclass(frozen=True)
class PageInfo:
    """A discovered page: module name (the ``?page=`` value), title, section, order and its builder."""

    name: str
    title: str
    section: str
    order: int
    build: Callable[[ApiClient], pn.viewable.Viewable]


def discover_pages(package: str = "dashboard.pages") -> list[PageInfo]:
    """Import every page module and return the valid ones, sorted by section then ``ORDER``."""
    pkg = importlib.import_module(package)
    pages = []
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_"):
            continue
        try:
            mod = importlib.import_module(f"{package}.{info.name}")
        except Exception:  # a page under construction must not take the whole dashboard down
            log.warning("page %s failed to import:\n%s", info.name, traceback.format_exc())
            continue
        if not all(hasattr(mod, a) for a in ("TITLE", "SECTION", "ORDER", "page")):
            continue
        section = mod.SECTION if mod.SECTION in SECTIONS else SECTIONS[-1]
        pages.append(PageInfo(info.name, str(mod.TITLE), section, int(mod.ORDER), mod.page))
    return sorted(pages, key=lambda p: (SECTIONS.index(p.section), p.order, p.title))


class Shell:
    """The template with its sidebar; swaps the main area when a page is chosen."""

    def __init__(self, client: ApiClient | None = None, pages: list[PageInfo] | None = None,
                 initial: str | None = None) -> None:
        self.client = client or ApiClient()
        self.pages = pages if pages is not None else discover_pages()
        self.by_name = {p.name: p for p in self.pages}
        self.main = pn.Column(sizing_mode="stretch_width")
        self.current: str | None = None
        self.sidebar = self._sidebar()
        first = initial if initial in self.by_name else (
            DEFAULT_PAGE if DEFAULT_PAGE in self.by_name else (self.pages[0].name if self.pages else None))
        if first:
            self.show(first)
        else:
            self.main.objects = [pn.pane.Alert("No dashboard pages are installed.", alert_type="warning")]

    def _sidebar(self) -> pn.pane.HTML:
        """Links grouped by section; each opens its page at ``?page=<name>`` (bookmarkable, back button works)."""
        self.nav = pn.pane.HTML(self._nav_html(None), stylesheets=[SIDEBAR_CSS], sizing_mode="stretch_width",
                                margin=(0, 5))
        return self.nav

    def _nav_html(self, current: str | None) -> str:
        parts = ['<nav class="gl-nav">']
        for section in SECTIONS:
            entries = [p for p in self.pages if p.section == section]
            if not entries:
                continue
            parts.append(f'<div class="gl-nav-section">{html.escape(section)}</div>')
            for p in entries:
                active = " active" if p.name == current else ""
                parts.append(f'<a class="gl-nav-link gl-nav-{p.name}{active}" href="?page={p.name}">'
                             f"{html.escape(p.title)}</a>")
        parts.append("</nav>")
        return "".join(parts)

    def show(self, name: str) -> None:
        """Build the named page and put it in the main area (errors shown in place, never a blank screen)."""
        info = self.by_name[name]
        self.current = name
        self.nav.object = self._nav_html(name)
        try:
            view = info.build(self.client)
        except Exception as e:  # show the reason instead of an empty page
            log.exception("page %s failed", name)
            view = error_alert(e, info.title)
        self.main.objects = [pn.pane.Markdown(f"## {info.title}", margin=(0, 10)), view]


def build_app(client: ApiClient | None = None, page: str | None = None) -> pn.template.FastListTemplate:
    """The whole dashboard for one browser session."""
    if page is None and pn.state.session_args:
        arg = pn.state.session_args.get("page")
        page = arg[0].decode() if arg else None
    shell = Shell(client, initial=page)
    template = pn.template.FastListTemplate(
        title="Growthlens",
        sidebar=[shell.sidebar],
        main=[shell.main],
        accent="#2f6fde",
        sidebar_width=230,
        theme_toggle=False,
    )
    template.shell = shell  # type: ignore[attr-defined]  # reachable for tests
    return template


if __name__.startswith("bokeh"):
    build_app().servable()
