"""What a one-request view costs the database before its first byte: counted, statement by statement.

A listener on the engine records every statement and commit; the count is taken when the application
has returned its response (the stream not yet read), which is the moment the first byte could leave.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import event

from tests.api.conftest import PDF
from vault.web.pipeline import MAINTENANCE_KEY

BODY = {"reason": "Preparing the visit", "place": "Office"}
# PostgreSQL spends the unit, inserts the view and claims its audit record's chain head in one statement,
# then inserts the record and moves the head in another, each joined by data-modifying CTEs; SQLite has no
# such CTE, so it takes one statement more for each step.
LIMITS = {"postgresql": 4, "sqlite": 7}



@pytest.fixture
def settings_overrides():
    return {"policy": {"grades": {"1": {"download_original": True}}}}


class Recorder:
    def __init__(self, engine: Any) -> None:
        self.statements: list[str] = []
        self.commits = 0
        self.commit_marks: list[int] = []  # how many statements had run at each commit
        self.engine = engine
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith("BEGIN"):  # SQLite's explicit BEGIN IMMEDIATE
            self.statements.append(statement)

    def _commit(self, _conn: Any) -> None:
        self.commits += 1
        self.commit_marks.append(len(self.statements))

    def remove(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "commit", self._commit)


def test_a_view_costs_at_most_four_statements_and_one_commit_before_its_first_byte(api, app, rt, db_backend):
    customer_id = api.customer()
    document_id = api.upload(customer_id, grade=1)
    path = f"/api/v1/documents/{document_id}/content"
    assert api.post(path, "bob", json=BODY).get_data() == PDF  # warm: the counter row, the token's use mark
    app.extensions[MAINTENANCE_KEY] = float("inf")  # the once-a-minute sweep is not part of a view
    recorder = Recorder(rt.db.engine)
    try:
        response = api.post(path, "bob", json=BODY)
        before = list(recorder.statements), recorder.commits
        assert response.get_data() == PDF
    finally:
        recorder.remove()
    statements, commits = before
    assert commits == 1, statements
    assert len(statements) <= LIMITS[db_backend], "\n".join(statements)
    # After the last byte: the closing record and the early-warning rules, together in one short unit,
    # the end's audit append last (it holds the chain head's lock until the commit).
    assert recorder.commits == 2
    after = recorder.statements[len(statements):]
    head = [n for n, statement in enumerate(after) if "audit_head" in statement]
    rules = [n for n, statement in enumerate(after) if "alerts_at" in statement]
    assert head and rules and max(rules) < min(head), "\n".join(after)
    # The rules take the view as its opening wrote it: it is not read back.
    assert not any(statement.lstrip().upper().startswith("SELECT DOCUMENT_VIEWS.") for statement in after), after
    if db_backend == "postgresql":
        # The end's record claims its chain head in the end's own statement.
        (end,) = (statement for statement in after if "document_views SET status" in statement)
        assert "claimed_head" in end and not any(s.lstrip().startswith("UPDATE audit_head") for s in after), after
        # The claim on the rules' evaluation, the view's tally and the facts they count are one round trip
        # (`view_facts`), which reads the tallies, not the day's views.
        (claim,) = rules
        assert "INSERT INTO view_tallies" in after[claim] and "FROM view_tallies" in after[claim], after[claim]
        assert sum("view_tallies" in s for s in after) == 1 and "opened_at >=" not in after[claim], after


def test_a_view_in_two_steps_reads_what_it_needs_once(api, app, rt, db_backend):
    """The browsers' (and `/views`) opening reads the document, its latest version and the reader's loans
    in the same single statement as the one-request view, then spends, inserts and appends: a download
    opened in two steps costs as many statements before its commit as a one-request view."""
    customer_id = api.customer()
    document_id = api.upload(customer_id, grade=1)
    path = f"/api/v1/documents/{document_id}/views"
    body = {**BODY, "download": True}
    assert api.post(path, "bob", json=body).status_code == 201  # warm: the counter row, the token's use mark
    app.extensions[MAINTENANCE_KEY] = float("inf")
    recorder = Recorder(rt.db.engine)
    try:
        assert api.post(path, "bob", json=body).status_code == 201
    finally:
        recorder.remove()
    # The first commit is the opening's; the early-warning rules follow in a unit of their own.
    opening = recorder.statements[:recorder.commit_marks[0]]
    assert len(opening) <= LIMITS[db_backend], "\n".join(opening)
    separate = ("SELECT DOCUMENTS.", "SELECT LOANS.", "SELECT DOCUMENT_VERSIONS.")
    assert not any(statement.lstrip().upper().startswith(separate) for statement in opening), "\n".join(opening)
    # Its content URL: the view with its document's grade and customer and its version, then the claim;
    # nothing is read a second time (the grade decides original or stamped copy).
    content = urlsplit(opened_json(api, path, body)).path
    recorder = Recorder(rt.db.engine)
    try:
        response = api.get(content, "bob")
        claimed = list(recorder.statements)
        assert response.status_code == 200 and response.get_data() == PDF
    finally:
        recorder.remove()
    reads = [statement for statement in claimed if statement.lstrip().upper().startswith("SELECT")]
    assert len(reads) == 2, "\n".join(claimed)  # the bearer token's, the view's


def test_an_api_reading_view_opens_its_window_without_reading_the_view_back(api, app, rt, db_backend):
    """Asked for pages, `/views` opens the view's window at once: one UPDATE more than a download's
    opening, and the view it just wrote is not read back."""
    customer_id = api.customer()
    document_id = api.upload(customer_id, grade=1)
    path = f"/api/v1/documents/{document_id}/views"
    assert api.post(path, "bob", json=BODY).status_code == 201  # warm
    app.extensions[MAINTENANCE_KEY] = float("inf")
    recorder = Recorder(rt.db.engine)
    try:
        opened = api.post(path, "bob", json=BODY)
    finally:
        recorder.remove()
    assert opened.status_code == 201 and opened.get_json()["pages"] >= 1
    opening = recorder.statements[:recorder.commit_marks[0]]
    assert len(opening) <= LIMITS[db_backend] + 1, "\n".join(opening)
    assert not any(statement.lstrip().upper().startswith("SELECT DOCUMENT_VIEWS.") for statement in opening)


def opened_json(api: Any, path: str, body: dict[str, Any]) -> str:
    answer = api.post(path, "bob", json=body)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return str(answer.get_json()["content_url"])


def test_a_stamped_viewer_page_costs_one_statement_beyond_authentication(api, app, rt):
    customer_id = api.customer()
    document_id = api.upload(customer_id, grade=1)
    opened = api.open_view(document_id).get_json()
    page = opened["page_url"].replace("{n}", "1")
    assert api.get(page, "bob").status_code == 200  # warm: the token's use mark
    app.extensions[MAINTENANCE_KEY] = float("inf")
    recorder = Recorder(rt.db.engine)
    try:
        response = api.get(page, "bob")
        assert response.status_code == 200 and response.mimetype == "image/jpeg"
    finally:
        recorder.remove()
    # The bearer token (one statement) and the view's grant behind the signed page token (one more);
    # no audit append per page (the view's closing record is the flow's one append), no commit.
    assert len(recorder.statements) <= 2, "\n".join(recorder.statements)
    assert len([s for s in recorder.statements if "document_views" in s]) == 1, recorder.statements
    assert not any(s.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")) for s in recorder.statements)
    assert not any("audit" in statement for statement in recorder.statements)
    assert recorder.commits <= 1
