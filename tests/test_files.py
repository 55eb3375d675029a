"""A compound's papers (一小区一档): uploads checked by content, kept by hash under the data
directory, listed, downloaded byte for byte, deleted softly by admins; photos with their EXIF
time and place as points on the map and on the visit pack's page."""

import hashlib
import socket
import subprocess
import zipfile
from io import BytesIO
from pathlib import Path

import docx
import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import ExifTags, Image
from PIL.TiffImagePlugin import IFDRational
from pypdf import PdfWriter
from shapely import wkb
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from api.app import create_app
from geo.core.model import User
from geo.core.settings import Settings
from geo.io.uploads import checked_name, checked_upload, identify
from geo.ledger.files import FileRefused, add_file, blob_path, find_compound
from tests.conftest import Server, add_people, app_role, sign_in
from tests.test_web_map import ARTIFACTS, MapPage

COUNTY = "629901"
TAKEN = "2026:05:01 09:30:00"


# -- files to upload ------------------------------------------------------------------------------


def pdf_bytes() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def docx_bytes() -> bytes:
    document = docx.Document()
    document.add_paragraph("专题会议纪要：证缴分离，先登记后补缴")
    out = BytesIO()
    document.save(out)
    return out.getvalue()


def png_bytes() -> bytes:
    out = BytesIO()
    Image.new("RGB", (40, 30), "red").save(out, "PNG")
    return out.getvalue()


def zip_bytes() -> bytes:
    out = BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("说明.txt", "not an Office document")
    return out.getvalue()


def _dms(value: float) -> tuple:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = ((value - degrees) * 60 - minutes) * 60
    return (
        IFDRational(degrees, 1),
        IFDRational(minutes, 1),
        IFDRational(round(seconds * 1e4), 10**4),
    )


