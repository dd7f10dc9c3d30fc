"""CSV cells that a spreadsheet will not execute.

Exports carry text customers and staff typed (message excerpts, phrase titles, usernames). A
cell starting with = + - @ (or a tab / carriage return before one) is a formula to Excel and
LibreOffice: `=HYPERLINK(...)` or `=cmd|...` in a customer's message would run on the admin's
machine. OWASP's advice: prefix such cells with a single quote, which the spreadsheet shows as
text and does not display.
"""

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    """One exported cell as safe text (None -> empty, datetimes -> ISO 8601)."""
    if value is None:
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    if text.startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text
