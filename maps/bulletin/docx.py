"""The bulletin as a Word document (.docx), laid out as offices write one (GB/T 9704 habits):
A4, the title in 小标宋, headings in 黑体, text in 仿宋_GB2312, the number and a red rule
under the masthead, tables with their header row repeated on every page.

Fonts are named, not embedded: Word on an office's computer has them (others substitute).
An issued bulletin gives the same bytes every time (its dates, not the clock's, are written).
"""

import zipfile
from datetime import UTC, datetime, time
from io import BytesIO

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_TAB_ALIGNMENT
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt, RGBColor

from geo.core.dates import BEIJING
from maps.bulletin.content import Block, Table, blocks, file_title

TITLE_FONT, HEADING_FONT, BODY_FONT = "方正小标宋简体", "黑体", "仿宋_GB2312"
LATIN_FONT = "Times New Roman"
BLACK, RED = RGBColor(0, 0, 0), RGBColor(0xC0, 0, 0)
BODY_PT, TABLE_PT = 14, 10.5  # 四号 for text in a 简报-style notice, 五号 in tables
PAGE = {"top": 37, "bottom": 35, "left": 28, "right": 26}  # mm, GB/T 9704
ALIGN = {
    "left": WD_ALIGN_PARAGRAPH.LEFT,
    "center": WD_ALIGN_PARAGRAPH.CENTER,
    "right": WD_ALIGN_PARAGRAPH.RIGHT,
}


def _fonts(element, name: str) -> None:
    """Name `name` for Chinese and Latin text of a run or style element."""
    fonts = element.get_or_add_rPr().get_or_add_rFonts()
    for theme in ("asciiTheme", "eastAsiaTheme", "hAnsiTheme", "cstheme"):  # they would win
        fonts.attrib.pop(qn(f"w:{theme}"), None)
    fonts.set(qn("w:eastAsia"), name)
    fonts.set(qn("w:ascii"), LATIN_FONT if name == BODY_FONT else name)
    fonts.set(qn("w:hAnsi"), LATIN_FONT if name == BODY_FONT else name)


def _run(paragraph, text_: str, font: str = BODY_FONT, size: float = BODY_PT, bold=False,
         color: RGBColor = BLACK):  # fmt: skip
    run = paragraph.add_run(text_)
    run.font.size = Pt(size)
    run.font.bold = bold
    run.font.color.rgb = color
    _fonts(run._element, font)
    return run


def _style(document, name: str, font: str, size: float, bold=False) -> None:
    style = document.styles[name]
    style.font.size = Pt(size)
    style.font.bold = bold
    style.font.italic = False
    style.font.color.rgb = BLACK
    _fonts(style.element, font)


def _plain_title(style) -> None:
    """The template's Title has a blue rule under it: an official heading has none."""
    properties = style.element.pPr
    if properties is not None:
        for border in properties.findall(qn("w:pBdr")):
            properties.remove(border)


def _red_rule(paragraph) -> None:
    """A red line under the paragraph: the masthead's rule (版头分隔线)."""
    borders = OxmlElement("w:pBdr")
    bottom = OxmlElement("w:bottom")
    for key, value in (("val", "single"), ("sz", "12"), ("space", "4"), ("color", "C00000")):
        bottom.set(qn(f"w:{key}"), value)
    borders.append(bottom)
    paragraph._p.get_or_add_pPr().append(borders)


def _repeat_header(row) -> None:
    header = OxmlElement("w:tblHeader")
    header.set(qn("w:val"), "true")
    row._tr.get_or_add_trPr().append(header)


def _table(document, table: Table, width_mm: float) -> None:
    caption = document.add_paragraph()
    caption.alignment = WD_ALIGN_PARAGRAPH.CENTER
    caption.paragraph_format.space_before = Pt(6)
    _run(caption, table.caption, HEADING_FONT, TABLE_PT + 1)
    grid = document.add_table(rows=1 + len(table.rows), cols=len(table.headers))
    grid.style = document.styles["Table Grid"]
    grid.alignment = WD_TABLE_ALIGNMENT.CENTER
    total = sum(table.widths)
    widths = [Mm(width_mm * w / total) for w in table.widths]
    _repeat_header(grid.rows[0])
    for r, (row, values) in enumerate(zip(grid.rows, [table.headers, *table.rows], strict=True)):
        for c, (cell, value) in enumerate(zip(row.cells, values, strict=True)):  # not cell(r, c):
            cell.width = widths[c]  # that walks the whole table for each cell
            paragraph = cell.paragraphs[0]
            paragraph.alignment = ALIGN["center" if r == 0 else table.align[c]]
            _run(paragraph, value, HEADING_FONT if r == 0 else BODY_FONT, TABLE_PT)