def jpeg_bytes(lon: float | None = None, lat: float | None = None, colour="orange") -> bytes:
    """An 800×600 JPEG taken at TAKEN, turned (EXIF orientation 6: shown portrait), with a GPS
    place when `lon`, `lat` are given — EXIF built with Pillow alone."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = TAKEN
    if lon is not None:
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        gps[ExifTags.GPS.GPSLatitudeRef] = "N"
        gps[ExifTags.GPS.GPSLatitude] = _dms(lat)
        gps[ExifTags.GPS.GPSLongitudeRef] = "E"
        gps[ExifTags.GPS.GPSLongitude] = _dms(lon)
    out = BytesIO()
    Image.new("RGB", (800, 600), colour).save(out, "JPEG", exif=exif)
    return out.getvalue()


# -- the database, the app and the people ---------------------------------------------------------


@pytest.fixture(scope="module")
def db(cluster, demo_database):
    """A database of its own with PEOPLE; (owner engine, app-role engine)."""
    with demo_database("files") as owner:
        add_people(owner)
        app_engine = app_role(cluster, owner)
        yield owner, app_engine
        app_engine.dispose()


def make_files_app(db, data_dir: Path, upload_mb: int = 1):
    return create_app(Settings(data_dir=data_dir, upload_mb=upload_mb), db[1])


@pytest.fixture
def site(db, tmp_path):
    """The app over `db` keeping its files in a fresh folder; `site.client(name)` signs in."""

    class Site:
        data_dir = tmp_path / "data"
        app = make_files_app(db, tmp_path / "data")

        def client(self, name: str | None = None) -> TestClient:
            client = TestClient(self.app)
            client.csrf = sign_in(client, name) if name else None
            return client

    return Site()


def compounds_where(db, condition: str, n: int) -> list[str]:
    with db[0].connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT c.code FROM compound c LEFT JOIN ledger_entry e "
                    f"ON e.compound_id = c.id WHERE c.county_code = '{COUNTY}' AND {condition} "
                    "ORDER BY c.code LIMIT :n"
                ),
                {"n": n},
            ).scalars()
        )


LED_BY_HOUSING = "e.lead_department = '住建局' AND NOT ('税务局' = ANY(e.cooperating_departments))"


def housing(db, n: int) -> str:
    """The n-th compound led by 住建局 without 税务局: each test its own."""
    return compounds_where(db, LED_BY_HOUSING, n + 1)[n]


def inside(db, code: str) -> tuple[float, float]:
    """A point inside the compound (lon, lat)."""
    with db[0].connect() as conn:
        point = conn.execute(
            text("SELECT ST_AsBinary(ST_PointOnSurface(geom)) FROM compound WHERE code = :c"),
            {"c": code},
        ).scalar_one()
    p = wkb.loads(bytes(point))
    return p.x, p.y


def rows_of(db, code: str) -> int:
    with db[0].connect() as conn:
        return conn.execute(
            text(
                "SELECT count(*) FROM compound_file f JOIN compound c ON c.id = f.compound_id "
                "WHERE c.code = :c"
            ),
            {"c": code},
        ).scalar_one()


def stored_files(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "files").rglob("*") if p.is_file()]


def upload(client, code, name, body, title=None, task_id=None, csrf=True):
    data = {"title": title} if title else {}
    if task_id is not None:
        data["task_id"] = str(task_id)
    headers = {"X-CSRF-Token": client.csrf} if csrf and client.csrf else {}
    return client.post(
        f"/api/compounds/{code}/files",
        files={"file": (name, body, "application/octet-stream")},
        data=data,
        headers=headers,
    )


def detail(response) -> str:
    message = response.json()["detail"]
    assert isinstance(message, str) and "\n" not in message, message
    return message


# -- refused --------------------------------------------------------------------------------------


SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


@pytest.mark.parametrize(
    ("name", "body", "status", "words"),
    [
        ("现场照片.pdf", png_bytes(), 422, "文件内容是 PNG 图片，与扩展名 .pdf 不符"),
        ("资料.zip", zip_bytes(), 422, "不接受压缩包"),
        ("批复.docx", zip_bytes(), 422, "不接受压缩包"),
        ("../../etc/passwd.pdf", pdf_bytes(), 422, "不能含路径"),
        ("a/b.pdf", pdf_bytes(), 422, "不能含路径"),
        ("C:批复.pdf", pdf_bytes(), 422, "不能含路径"),
        ("图.svg", SVG, 422, "SVG"),
        ("图.png", SVG, 422, "SVG"),
        ("页面.html", b"<!DOCTYPE html><html><body>x</body></html>", 422, "HTML"),
        ("setup.pdf", b"MZ\x90\x00" + bytes(200), 422, "可执行"),
        ("空.pdf", b"", 422, "空"),
        ("大.pdf", b"%PDF-1.7\n" + bytes(1024 * 1024), 413, "上限"),  # just over 1 MB
        ("很大.pdf", b"%PDF-1.7\n" + bytes(3 * 1024 * 1024), 413, "上限"),  # by Content-Length
    ],
    ids=[
        "png-as-pdf",
        "zip",
        "zip-as-docx",
        "dotdot",
        "slash",
        "drive",
        "svg",
        "svg-as-png",
        "html",
        "exe",
        "empty",
        "over-limit",
        "far-over-limit",
    ],
)
def test_refused_uploads_answer_one_line_and_keep_nothing(db, site, name, body, status, words):
    code = housing(db, 0)
    client = site.client("办公室")
    before = rows_of(db, code)
    response = upload(client, code, name, body, title="不该留下")
    assert response.status_code == status, response.text
    assert words in detail(response)
    assert rows_of(db, code) == before
    assert stored_files(site.data_dir) == []


def _answer_to_head(server: Server, head: str) -> bytes:
    """What the server answers to a request's head alone (its body never sent), within 5 s."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(head.encode())
        return sock.recv(4096)


