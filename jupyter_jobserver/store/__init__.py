"""Stores: where job records and data documents live."""

from ..serialize import RawJSON
from .base import JOB_FIELDS, ResultFile, Store
from .runner import StoreRunner
from .sqlite import SQLiteStore

__all__ = ["JOB_FIELDS", "RawJSON", "ResultFile", "SQLiteStore", "Store", "StoreRunner"]
