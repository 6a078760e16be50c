"""The alerts page: auditors and approvers read alerts with their evidence, acknowledge and resolve them;
nobody reads or settles an alert about themselves, and the other roles do not see the page."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from sqlalchemy import select

from tests.conftest import login
from tests.departure.conftest import OFFICE
from vault import policy
from vault.alerts import desk
from vault.alerts.raising import Finding, raise_alert
from vault.models import Alert, DocumentVersion, Severity


@pytest.fixture
def alert_ids(rt, company) -> dict[str, int]:
    """One alert about Sam (with a document as evidence) and one about Ann, an approver."""
    doc = company.document(company.customer("Acme"), grade=2, title="Price list")
    company.loan(doc)
    company.view(doc)  # outside working hours (see the evening policy): an alert about Sam
    (about_sam,) = company.alerts()
    with rt.db.session() as session:
        about_ann = raise_alert(rt, session, company.user(session, "ann"),
                                Finding("probing", Severity.HIGH, "2026-01-01T10", "5 refused attempts", {}))
    return {"sam": about_sam.id, "ann": about_ann, "doc": doc}


def test_the_auditor_reads_alerts_with_links_into_the_audit_trail(app, company, alert_ids):
    auditor = app.test_client()
    login(auditor, "aud")
    listing = auditor.get("/alerts/")
    assert listing.status_code == 200
    html = listing.get_data(as_text=True)
    assert f"/alerts/{alert_ids['sam']}" in html and f"/alerts/{alert_ids['ann']}" in html
    detail = auditor.get(f"/alerts/{alert_ids['sam']}").get_data(as_text=True)
    assert "Price list" in detail and "Access outside working hours" in detail
    assert f"/audit/?actor={company.ids['sam']}&amp;document={alert_ids['doc']}" in detail
    assert f"/audit/?user={company.ids['sam']}" in detail
    high = auditor.get("/alerts/?severity=high&status=all").get_data(as_text=True)
    assert f"/alerts/{alert_ids['ann']}" in high and f"/alerts/{alert_ids['sam']}\"" not in high
    assert auditor.get("/alerts/?status=bogus").status_code == 400


def test_an_approver_acknowledges_and_resolves_with_a_note(rt, app, company, alert_ids):
    abe = app.test_client()
    token = login(abe, "abe")
    path = f"/alerts/{alert_ids['sam']}"
    assert abe.post(f"{path}/acknowledge", data={"csrf_token": token}).status_code == 302
    again = abe.post(f"{path}/acknowledge", data={"csrf_token": token})
    assert again.status_code == 403
    short = abe.post(f"{path}/resolve", data={"csrf_token": token, "note": "ok"})
    assert short.status_code == 403 and "at least 10 characters" in short.get_data(as_text=True)
    done = abe.post(f"{path}/resolve", data={"csrf_token": token, "note": "Loan approved for the Monday visit"})
    assert done.status_code == 302
    with rt.db.session() as session:
        alert = session.get(Alert, alert_ids["sam"])
        assert (alert.status, alert.resolved_by_id, alert.resolution_note) == (
            "resolved", company.ids["abe"], "Loan approved for the Monday visit")
    settled = [(e.action, e.outcome, e.reason_code, e.actor_name, e.subject_user_id)
               for e in company.events() if e.action.startswith("alert:") and e.action != "alert:raise"]
    assert settled == [
        ("alert:acknowledge", "allowed", None, "abe", company.ids["sam"]),
        ("alert:manage", "denied", "alert_acknowledged", "abe", company.ids["sam"]),
        ("alert:manage", "denied", "note_required", "abe", company.ids["sam"]),
        # The alert shown again with the note refused names its evidence once more: a read of its own.
        ("alert:read", "allowed", None, "abe", company.ids["sam"]),
        ("alert:resolve", "allowed", None, "abe", company.ids["sam"]),
    ]
    assert abe.post(f"{path}/resolve", data={"csrf_token": token, "note": "Once more with feeling"}).status_code \
        == 403


def test_nobody_sees_or_settles_an_alert_about_themselves(rt, app, company, alert_ids):
    ann = app.test_client()
    token = login(ann, "ann")
    assert f"/alerts/{alert_ids['ann']}" not in ann.get("/alerts/?status=all").get_data(as_text=True)
    assert ann.get(f"/alerts/{alert_ids['ann']}").status_code == 404
    assert ann.post(f"/alerts/{alert_ids['ann']}/resolve",
                    data={"csrf_token": token, "note": "Nothing to see here at all"}).status_code == 404
    with rt.db.session() as session:
        assert session.get(Alert, alert_ids["ann"]).status == "open"
        alert = session.get(Alert, alert_ids["ann"])
        with pytest.raises(policy.Denied) as refused:
            desk.resolve(rt, session, company.user(session, "ann"), alert, note="Nothing to see here", ctx=OFFICE)
        assert refused.value.decision.code == "own_alert"


@pytest.mark.parametrize("who", ["sam", "kim", "adm", "carl"])
def test_the_alerts_page_is_for_auditors_and_approvers_only(app, company, alert_ids, who):
    client = app.test_client()
    token = login(client, who)
    assert client.get("/alerts/").status_code == 403
    assert client.get(f"/alerts/{alert_ids['sam']}").status_code == 403
    assert client.post(f"/alerts/{alert_ids['sam']}/acknowledge", data={"csrf_token": token}).status_code == 403


def test_the_desk_counts_open_alerts_by_severity(rt, company, alert_ids):
    with rt.db.session() as session:
        auditor = company.user(session, "aud")
        assert desk.count_open(session, auditor) == {"high": 1, "medium": 1}
        assert desk.count_open(session, company.user(session, "ann")) == {"medium": 1}
        assert len(desk.list_alerts(session, auditor, status="all").alerts) == 2
        assert session.scalars(select(Alert)).all()


def test_an_alert_about_a_crafted_file_names_the_version_it_came_in(rt, app, company, alert_ids):
    """The version is what an investigator looks up (its name, type and SHA-256), not just its document."""
    with rt.db.session() as session:
        version = session.scalars(select(DocumentVersion).where(
            DocumentVersion.document_id == alert_ids["doc"])).one()
        alert_id = raise_alert(rt, session, company.user(session, "carl"), Finding(
            "crafted_file", Severity.HIGH, "2026-01-01T10", "a drawing misbehaved",
            {"documents": [alert_ids["doc"]], "customers": [version.document.customer_id], "versions": [version.id]}))
        sha256, name = version.sha256, version.original_name
    auditor = app.test_client()
    login(auditor, "aud")
    detail = auditor.get(f"/alerts/{alert_id}").get_data(as_text=True)
    row = detail[detail.index("<h3>Versions</h3>"):detail.index("</table>", detail.index("<h3>Versions</h3>"))]
    assert "Price list" in row and name in row and sha256 in row and "application/pdf" in row


class _Labels(HTMLParser):
    """The labels of a page: for which control, their classes and their text."""

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, tuple[str, str]] = {}
        self._open: tuple[str, str] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "label":
            named = dict(attrs)
            self._open, self._text = (named.get("for") or "", named.get("class") or ""), []

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "label" and self._open is not None:
            target, classes = self._open
            self.found[target] = (classes, "".join(self._text).strip())
            self._open = None


def test_the_desks_filters_are_labelled_on_the_page_not_for_screen_readers_only(app, company, alert_ids):
    """The three filters had labels only a screen reader announced: a sighted reader saw "open", "any
    severity", "any rule" with nothing saying which choice each box is. Their labels are shown now."""
    auditor = app.test_client()
    login(auditor, "aud")
    html = auditor.get("/alerts/").get_data(as_text=True)
    labels = _Labels()
    labels.feed(html)
    for control, text in (("status", "State"), ("severity", "Severity"), ("rule", "Rule")):
        assert f'<select id="{control}" name="{control}">' in html
        classes, shown = labels.found[control]
        assert shown == text and "visually-hidden" not in classes.split(), (control, classes)
