"""Signing in, one's own password, the admin's page of users, a county's private map and the
`titlemap user` commands — the security properties they promise, against the web app's own
database role (app_engine) wherever the app is asked."""

import re
import subprocess
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.app import create_app
from api.auth import COOKIE
from geo.core.settings import Settings
from geo.ledger.users import add_user
from geo.query.tiles import tile_of
from tests.conftest import (
    OTHER_COUNTY,
    PASSWORD,
    PEOPLE,
    TITLEMAP,
    add_people,
    app_role,
    cli_env,
    sign_in,
)

COUNTY = "629901"
NEW_PASSWORD = "新的密码-2027-够长"
FLASH = re.compile(r'<div class="tm-flash tm-(\w+)" role="status">(.*?)</div>', re.S)


@pytest.fixture
def app(app_engine, people):
    return create_app(Settings(), app_engine)


@pytest.fixture
def client(app):
    return TestClient(app)


def flash_of(response) -> tuple[str, str]:
    """(kind, words) of the page's one-line message."""
    found = FLASH.search(response.text)
    assert found, response.text[:2000]
    return found.group(1), found.group(2)


def a_user(engine, name: str, role: str = "editor", department: str | None = None) -> int:
    """A user of the demo county of this test's own (signing in with PASSWORD)."""
    with Session(engine) as session:
        session.execute(text("DELETE FROM app_user WHERE name = :n"), {"n": name})
        user, _ = add_user(session, COUNTY, name, role, password=PASSWORD,
                           department=department, with_token=False)  # fmt: skip
        session.commit()
        return user.id


def last_audit(engine, kind: str, object_id: str) -> dict:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT * FROM audit_log WHERE object_kind = :k AND object_id = :i "
                 "ORDER BY id DESC LIMIT 1"), {"k": kind, "i": object_id},
        ).mappings().first()  # fmt: skip
    assert row is not None, f"no audit row for {kind} {object_id}"
    return dict(row)


def signed_in(client) -> bool:
    return client.get("/api/me").json()["signed_in"]


# -- signing in and out ------------------------------------------------------------------------


def test_sign_in_sets_an_http_only_lax_cookie_and_me_tells_who(client):
    assert client.get("/api/me").json() == {"signed_in": False}
    response = client.post("/signin", data={"name": "查看员", "password": PASSWORD},
                           follow_redirects=False)  # fmt: skip
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert "httponly" in attributes and "samesite=lax" in attributes and "path=/" in attributes
    me = client.get("/api/me").json()
    assert me["signed_in"] and me["name"] == "查看员" and me["role"] == "viewer"
    assert me["department_label"] == "全县（领导小组办公室）" and len(me["csrf"]) > 20
    assert "password_hash" not in me and "token_sha256" not in me