def _block(document, block: Block, width_mm: float) -> None:
    if block.kind == "title":
        paragraph = document.add_heading(level=0)
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
        _run(paragraph, block.text, TITLE_FONT, 22)
    elif block.kind == "draft":
        paragraph = document.add_paragraph()
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
        _run(paragraph, block.text, HEADING_FONT, 16, color=RED)
    elif block.kind == "number":
        paragraph = document.add_paragraph()
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
        _run(paragraph, block.text, BODY_FONT, 16)
    elif block.kind == "masthead":
        paragraph = document.add_paragraph()
        paragraph.paragraph_format.tab_stops.add_tab_stop(Mm(width_mm), WD_TAB_ALIGNMENT.RIGHT)
        _run(paragraph, block.text, BODY_FONT, BODY_PT)
        _run(paragraph, "\t" + block.right, BODY_FONT, BODY_PT)
        _red_rule(paragraph)
    elif block.kind == "heading":
        paragraph = document.add_heading(level=1)
        _run(paragraph, block.text, HEADING_FONT, 16)
    elif block.kind == "para":
        paragraph = document.add_paragraph()
        paragraph.paragraph_format.first_line_indent = Pt(BODY_PT * 2)
        paragraph.paragraph_format.line_spacing = Pt(28)
        _run(paragraph, block.text)
    elif block.kind == "note":
        paragraph = document.add_paragraph()
        _run(paragraph, block.text, BODY_FONT, TABLE_PT)
    elif block.kind == "map":
        paragraph = document.add_paragraph()
        _run(paragraph, "（本期化解状态变化小区分布示意图见 PDF 版。）", BODY_FONT, TABLE_PT)
    elif block.kind == "table" and block.table is not None:
        _table(document, block.table, width_mm)


def _moment(figures: dict) -> datetime:
    """When the document says it was made: issued, else the draft's day (Beijing midnight)."""
    if figures.get("issued_at"):
        return datetime.fromisoformat(figures["issued_at"]).astimezone(UTC)
    day = datetime.fromisoformat(figures["date"]).date()
    return datetime.combine(day, time(), BEIJING).astimezone(UTC)


def _fixed_times(body: bytes, moment: datetime) -> bytes:
    """The package again with every member dated `moment`: the same bulletin, the same bytes."""
    stamp = moment.astimezone(BEIJING).timetuple()[:6]
    out = BytesIO()
    with zipfile.ZipFile(BytesIO(body)) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            copy = zipfile.ZipInfo(item.filename, date_time=stamp)
            copy.compress_type = zipfile.ZIP_DEFLATED
            copy.external_attr = item.external_attr
            target.writestr(copy, source.read(item.filename))
    return out.getvalue()


def bulletin_docx(figures: dict) -> bytes:
    """The bulletin as .docx bytes."""
    document = Document()
    section = document.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin, section.bottom_margin = Mm(PAGE["top"]), Mm(PAGE["bottom"])
    section.left_margin, section.right_margin = Mm(PAGE["left"]), Mm(PAGE["right"])
    width_mm = 210 - PAGE["left"] - PAGE["right"]
    _style(document, "Normal", BODY_FONT, BODY_PT)
    _style(document, "Title", TITLE_FONT, 22)
    _plain_title(document.styles["Title"])
    _style(document, "Heading 1", HEADING_FONT, 16)
    for block in blocks(figures):
        _block(document, block, width_mm)
    moment = _moment(figures)
    properties = document.core_properties
    properties.title = file_title(figures)
    properties.subject = figures["title"]
    properties.author = properties.last_modified_by = figures["office"]
    properties.category = "督查通报"
    properties.keywords = f"登记难; {figures['period']}"
    properties.comments = "titlemap 登记难化解一张图"
    properties.created = properties.modified = moment.replace(tzinfo=None)
    properties.revision = 1
    buffer = BytesIO()
    document.save(buffer)
    return _fixed_times(buffer.getvalue(), moment)