def test_an_upload_is_refused_before_its_body_is_read(db, tmp_path):
    """Who asks, the CSRF token and the announced size are checked on the request's head: a
    600 MB body announced and never sent is answered at once."""
    code = housing(db, 0)
    server = Server(make_files_app(db, tmp_path / "data"))
    try:
        with httpx.Client(base_url=server.base) as http:
            csrf = sign_in(http, "办公室")
            cookie = http.cookies.get("titlemap_session")
        head = (
            f"POST /api/compounds/{code}/files HTTP/1.1\r\nHost: x\r\n{{}}"
            "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 629145600\r\n\r\n"
        )
        answers = {
            "nobody": _answer_to_head(server, head.format("")),
            "no csrf": _answer_to_head(
                server, head.format(f"Cookie: titlemap_session={cookie}\r\n")
            ),
            "too large": _answer_to_head(
                server,
                head.format(f"Cookie: titlemap_session={cookie}\r\nX-CSRF-Token: {csrf}\r\n"),
            ),
        }
    finally:
        server.stop()
    assert answers["nobody"].startswith(b"HTTP/1.1 401"), answers
    assert answers["no csrf"].startswith(b"HTTP/1.1 403"), answers
    assert answers["too large"].startswith(b"HTTP/1.1 413"), answers


def test_names_are_checked_alone():
    for bad in ("..", "a\\b.pdf", "D:x.pdf", "x\u202efdp.exe", "a\x07b.pdf", "\n", ""):
        with pytest.raises(FileRefused):
            checked_name(bad)
    assert checked_name("  2026年 会议纪要.PDF ") == "2026年 会议纪要.PDF"


def test_office_documents_are_told_by_their_content(tmp_path):
    docx_file = tmp_path / "x"
    docx_file.write_bytes(docx_bytes())
    assert identify(docx_file).extensions == (".docx",)
    # an OLE2 file (old .doc) is told by its WordDocument stream; one without is refused
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
    entry = "WordDocument\0".encode("utf-16-le").ljust(64, b"\0") + (26).to_bytes(2, "little")
    ole = tmp_path / "old"
    ole.write_bytes(header + entry + b"\x02" + bytes(61))
    assert identify(ole).media_type == "application/msword"
    ole.write_bytes(header + bytes(128))
    with pytest.raises(FileRefused, match="不是 Word、Excel 或 PowerPoint"):
        identify(ole)


# -- kept, listed, downloaded ---------------------------------------------------------------------