def test_a_wrong_password_and_an_unknown_name_get_the_same_answer(client):
    wrong = client.post("/signin", data={"name": "查看员", "password": "不对的密码-xx"})
    unknown = client.post("/signin", data={"name": "没有这个人", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    one_message = ("error", "用户名或密码不对 / wrong name or password")
    assert flash_of(wrong) == flash_of(unknown) == one_message
    assert COOKIE not in wrong.headers.get("set-cookie", "")
    assert not signed_in(client)


def test_sign_out_ends_the_session_for_good(app, client):
    csrf = sign_in(client, "查看员")
    old_cookie = client.cookies.get(COOKIE)
    response = client.post("/signout", data={"csrf_token": csrf}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/signin"
    assert not signed_in(client)
    replay = TestClient(app, cookies={COOKIE: old_cookie})  # the old cookie, kept by someone
    assert replay.get("/api/me").json() == {"signed_in": False}


def test_too_many_wrong_passwords_from_one_address_are_refused_a_while(app):
    guesser = TestClient(app, client=("10.7.0.1", 5000))
    limit = app.state.failed_tokens.limit
    answers = [  # names guessed, a different one each time
        guesser.post("/signin", data={"name": f"猜的名字{i}", "password": f"guess-{i:04d}"})
        for i in range(limit)
    ]
    assert [a.status_code for a in answers] == [401] * limit
    refused = guesser.post("/signin", data={"name": "查看员", "password": PASSWORD})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "尝试次数过多" in flash_of(refused)[1] and not signed_in(guesser)
    neighbour = TestClient(app, client=("10.7.0.2", 5000))
    sign_in(neighbour, "查看员")  # another address signs in as ever


def test_one_persons_password_guessed_from_many_addresses_is_slowed_too(app, engine):
    with Session(engine) as session:
        session.execute(text("DELETE FROM app_user WHERE name = '被猜的人'"))
        add_user(session, COUNTY, "被猜的人", "viewer", password=PASSWORD, with_token=False)
        session.commit()
    limit = app.state.failed_tokens.limit
    for i in range(limit):  # one wrong password from each of `limit` addresses
        guesser = TestClient(app, client=(f"10.8.{i // 200}.{i % 200 + 1}", 5000))
        guess = guesser.post("/signin", data={"name": "被猜的人", "password": f"guess-{i}"})
        assert guess.status_code == 401
    fresh = TestClient(app, client=("10.9.0.1", 5000))
    refused = fresh.post("/signin", data={"name": "被猜的人", "password": PASSWORD})
    assert refused.status_code == 429 and not signed_in(fresh)
    sign_in(fresh, "查看员")  # the address is not slowed: the person is


@pytest.mark.parametrize(
    "target", ["//evil.example", "https://evil.example/x", "/\\evil.example", "javascript:x"]
)
def test_next_never_leads_off_the_site(client, target):
    page = client.get("/signin", params={"next": target})
    assert 'name="next" value="/"' in page.text
    response = client.post("/signin", data={"name": "查看员", "password": PASSWORD,
                                            "next": target}, follow_redirects=False)  # fmt: skip
    assert response.status_code == 303 and response.headers["location"] == "/"


def test_next_within_the_site_is_followed(client):
    form = {"name": "查看员", "password": PASSWORD, "next": "/account/password"}
    response = client.post("/signin", data=form, follow_redirects=False)
    assert response.headers["location"] == "/account/password"


# -- CSRF --------------------------------------------------------------------------------------


def test_a_cookie_write_needs_the_sessions_csrf_token(client, demo):
    csrf = sign_in(client, "办公室")
    ledger = demo.ledger
    code = ledger[ledger.status != "closed"].iloc[-1].compound_code
    entry = client.get(f"/api/ledger/{code}").json()
    edit = {"version": entry["version"], "changes": {"task_force_lead": "CSRF 测试组长"}}
    missing = client.patch(f"/api/ledger/{code}", json=edit)
    wrong = client.patch(f"/api/ledger/{code}", json=edit, headers={"X-CSRF-Token": "x" * 43})
    assert missing.status_code == wrong.status_code == 403
    assert "CSRF" in missing.json()["detail"]
    assert client.get(f"/api/ledger/{code}").json()["version"] == entry["version"]  # unchanged
    right = client.patch(f"/api/ledger/{code}", json=edit, headers={"X-CSRF-Token": csrf})
    assert right.status_code == 200, right.text
    assert right.json()["task_force_lead"] == "CSRF 测试组长"


def test_a_form_post_without_its_csrf_token_is_refused(client):
    sign_in(client, "查看员")
    for url, data in (
        ("/signout", {}),
        ("/account/password", {"old": PASSWORD, "new": NEW_PASSWORD, "again": NEW_PASSWORD}),
        ("/account/password", {"csrf_token": "forged", "old": PASSWORD, "new": NEW_PASSWORD,
                               "again": NEW_PASSWORD}),
    ):  # fmt: skip
        response = client.post(url, data=data, follow_redirects=False)
        assert response.status_code == 403, (url, response.text)
    assert signed_in(client)  # neither signed out nor a new password
    sign_in(TestClient(client.app), "查看员")


# -- one's own password ------------------------------------------------------------------------


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(app, engine):
    user_id = a_user(engine, "改密码的人")
    here, elsewhere = TestClient(app), TestClient(app)
    csrf = sign_in(here, "改密码的人")
    sign_in(elsewhere, "改密码的人")
    assert here.get("/account/password").status_code == 200

    def change(old: str, new: str, again: str | None = None):
        data = {"csrf_token": csrf, "old": old, "new": new, "again": again or new}
        return here.post("/account/password", data=data, follow_redirects=False)

    for refused, words in (
        (change("不对的旧密码-1", NEW_PASSWORD), "原密码不对"),
        (change(PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "x"), "不一致"),
        (change(PASSWORD, "短"), "至少 8 个字符"),
    ):
        assert refused.status_code == 400 and words in flash_of(refused)[1]
    assert signed_in(elsewhere)  # nothing changed yet

    done = change(PASSWORD, NEW_PASSWORD)
    assert done.status_code == 303 and done.headers["location"] == "/account/password?changed=1"
    assert "httponly" in done.headers["set-cookie"].lower()
    assert signed_in(here) and not signed_in(elsewhere)
    assert "密码已修改" in flash_of(here.get(done.headers["location"]))[1]
    old = TestClient(app).post("/signin", data={"name": "改密码的人", "password": PASSWORD})
    assert old.status_code == 401
    sign_in(TestClient(app), "改密码的人", NEW_PASSWORD)
    trace = last_audit(engine, "app_user", str(user_id))
    assert trace["action"] == "sign_in"  # the last; the change itself just before
    with engine.connect() as conn:
        actions = conn.execute(
            text("SELECT action, actor FROM audit_log WHERE object_kind = 'app_user' "
                 "AND object_id = :i ORDER BY id"), {"i": str(user_id)},
        ).all()  # fmt: skip
    assert ("password_change", "改密码的人") in [tuple(a) for a in actions]


def test_the_password_page_sends_strangers_to_sign_in(client):
    response = client.get("/account/password", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=%2Faccount%2Fpassword"


# -- the admin's page ------------------------------------------------------------------------


def test_only_admins_see_the_users_page(app, client):
    anonymous = client.get("/admin/users", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/signin?next=%2Fadmin%2Fusers"
    assert client.post("/admin/users", data={"name": "x"}, follow_redirects=False)\
        .status_code == 303  # fmt: skip
    for name in ("查看员", "办公室", "住建局张三"):
        someone = TestClient(app)
        csrf = sign_in(someone, name)
        page = someone.get("/admin/users")
        assert page.status_code == 403 and "需要管理员" in flash_of(page)[1]
        form = {"csrf_token": csrf, "name": "偷偷加的人", "role": "admin", "password": PASSWORD}
        posted = someone.post("/admin/users", data=form)
        assert posted.status_code == 403
    with Session(client.app.state.engine) as session:
        sneaked = session.execute(text("SELECT 1 FROM app_user WHERE name = '偷偷加的人'"))
        assert sneaked.first() is None


def test_the_users_page_lists_the_county_and_offers_its_departments(app, people):
    admin = TestClient(app)
    sign_in(admin, "管理员")
    page = admin.get("/admin/users")
    assert page.status_code == 200
    body = page.text
    for name, (county, _role, _department) in PEOPLE.items():
        assert (f"<td>{name}</td>" in body) == (county == COUNTY), name
    row = body.split(f'data-user="{people["住建局张三"]}"')[1].split("</tr>")[0]
    assert "<td>编辑</td>" in row and "<td>住建局</td>" in row and "<td>启用</td>" in row
    office = body.split(f'data-user="{people["办公室"]}"')[1].split("</tr>")[0]
    assert "<td>全县（领导小组办公室）</td>" in office
    datalist = body.split('<datalist id="departments">')[1].split("</datalist>")[0]
    assert '<option value="住建局">' in datalist and '<option value="税务局">' in datalist
    # three forms a user, adding, the county's map, signing out: each with the CSRF token
    assert body.count('name="csrf_token"') == 3 * body.count("data-user=") + 3
    assert "<script>" not in body


def test_an_admin_adds_a_user_who_then_signs_in(app, engine):
    with Session(engine) as session:
        session.execute(text("DELETE FROM app_user WHERE name = '新来的王五'"))
        session.commit()
    admin = TestClient(app)
    csrf = sign_in(admin, "管理员")
    form = {"csrf_token": csrf, "name": "新来的王五", "role": "editor", "department": "住建局",
            "password": "王五的初始密码-1"}  # fmt: skip
    added = admin.post("/admin/users", data=form, follow_redirects=False)
    assert added.status_code == 303
    assert parse_qs(urlsplit(added.headers["location"]).query)["done"] == ["added"]
    assert "已添加用户 新来的王五" in flash_of(admin.get(added.headers["location"]))[1]
    again = admin.post("/admin/users", data=form)
    assert again.status_code == 400 and "已存在" in flash_of(again)[1]
    short = admin.post("/admin/users", data=form | {"name": "密码太短的人", "password": "1234"})
    assert short.status_code == 400 and 'value="密码太短的人"' in short.text  # kept to fix

    wang = TestClient(app)
    sign_in(wang, "新来的王五", "王五的初始密码-1")
    me = wang.get("/api/me").json()
    assert me["county"] == COUNTY and me["role"] == "editor" and me["department"] == "住建局"
    trace = last_audit(engine, "app_user", str(me["id"]))
    with engine.connect() as conn:
        inserted = conn.execute(
            text("SELECT actor, department, after FROM audit_log WHERE object_kind = 'app_user' "
                 "AND object_id = :i AND action = 'insert'"), {"i": str(me["id"])},
        ).one()  # fmt: skip
    assert trace["action"] == "sign_in" and inserted.actor == "管理员"
    assert inserted.after["name"] == "新来的王五" and "password_hash" not in inserted.after


def test_an_admin_disables_resets_and_changes_a_user(app, engine, people):
    user_id = a_user(engine, "将被停用的人", "editor", "税务局")
    admin, user = TestClient(app), TestClient(app)
    csrf = sign_in(admin, "管理员")
    sign_in(user, "将被停用的人")

    def post(what: str, target: int = user_id, **data):
        return admin.post(f"/admin/users/{target}/{what}", data={"csrf_token": csrf, **data},
                          follow_redirects=False)  # fmt: skip

    changed = post("role", role="viewer", department="")
    assert changed.status_code == 303
    me = user.get("/api/me").json()
    assert me["role"] == "viewer" and me["department"] is None and me["office"] is False
    assert last_audit(engine, "app_user", str(user_id))["after"] == {
        "role": "viewer", "department": None}  # fmt: skip

    assert post("active", active="false").status_code == 303
    assert not signed_in(user)
    refused = TestClient(app).post("/signin", data={"name": "将被停用的人", "password": PASSWORD})
    assert refused.status_code == 401
    assert last_audit(engine, "app_user", str(user_id))["after"] == {"active": False}
    page = admin.get("/admin/users").text
    assert "<td>已停用</td>" in page.split(f'data-user="{user_id}"')[1].split("</tr>")[0]

    assert post("active", active="true").status_code == 303
    sign_in(user, "将被停用的人")
    assert post("password", password="短").status_code == 400
    assert post("password", password=NEW_PASSWORD).status_code == 303
    assert not signed_in(user)  # its session ended with the new password
    assert last_audit(engine, "app_user", str(user_id))["action"] == "password_reset"
    sign_in(user, "将被停用的人", NEW_PASSWORD)

    myself = people["管理员"]
    for what, data in (("active", {"active": "false"}), ("role", {"role": "editor"})):
        locked_out = post(what, myself, **data)
        assert locked_out.status_code == 403 and "自己" in flash_of(locked_out)[1]
    with Session(engine) as session:  # a neighbouring county's user, for this moment only
        session.execute(text("INSERT INTO county (code, name, target_rate) "
                             "VALUES ('629903', '另一县', 0.9)"))  # fmt: skip
        stranger, _ = add_user(session, "629903", "另一县的人", "editor", with_token=False)
        session.commit()
        try:
            assert post("active", stranger.id, active="false").status_code == 404
        finally:
            session.execute(text("DELETE FROM county WHERE code = '629903'"))
            session.commit()
    assert signed_in(admin)
    assert admin.post(f"/admin/users/{user_id}/active", data={"active": "false"}).status_code == 403


# -- a county's private map ------------------------------------------------------------------


@pytest.fixture(scope="module")
def private(cluster, demo_database):
    """A database of its own (its county's map gets closed), the PEOPLE in it: (owner engine,
    the app on the app's own role)."""
    with demo_database("account_private") as owner:
        add_people(owner)
        app_db = app_role(cluster, owner)
        yield owner, create_app(Settings(), app_db)
        app_db.dispose()


def reads(client) -> list[int]:
    """The answers of a county's map and its API: compounds, a tile, TileJSON, the ledger."""
    x, y = tile_of(103.85, 36.05, 12)
    urls = [f"/api/compounds?county={COUNTY}", f"/tiles/compounds/12/{x}/{y}.mvt",
            f"/tiles?county={COUNTY}", f"/api/ledger?county={COUNTY}"]  # fmt: skip
    return [client.get(url).status_code for url in urls]


def map_is(owner) -> bool:
    with owner.connect() as conn:
        return conn.execute(text("SELECT map_public FROM county WHERE code = :c"),
                            {"c": COUNTY}).scalar_one()  # fmt: skip


def test_a_private_map_answers_its_own_county_only(private, cluster):
    owner, app = private
    anonymous = TestClient(app)
    assert set(reads(anonymous)) <= {200, 204}  # public by default

    closed = run_user_cli(owner, "county", "set", COUNTY, "--map-private")
    assert closed.returncode == 0, closed.stderr
    assert "否，须登录" in closed.stdout and map_is(owner) is False
    with owner.connect() as conn:
        actor = conn.execute(text("SELECT actor FROM audit_log WHERE object_kind = 'county' "
                                  "ORDER BY id DESC LIMIT 1")).scalar_one()  # fmt: skip
    assert actor.startswith("命令行 ")

    assert reads(anonymous) == [401] * 4
    page = anonymous.get("/", follow_redirects=False)  # a browser is sent to sign in
    assert page.status_code == 303 and page.headers["location"] == "/signin?next=%2F"
    neighbour, viewer = TestClient(app), TestClient(app)
    sign_in(neighbour, "邻县编辑")
    sign_in(viewer, "查看员")
    assert reads(neighbour) == [403] * 4
    assert set(reads(viewer)) <= {200, 204} and reads(viewer)[0] == 200

    admin = TestClient(app)
    csrf = sign_in(admin, "管理员")
    assert "须登录本县账号" in admin.get("/admin/users").text
    opened = admin.post("/admin/county", data={"csrf_token": csrf, "map_public": "true"},
                        follow_redirects=False)  # fmt: skip
    assert opened.status_code == 303 and map_is(owner) is True
    assert set(reads(anonymous)) <= {200, 204}
    assert admin.post("/admin/county", data={"csrf_token": csrf, "map_public": "maybe"})\
        .status_code == 400  # fmt: skip

    patched = admin.patch(f"/api/counties/{COUNTY}", json={"map_public": False},
                          headers={"X-CSRF-Token": csrf})  # fmt: skip
    assert patched.status_code == 200 and patched.json()["map_public"] is False
    assert reads(anonymous) == [401] * 4
    with owner.connect() as conn:
        trace = conn.execute(text("SELECT actor, after FROM audit_log WHERE object_kind = "
                                  "'county' ORDER BY id DESC LIMIT 1")).one()  # fmt: skip
    assert trace.actor == "管理员" and trace.after == {"map_public": False}


# -- the command line --------------------------------------------------------------------------


def run_user_cli(engine, *args: str, stdin: str = ""):
    """`titlemap …` against `engine`'s database, `stdin` piped in (a password)."""
    url = engine.url.render_as_string(hide_password=False)
    return subprocess.run([str(TITLEMAP), *args], input=stdin, capture_output=True, text=True,
                          env=cli_env({"DATABASE_URL": url, "COLUMNS": "200"}),
                          timeout=180)  # fmt: skip


def test_user_add_with_a_password_then_sign_in_list_and_passwd(engine, client):
    with Session(engine) as session:
        session.execute(text("DELETE FROM app_user WHERE name = '命令行加的人'"))
        session.commit()
    added = run_user_cli(engine, "user", "add", "命令行加的人", "--role", "editor",
                         "--department", "自然资源局", "--password", "--county", COUNTY,
                         stdin="命令行的密码-123\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "token" not in added.stdout  # a person signing in needs no token
    sign_in(client, "命令行加的人", "命令行的密码-123")
    me = client.get("/api/me").json()
    assert me["department"] == "自然资源局" and me["role"] == "editor"
    with engine.connect() as conn:
        actor = conn.execute(text("SELECT actor FROM audit_log WHERE object_kind = 'app_user' "
                                  "AND object_id = :i AND action = 'insert'"),
                             {"i": str(me["id"])}).scalar_one()  # fmt: skip
    assert actor.startswith("命令行 ")

    listed = run_user_cli(engine, "user", "list", "--county", COUNTY)
    assert listed.returncode == 0, listed.stderr
    line = next(row for row in listed.stdout.splitlines() if "命令行加的人" in row)
    assert "自然资源局" in line and "编辑" in line
    assert "全县（领导小组办公室）" in next(r for r in listed.stdout.splitlines() if "办公室 " in r)

    short = run_user_cli(engine, "user", "passwd", "命令行加的人", stdin="short\n")
    assert short.returncode == 1 and "至少 8 个字符" in short.stderr
    assert "Traceback" not in short.stderr
    changed = run_user_cli(engine, "user", "passwd", "命令行加的人", "--county", COUNTY,
                           stdin="命令行的新密码-456\n")  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    assert not signed_in(client)  # the new password ended the session
    sign_in(client, "命令行加的人", "命令行的新密码-456")

    disabled = run_user_cli(engine, "user", "disable", "命令行加的人", "--county", COUNTY)
    assert disabled.returncode == 0 and not signed_in(client)
    unknown = run_user_cli(engine, "user", "passwd", "没有这个人", stdin="whatever-long\n")
    assert unknown.returncode == 1 and "没有这个人" in unknown.stderr


def test_user_add_still_prints_a_token_by_default(private):
    engine, _ = private  # a database with the neighbouring county to give
    with Session(engine) as session:
        session.execute(text("DELETE FROM app_user WHERE name = '脚本账号'"))
        session.commit()
    added = run_user_cli(engine, "user", "add", "脚本账号", "--county", COUNTY)
    assert added.returncode == 0, added.stderr
    token = added.stdout.split("token:")[1].split()[0]
    assert len(token) >= 40
    given = run_user_cli(engine, "user", "counties", "脚本账号", OTHER_COUNTY, "--county", COUNTY)
    assert given.returncode == 0 and OTHER_COUNTY in given.stdout
    with engine.connect() as conn:
        counties = conn.execute(text("SELECT counties FROM app_user WHERE name = '脚本账号'"))
        assert counties.scalar_one() == [OTHER_COUNTY]


# -- in a browser ----------------------------------------------------------------------------


@pytest.mark.slow
def test_sign_in_and_add_a_user_in_chromium(browser, app_engine, engine, people):
    from tests.conftest import Server

    with Session(engine) as session:
        session.execute(text("DELETE FROM app_user WHERE name = '浏览器加的人'"))
        session.commit()
    server = Server(create_app(Settings(), app_engine))
    try:
        page = browser.new_page()
        errors: list[str] = []  # console errors (a refused script), failed loads
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

        def failed(response) -> None:
            if response.status >= 400 and not response.url.endswith("/favicon.ico"):
                errors.append(f"{response.status} {response.url}")

        page.on("response", failed)
        page.goto(server.base + "/admin/users")
        assert urlsplit(page.url).path == "/signin"  # sent to sign in, coming back after
        page.fill("main input[name=name]", "管理员")
        page.fill("main input[name=password]", PASSWORD)
        page.click("main button[type=submit]")
        page.wait_for_url("**/admin/users")
        assert "管理员（全县（领导小组办公室） · 管理员）" in page.text_content("header")
        form = page.locator("form[action='/admin/users']")
        form.locator("input[name=name]").fill("浏览器加的人")
        form.locator("select[name=role]").select_option("editor")
        form.locator("input[name=department]").fill("税务局")
        form.locator("input[name=password]").fill("浏览器的密码-1")
        form.locator("button[type=submit]").click()
        page.wait_for_url("**/admin/users?done=added*")
        assert "已添加用户 浏览器加的人" in page.text_content(".tm-flash")
        page.click("header button[type=submit]")  # 退出
        page.wait_for_url("**/signin")
        assert page.text_content("header").count("管理员") == 0
        errors = [e for e in errors if not e.startswith("Failed to load resource")]
        assert errors == []  # the favicon aside: no script refused, nothing broken
    finally:
        server.stop()
    sign_in(TestClient(create_app(Settings(), app_engine)), "浏览器加的人", "浏览器的密码-1")


def test_signed_in_requests_never_make_the_event_loop_wait_for_a_connection(app_engine, people):
    """With every pooled connection held by requests in worker threads, a request that is
    still being told who its user is must not wait for one on the event loop: the requests
    holding them need the loop to finish. One connection, eight signed-in readers at once: all
    answered, none by the pool's timeout (503)."""
    import threading

    import httpx
    from sqlalchemy import create_engine

    from tests.conftest import Server

    tight = create_engine(app_engine.url, pool_size=1, max_overflow=0, pool_timeout=5)
    server = Server(create_app(Settings(), tight))
    try:
        clients = [httpx.Client(base_url=server.base, timeout=30) for _ in range(8)]
        for client in clients:
            sign_in(client, "查看员")
        code = clients[0].get("/api/ledger").json()["entries"][0]["code"]
        answers: list[int] = []

        def read(client: httpx.Client) -> None:
            for _ in range(3):  # a read held in a worker thread, and who-am-I asked
                answers.append(client.get(f"/api/ledger/{code}").status_code)
                answers.append(client.get("/api/me").status_code)

        threads = [threading.Thread(target=read, args=(c,)) for c in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert answers == [200] * 48
    finally:
        server.stop()
        tight.dispose()
