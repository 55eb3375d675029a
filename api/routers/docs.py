"""/docs and /redoc: the API's own pages, from the vendored Swagger UI and ReDoc (no CDN).

FastAPI's defaults load both from jsdelivr and fonts from Google: an intranet office has
neither. The files come from npm (maps/static/vendor/README.md) and are served by the app.
"""

from fastapi import APIRouter, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse

from api.middleware import page_policy

router = APIRouter(include_in_schema=False)
VENDOR = "/static/vendor"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"


def _own_policy(page: HTMLResponse) -> HTMLResponse:
    # The page's inline start-up script by its hash; ReDoc runs its search in a blob: worker.
    body = page.body.decode()
    page.headers["Content-Security-Policy"] = page_policy(body, workers=("blob:",))
    return page


@router.get("/docs")
def swagger(request: Request) -> HTMLResponse:
    return _own_policy(get_swagger_ui_html(
        openapi_url=request.app.openapi_url, title=f"{request.app.title} — API",
        swagger_js_url=f"{VENDOR}/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url=f"{VENDOR}/swagger-ui/swagger-ui.css",
        swagger_favicon_url=f"{VENDOR}/swagger-ui/favicon-32x32.png",
        oauth2_redirect_url=OAUTH2_REDIRECT,
        swagger_ui_parameters={"validatorUrl": None},  # its badge is fetched from swagger.io
    ))  # fmt: skip


@router.get(OAUTH2_REDIRECT)
def swagger_redirect() -> HTMLResponse:
    return _own_policy(get_swagger_ui_oauth2_redirect_html())


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    return _own_policy(get_redoc_html(
        openapi_url=request.app.openapi_url, title=f"{request.app.title} — API",
        redoc_js_url=f"{VENDOR}/redoc/redoc.standalone.js",
        redoc_favicon_url=f"{VENDOR}/swagger-ui/favicon-32x32.png", with_google_fonts=False,
    ))  # fmt: skip
