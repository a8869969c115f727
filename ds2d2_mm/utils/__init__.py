"""Small helpers shared by the plugin's modules."""

from .recorder import CallRecord, record_call

__all__ = ["CallRecord", "record_call"]
