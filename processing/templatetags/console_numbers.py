"""Numbers as the console shows them: whole numbers with thousands separators (``12,345``).

Not Django's ``USE_THOUSAND_SEPARATOR``: that would also format ids, years and
form values, and it follows the locale; counts of rows are the only numbers
that need it, and the commands write them the same way (``f"{n:,}"``).
"""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def thousands(value: object) -> object:
    """``12345`` → ``12,345``; anything that is not a whole number is left as it is."""
    if isinstance(value, bool) or not isinstance(value, int):
        return value
    return f"{value:,}"
