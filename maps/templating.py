"""maps' own Jinja2 environment over maps/templates: the legend and hatch patterns as markup.

`template_environment` is the one way a titlemap template folder is set up (api.pages uses it
for the app's pages): templates named *.html, *.xml or *.svg are autoescaped, so every value
reaches the markup only as text. Markup made in Python is marked safe where it is made, never
with `|safe` in a template.
"""

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"


def template_environment(folder: Path) -> Environment:
    """A Jinja2 environment over `folder`, escaping every value of an HTML, XML or SVG
    template."""
    return Environment(
        loader=FileSystemLoader(folder),
        autoescape=select_autoescape(["html", "xml", "svg"]),
        undefined=StrictUndefined,  # a misspelt name fails loudly instead of printing nothing
        trim_blocks=True,
        lstrip_blocks=True,
    )


environment = template_environment(TEMPLATE_DIR)


def g(value: float) -> str:
    """A number as Python's `{value:g}` writes it: 4.0 as 4, 1.3 as 1.3."""
    return format(value, "g")


environment.filters["g"] = g


def render(template: str, **context: Any) -> str:
    """The template filled in, as text."""
    return environment.get_template(template).render(**context)
