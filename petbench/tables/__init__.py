"""The table model (:mod:`.model`) every results table is built as, and its renderers (:mod:`.render`)."""
from .model import Cell, Column, Mark, Note, TableModel, TableRow
from .render import FORMATS, render

__all__ = ["Cell", "Column", "FORMATS", "Mark", "Note", "TableModel", "TableRow", "render"]
