"""GET /health and /openapi.json."""

from fastapi.testclient import TestClient

from api.app import create_app
from geo.core.settings import Settings
from geo.db.engine import make_engine
from tests.conftest import free_port


def test_health_reports_postgres_and_postgis(engine):
    client = TestClient(create_app(Settings(), engine))
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "titlemap"
    assert body["postgis"].startswith("3.")
    assert body["postgres"].split(".")[0].isdigit()


def test_health_is_503_with_a_reason_when_the_database_is_gone():
    dead = make_engine(f"postgresql://nobody:x@127.0.0.1:{free_port()}/nowhere")
    client = TestClient(create_app(Settings(), dead))
    response = client.get("/health")
    assert response.status_code == 503
    assert "cannot connect" in response.json()["detail"]


def test_openapi_describes_the_compounds_endpoint(engine):
    client = TestClient(create_app(Settings(), engine))
    spec = client.get("/openapi.json").json()
    parameters = {p["name"] for p in spec["paths"]["/api/compounds"]["get"]["parameters"]}
    assert {"bbox", "status", "limit"} <= parameters
    assert "EPSG:4490" in spec["info"]["description"]