def test_papers_are_kept_listed_downloaded_and_photos_located(db, site):
    code = housing(db, 1)
    lon, lat = inside(db, code)
    editor = site.client("住建局张三")
    papers = [
        ("规划批复.pdf", pdf_bytes(), "规划批复", "application/pdf", "pdf"),
        ("专题会议纪要.docx", docx_bytes(), "会议纪要",
         "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "office"),
        ("IMG_0001.JPG", jpeg_bytes(lon, lat), "现场照片", "image/jpeg", "image"),
    ]  # fmt: skip
    for name, body, title, media_type, kind in papers:
        response = upload(editor, code, name, body, title=title)
        assert response.status_code == 201, response.text
        kept = response.json()
        assert (kept["name"], kept["media_type"], kept["kind"]) == (name, media_type, kind)
        assert kept["uploaded_by"] == "住建局张三" and kept["size_bytes"] == len(body)
    # the same bytes again: refused, the first is kept
    again = upload(editor, code, "规划批复（重复）.pdf", papers[0][1])
    assert again.status_code == 409 and "已上传" in detail(again)

    listed = editor.get(f"/api/compounds/{code}/files").json()
    assert listed["may_upload"] is True
    files = {f["name"]: f for f in listed["files"]}
    assert set(files) == {p[0] for p in papers}
    viewer = site.client("查看员")  # any signed-in person of the county reads them
    for name, body, title, media_type, _kind in papers:
        f = files[name]
        assert f["title"] == title
        response = viewer.get(f["url"])
        assert response.status_code == 200
        assert response.content == body  # byte for byte
        assert response.headers["content-type"].startswith(media_type)
        disposition = response.headers["content-disposition"]
        assert disposition.startswith("attachment;") and "filename*=UTF-8''" in disposition
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in response.headers["content-security-policy"]
        sha = hashlib.sha256(body).hexdigest()
        assert (site.data_dir / "files" / sha[:2] / sha[2:4] / sha).read_bytes() == body
    assert (
        "filename*=UTF-8''%E8%A7%84%E5%88%92"
        in viewer.get(files["规划批复.pdf"]["url"]).headers["content-disposition"]
    )
    assert len(stored_files(site.data_dir)) == 3  # nothing left in the incoming folder

    photo = files["IMG_0001.JPG"]
    assert photo["taken_at"] == "2026-05-01T09:30:00+08:00"  # EXIF local time = Beijing
    assert photo["point"] == pytest.approx([lon, lat], abs=1e-6)
    thumb = viewer.get(photo["thumb"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    small = Image.open(BytesIO(thumb.content))
    assert small.size == (240, 320)  # 800×600 turned upright by its EXIF orientation
    assert viewer.get(files["规划批复.pdf"]["url"] + "/thumb").status_code == 404

    box = f"{lon - 0.01},{lat - 0.01},{lon + 0.01},{lat + 0.01}"
    points = viewer.get("/api/photos", params={"bbox": box}).json()["features"]
    assert len(points) == 1
    assert points[0]["geometry"]["coordinates"] == pytest.approx([lon, lat], abs=1e-6)
    props = points[0]["properties"]
    assert props["compound"] == code and props["taken_at"] == "2026-05-01T09:30:00+08:00"
    assert props["title"] == "现场照片" and props["thumb"] == photo["thumb"]
    far = f"{lon + 1},{lat + 1},{lon + 1.1},{lat + 1.1}"
    assert viewer.get("/api/photos", params={"bbox": far}).json()["features"] == []

    with db[0].connect() as conn:  # traced: who uploaded, from where
        trace = conn.execute(
            text("SELECT actor, department, address FROM audit_log WHERE object_kind = "
                 "'compound_file' AND action = 'insert' AND object_id = :id"),
            {"id": str(photo["id"])},
        ).one()  # fmt: skip
    assert tuple(trace) == ("住建局张三", "住建局", "testclient")


def test_a_failed_insert_leaves_no_new_bytes_behind(db, tmp_path):
    first, second = housing(db, 7), housing(db, 8)
    data_dir, body = tmp_path / "data", pdf_bytes() + b"%unique to this test"

    def fails():
        raise RuntimeError("the database went away")

    with Session(db[0], expire_on_commit=False) as session:
        office = session.scalar(select(User).where(User.name == "办公室"))
        ids = [find_compound(session, COUNTY, code).id for code in (first, second)]
        new = checked_upload(BytesIO(body), "批复.pdf", data_dir, 10**6)
        session.commit = fails
        with pytest.raises(RuntimeError):
            add_file(session, data_dir, ids[0], office, new, "批复")
        assert stored_files(data_dir) == []  # placed, then removed: no row names it
        del session.commit
        kept = add_file(session, data_dir, ids[0], office,
                        checked_upload(BytesIO(body), "批复.pdf", data_dir, 10**6))  # fmt: skip
        kept_sha = kept.sha256
        again = checked_upload(BytesIO(body), "批复.pdf", data_dir, 10**6)
        session.commit = fails
        with pytest.raises(RuntimeError):
            add_file(session, data_dir, ids[1], office, again)
        again.path.unlink()  # what the router does with bytes not kept
    # bytes a row already names stay
    assert stored_files(data_dir) == [blob_path(data_dir, kept_sha)]
    assert (rows_of(db, first), rows_of(db, second)) == (1, 0)


def test_who_may_upload_and_read(db, site):
    code, other = housing(db, 2), housing(db, 3)
    off_ledger = compounds_where(db, "e.id IS NULL", 1)[0]
    body = pdf_bytes()

    assert upload(site.client(), code, "批复.pdf", body).status_code == 401
    refused = upload(site.client("查看员"), code, "批复.pdf", body)
    assert refused.status_code == 403 and detail(refused)
    tax = upload(site.client("税务局李四"), code, "批复.pdf", body)
    assert tax.status_code == 403 and "税务局" in detail(tax)
    editor = site.client("住建局张三")
    no_csrf = upload(editor, code, "批复.pdf", body, csrf=False)
    assert no_csrf.status_code == 403 and "CSRF" in detail(no_csrf)
    wrong = editor.post(f"/api/compounds/{code}/files", headers={"X-CSRF-Token": "wrong"},
                        files={"file": ("批复.pdf", body, "application/pdf")})  # fmt: skip
    assert wrong.status_code == 403
    assert upload(site.client("邻县编辑"), code, "批复.pdf", body).status_code == 403
    # not on the ledger: the office only
    off = upload(editor, off_ledger, "批复.pdf", body)
    assert off.status_code == 403 and "办公室" in detail(off)
    assert upload(site.client("办公室"), off_ledger, "批复.pdf", body).status_code == 201
    assert rows_of(db, code) == 0

    # a task reply's file: the task must be the compound's
    with db[0].begin() as conn:
        task = conn.execute(
            text(
                "INSERT INTO task (county_code, compound_id, department, action, due_on, "
                "created_by, created_at) SELECT county_code, id, '住建局', '补办竣工验收', "
                "'2026-12-31', '办公室', now() FROM compound WHERE code = :c RETURNING id"
            ),
            {"c": code},
        ).scalar_one()
    elsewhere = upload(editor, other, "答复.pdf", body, task_id=task)
    assert elsewhere.status_code == 422 and f"任务 {task}" in detail(elsewhere)
    reply = upload(editor, code, "答复.pdf", body, title="办理答复", task_id=task)
    assert reply.status_code == 201 and reply.json()["task_id"] == task
    assert upload(editor, code, "其他.docx", docx_bytes()).status_code == 201
    of_task = editor.get(f"/api/compounds/{code}/files", params={"task_id": task}).json()
    assert [f["name"] for f in of_task["files"]] == ["答复.pdf"]
    assert len(editor.get(f"/api/compounds/{code}/files").json()["files"]) == 2

    # reading: the county's signed-in people only
    file_url = reply.json()["url"]
    assert site.client().get(f"/api/compounds/{code}/files").status_code == 401
    assert site.client().get(file_url).status_code == 401
    assert site.client().get("/api/photos").status_code == 401
    neighbour = site.client("邻县编辑")
    assert neighbour.get(f"/api/compounds/{code}/files").status_code == 403
    assert neighbour.get(file_url).status_code == 404
    assert site.client("查看员").get(f"/api/compounds/{code}/files").json()["may_upload"] is False


def test_only_admins_delete_and_deleted_files_are_gone(db, site):
    code = housing(db, 4)
    lon, lat = inside(db, code)
    office = site.client("办公室")
    kept = upload(office, code, "现场.jpg", jpeg_bytes(lon, lat, "green"), title="现场照片")
    assert kept.status_code == 201
    f = kept.json()
    assert (
        office.delete(f"/api/files/{f['id']}", headers={"X-CSRF-Token": office.csrf}).status_code
        == 403
    )
    admin = site.client("管理员")
    assert admin.delete(f"/api/files/{f['id']}").status_code == 403  # no CSRF token
    gone = admin.delete(f"/api/files/{f['id']}", headers={"X-CSRF-Token": admin.csrf})
    assert gone.status_code == 200 and gone.json()["deleted_by"] == "管理员"
    assert office.get(f"/api/compounds/{code}/files").json()["files"] == []
    assert office.get(f["url"]).status_code == 404
    assert office.get(f["thumb"]).status_code == 404
    box = f"{lon - 0.01},{lat - 0.01},{lon + 0.01},{lat + 0.01}"
    ids = [p["id"] for p in office.get("/api/photos", params={"bbox": box}).json()["features"]]
    assert f["id"] not in ids
    again = admin.delete(f"/api/files/{f['id']}", headers={"X-CSRF-Token": admin.csrf})
    assert again.status_code == 404
    with db[0].connect() as conn:  # kept for the record
        row = conn.execute(
            text("SELECT deleted_by FROM compound_file WHERE id = :i"), {"i": f["id"]}
        ).one()
    assert row.deleted_by == "管理员"


# -- the visit pack -------------------------------------------------------------------------------


def images_in(pdf: bytes, tmp_path: Path) -> int:
    path = tmp_path / "pack.pdf"
    path.write_bytes(pdf)
    listing = subprocess.run(["pdfimages", "-list", str(path)], capture_output=True, text=True,
                             check=True).stdout  # fmt: skip
    return len(listing.splitlines()) - 2  # two header lines


def test_the_visit_pack_shows_the_latest_photo(db, site, tmp_path):
    code = housing(db, 5)
    lon, lat = inside(db, code)
    office = site.client("办公室")

    def pack() -> bytes:  # as a signed-in person of the county
        response = office.get("/print/visit.pdf", params={"compounds": code})
        assert response.status_code == 200, response.text
        return response.content

    without = images_in(pack(), tmp_path)
    assert upload(office, code, "现场.jpg", jpeg_bytes(lon, lat, "navy")).status_code == 201
    with_photo = pack()
    assert images_in(with_photo, tmp_path) == without + 1
    (tmp_path / "pack.pdf").write_bytes(with_photo)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "files_visit_pack.pdf").write_bytes(with_photo)
    words = subprocess.run(["pdftotext", str(tmp_path / "pack.pdf"), "-"], capture_output=True,
                           text=True, check=True).stdout  # fmt: skip
    assert "现场照片 2026年5月1日" in words
    # the county's papers are its own people's: a pack printed for anyone else has no photo
    anonymous = site.client().get("/print/visit.pdf", params={"compounds": code})
    assert anonymous.status_code == 200 and images_in(anonymous.content, tmp_path) == without


# -- in the browser -------------------------------------------------------------------------------


@pytest.mark.slow
def test_upload_from_the_card_and_see_it_with_its_thumbnail(db, browser, tmp_path):
    code = housing(db, 6)
    lon, lat = inside(db, code)
    server = Server(make_files_app(db, tmp_path / "data"))
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        with httpx.Client(base_url=server.base) as http:
            sign_in(http, "住建局张三")
            cookie = http.cookies.get("titlemap_session")
        context.add_cookies([{"name": "titlemap_session", "value": cookie, "url": server.base}])

        class Context:  # MapPage opens its page here, signed in
            def new_page(self, **_options):
                return context.new_page()

        page = MapPage(Context(), server.base).open()
        page.centre_on(lon, lat, 16)
        page.js(f"titlemap.app.openCard({code!r}) && 1")
        page.page.wait_for_selector(".tm-card:not([hidden]) .tm-file-form")
        assert "尚无档案资料" in page.page.inner_text(".tm-file-section")
        page.page.set_input_files(
            ".tm-file-form input[type=file]",
            files=[{"name": "现场.jpg", "mimeType": "image/jpeg", "buffer": jpeg_bytes(lon, lat)}],
        )
        page.page.fill(".tm-file-form .tm-file-title", "现场照片：3号楼")
        page.page.click(".tm-file-send")
        page.until(
            "Array.from(document.querySelectorAll('.tm-file-item img.tm-file-thumb'))"
            ".some(i => i.complete && i.naturalWidth > 0)"
        )
        section = page.page.inner_text(".tm-file-section")
        assert "现场照片：3号楼" in section and "住建局张三" in section and "已上传" in section
        assert page.js("document.querySelector('.tm-file-thumb').naturalHeight") == 320
        # the photo layer, in the layer control: a camera where the photo was taken
        assert "现场照片" in page.page.inner_text(".leaflet-control-layers-list")
        page.js("titlemap.app.map.addLayer(titlemap.app.photoLayer) && 1")
        camera = '.tm-file-camera[title="现场照片：3号楼"]'  # (other tests' photos may be near)
        page.until(f"document.querySelectorAll('{camera}').length === 1")
        page.page.click(camera)
        page.page.wait_for_selector(".tm-file-photo img")
        assert "拍摄于 2026年5月1日 09:30" in page.page.inner_text(".tm-file-photo")
        page.screenshot("files_card")
        page.check_offline()
    finally:
        context.close()
        server.stop()
