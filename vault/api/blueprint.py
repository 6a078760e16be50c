"""The API's blueprint object, apart from the package so resource modules can import it without cycles."""

from __future__ import annotations

from flask import Blueprint

# Every route under /api/v1 authenticates with a bearer token only (see vault.web.auth), which is why
# the blueprint can be exempt from CSRF tokens: a request without the token is refused, cookies or not.
bp = Blueprint("api", __name__, url_prefix="/api/v1")

# Database ids are 32-bit integers on every backend; a larger number in a URL is "no such item",
# not an overflow error from the database.
ID = "int"  # bounded to a 32-bit id column by `vault.web.converters`
