"""Sorting, paging and CSV export of tables from request parameters, with messages, never errors."""

from __future__ import annotations

import csv
import re
from typing import Any

import django_tables2 as tables
from django.core.paginator import EmptyPage, PageNotAnInteger
from django.http import HttpRequest, HttpResponse

__all__ = ["configure_table", "csv_response"]

PER_PAGE = 50
MAX_PER_PAGE = 500
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_SORT_KEY = re.compile(r"-?[A-Za-z][A-Za-z0-9_]{0,63}")


def configure_table(
    request: HttpRequest, table: tables.Table, *, per_page: int = PER_PAGE
) -> list[str]:
    """Apply ?sort=, ?page= and ?per_page= to ``table``; return messages about ignored values."""
    table.request = request
    messages = _apply_sort(request, table)
    size, size_message = _int_param(request, "per_page", per_page)
    if size_message:
        messages.append(size_message)
    size = min(max(size, 1), MAX_PER_PAGE)
    page, page_message = _int_param(request, "page", 1)
    if page_message:
        messages.append(page_message)
    try:
        table.paginate(page=max(page, 1), per_page=size)
    except (EmptyPage, PageNotAnInteger):
        table.page = table.paginator.page(table.paginator.num_pages)
        messages.append(f"Page {page} does not exist; showing page {table.page.number}, the last.")
    return messages


def _apply_sort(request: HttpRequest, table: tables.Table) -> list[str]:
    """Sort by the requested columns; report the unknown ones."""
    requested = [key for value in request.GET.getlist("sort") for key in value.split(",") if key]
    if not requested:
        return []
    # Only plain column names reach django-tables2 (it reads "." as an accessor path).
    table.order_by = [key for key in requested if _SORT_KEY.fullmatch(key)]
    if not table.order_by:
        table.order_by = table._meta.order_by
    kept = {str(key) for key in table.order_by}
    unknown = [key for key in requested if key not in kept]
    if not unknown:
        return []
    shown = ", ".join(repr(key[:40]) for key in unknown[:5])
    return [f"Ignored unknown sort column {shown}."]


def _int_param(request: HttpRequest, name: str, default: int) -> tuple[int, str]:
    """Return an integer query parameter, or the default and a message when it is not one."""
    raw = request.GET.get(name)
    if raw in (None, ""):
        return default, ""
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return default, f"Ignored {name} {raw[:40]!r}: not a number."
    if abs(value) > 10**12:
        return 10**12, ""
    return value, ""


def csv_response(table: tables.Table, filename: str) -> HttpResponse:
    """Return every row of ``table`` (not only the current page) as CSV."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    for row in table.as_values():
        writer.writerow([_safe_cell(value) for value in row])
    return response


def _safe_cell(value: Any) -> Any:
    """Defuse spreadsheet formulas in text cells (names and messages are captured text)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
