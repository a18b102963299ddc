"""Template filters for sizes the tracker reports in megabytes."""

from __future__ import annotations

from django import template
from django.template.defaultfilters import filesizeformat

register = template.Library()


@register.filter
def megabytes(value: int | None) -> str:
    """A size in MB (MiB, as MogileFS counts them) in human units: "750.0 MB", "1.5 GB"."""
    if value is None:
        return "unknown"
    return filesizeformat(value * 1024 * 1024)
