"""One line of the checklist: what was checked, its status, and what to do when it is not OK."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    OK = "OK"
    FIX = "FIX"
    """Something to do before the first push: `Item.fix` says what."""
    CANNOT_CHECK = "CANNOT CHECK"
    """Not known (no credentials, another account, no permission, no network): `Item.fix` says how to know."""


@dataclass(frozen=True, kw_only=True)
class Item:
    group: str
    """The part of the checklist, e.g. `Config`, `Bootstrap`, `Quotas`."""
    title: str
    status: Status
    detail: str = ""
    fix: str = ""
    """A command or a sentence; empty when the item is OK."""


def ok(group: str, title: str, detail: str = "") -> Item:
    return Item(group=group, title=title, status=Status.OK, detail=detail)


def fix(group: str, title: str, detail: str, what: str) -> Item:
    return Item(group=group, title=title, status=Status.FIX, detail=detail, fix=what)


def cannot_check(group: str, title: str, detail: str, what: str = "") -> Item:
    return Item(group=group, title=title, status=Status.CANNOT_CHECK, detail=detail, fix=what)
