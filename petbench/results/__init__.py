"""Run records on disk, and the leaderboards read from them."""
from .record import RunRecord, find_records

__all__ = ["RunRecord", "find_records"]
