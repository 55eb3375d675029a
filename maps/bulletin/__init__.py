"""The supervision bulletin (督查通报) on paper: Word (`bulletin_docx`) and PDF (`bulletin_pdf`,
with a small map of the compounds that changed), both from the figures of
geo.ledger.bulletin and the blocks of maps.bulletin.content.
"""

from maps.bulletin.content import file_title
from maps.bulletin.docx import bulletin_docx
from maps.bulletin.pdf import bulletin_pdf

__all__ = ["bulletin_docx", "bulletin_pdf", "file_title"]
