"""Reading report pages in tests: their tags and embedded data, and the self-contained check."""

from __future__ import annotations

import re
from html.parser import HTMLParser


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text of the embedded data script."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self._in_data = False
        self.data = ""
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        self._in_data = tag == "script" and a.get("id") == "cs-data"

    def handle_endtag(self, tag):
        self._in_data = False

    def handle_data(self, data):
        if self._in_data:
            self.data += data

    def find(self, tag, **attrs):
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def assert_self_contained(html: str) -> None:
    assert "http://" not in html and "https://" not in html
    for tag, attrs in Tags(html).tags:
        for key in ("src", "href", "action", "xlink:href"):
            value = attrs.get(key)
            if value is not None:
                assert "//" not in value and not value.startswith(("data:", "javascript:")), (tag, key, value)
    assert not re.search(r"url\(\s*['\"]?(?!#)", html), "no CSS url(...) to fetch"
    assert "@import" not in html
