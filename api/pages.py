"""The app's HTML pages: one Jinja2 environment over api/templates, escaping every value.

Templates named *.html, *.xml or *.svg are autoescaped, so text from the database (compound,
developer and parcel fields, codes typed into a search box) reaches a page only as text.
Markup made in Python (the hatch patterns of maps.styles) is marked safe where it is made,
never with `|safe` in a template; JSON shown in a page goes through `tojson`.
"""

from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import (
    pass_eval_context,
)
from jinja2.filters import do_tojson
from jinja2.nodes import EvalContext

from maps.templating import template_environment

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

environment = template_environment(TEMPLATE_DIR)
# tojson: Chinese as itself (pages are UTF-8) and keys in the order the API gives them
environment.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "sort_keys": False}


@pass_eval_context
def cell(context: EvalContext, value: Any) -> Any:
    """A property value as a JSON reader takes it: nothing for null, 是/否 for booleans,
    objects and arrays as JSON (through `tojson`). A filter, not a macro: an items page
    shows up to 10 000 rows of dozens of cells, and a macro call costs several times more."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是 / true" if value else "否 / false"
    if isinstance(value, dict | list | tuple):
        return do_tojson(context, value)
    return value


environment.filters["cell"] = cell


def render(template: str, **context: Any) -> str:
    """The template filled in: a whole page as text."""
    return environment.get_template(template).render(**context)


def html_page(
    template: str, status_code: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> HTMLResponse:
    """The template filled in, as a UTF-8 HTML response."""
    return HTMLResponse(render(template, **context), status_code=status_code, headers=headers)
