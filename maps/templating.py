"""maps' own Jinja2 environment over maps/templates: the legend and hatch patterns as markup.

The same settings as the app's pages (api.pages, which maps may not import): templates named
*.html, *.xml or *.svg are autoescaped, so every value reaches the markup only as text. Markup
made in Python is marked safe where it is made, never with `|safe` in a template.
"""

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

environment = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR),
    autoescape=select_autoescape(["html", "xml", "svg"]),
    undefined=StrictUndefined,  # a misspelt name fails loudly instead of printing nothing
    trim_blocks=True,
    lstrip_blocks=True,
)


def g(value: float) -> str:
    """A number as Python's `{value:g}` writes it: 4.0 as 4, 1.3 as 1.3."""
    return format(value, "g")


environment.filters["g"] = g


def render(template: str, **context: Any) -> str:
    """The template filled in, as text."""
    return environment.get_template(template).render(**context)
