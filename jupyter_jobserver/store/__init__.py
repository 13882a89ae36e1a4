"""Stores: where job records and data documents live."""

from ..serialize import RawJSON
from .base import Store
from .runner import StoreRunner
from .sqlite import SQLiteStore

__all__ = ["RawJSON", "SQLiteStore", "Store", "StoreRunner"]
