"""Stores: where job records and data documents live."""

from .base import JOB_FIELDS, RawJSON, Store
from .runner import StoreRunner
from .sqlite import SQLiteStore

__all__ = ["JOB_FIELDS", "RawJSON", "SQLiteStore", "Store", "StoreRunner"]
