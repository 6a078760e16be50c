"""The auditor's desk in people's terms: names instead of ids, actions by subject, a person's days,
charts that count only views someone saw, and downloads named for what they hold that still verify."""

from __future__ import annotations

import csv
import io
import json
import re
import secrets
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.audit.conftest import CTX, attack, drop_append_only
from tests.conftest import login
from tests.support.factories import make_document
from vault.audit import charts
from vault.audit.filters import AuditFilter
from vault.audit.offline import verify_export
from vault.models import Customer, Document, DocumentView, Role, User, ViewStatus, utcnow


@pytest.fixture
def auditor(client, users):
    users.make("audrey", Role.AUDITOR)
    return login(client, "audrey")


def _seqs(html: str) -> list[int]:
    return sorted(int(s) for s in re.findall(r'<td class="num">(\d+)</td>', html))


def _rename(rt, username: str, display_name: str) -> int:
    with rt.db.session() as session:
        user = session.scalar(select(User).where(User.username == username))
        user.display_name = display_name
        return user.id


def _record(rt, action: str, actor: User | None = None, **fields) -> int:
    with rt.db.session() as session:
        who = session.get(User, actor.id) if actor else None
        return rt.audit.record(session, action=action, actor=who, ctx=CTX, **fields).seq


def _view(rt, user: User, document_id: int, status: ViewStatus) -> int:
    """A view as the viewer leaves it (delivered, or refunded because it never delivered), and the
    "view opened" record naming it."""
    with rt.db.session() as session:
        document = session.get(Document, document_id)
        view = DocumentView(document_id=document_id, version_id=document.latest.id, user_id=user.id,
                            reason="Visit preparation", token_hash=secrets.token_hex(32), status=status,
                            expires_at=utcnow() + timedelta(minutes=5))
        session.add(view)
        session.flush()
        view_id, customer_id = view.id, document.customer_id
    return _record(rt, "document:view", user, customer_id=customer_id, document_id=document_id,
                   detail={"view_id": view_id, "remaining": 1})


def test_filters_by_display_name_customer_name_and_document_title(rt, client, auditor, users):
    eva = users.make("eva", Role.BORROWER)
    sam = users.make("sam", Role.BORROWER)
    _rename(rt, "eva", "Eva Kowalski")
    first = make_document(rt, compiler_id=sam.id, grade=1, title="Price list")
    other = make_document(rt, compiler_id=sam.id, grade=1, title="Price list")
    with rt.db.session() as session:
        customer = session.get(Customer, session.get(Document, first).customer_id)
        customer.name = "Ibérica Válvulas"
        customer_id = customer.id
    mine = [_record(rt, "loan:request", eva, customer_id=customer_id, document_id=first) for _ in range(2)]
    theirs = _record(rt, "loan:request", sam, document_id=other)

    def shown(**args):
        response = client.get("/audit/", query_string=args)
        assert response.status_code == 200, response.get_data(as_text=True)[:400]
        return _seqs(response.get_data(as_text=True))

    assert shown(user="eva kowalski", action="loan:request") == mine
    assert shown(user="eva", action="loan:request") == mine
    timeline = client.get("/audit/", query_string={"user": "Eva Kowalski"}).get_data(as_text=True)
    assert f'href="/audit/trail/user/{eva.id}">Their day-by-day timeline</a>' in timeline
    assert shown(customer="iberica valvulas", action="loan:*") == mine  # accents and case ignored
    assert shown(customer="Ibérica Válvulas", document="price list", action="loan:request") == mine
    assert theirs in shown(document=str(other))

    # A title several customers use is refused with the candidates, unless the customer narrows it.
    ambiguous = client.get("/audit/", query_string={"document": "Price list"})
    assert ambiguous.status_code == 400
    text = ambiguous.get_data(as_text=True)
    assert "names several documents" in text and f"#{first}" in text and f"#{other}" in text
    # So is a display name two people share, and a name nobody has.
    _rename(rt, "sam", "Eva Kowalski")
    twice = client.get("/audit/", query_string={"user": "Eva Kowalski"})
    assert twice.status_code == 400 and "names several users" in twice.get_data(as_text=True)
    for field, value, message in (("user", "Nobody Here", "there is no user"),
                                  ("customer", "Atlantis Ltd", "there is no customer"),
                                  ("document", "Secret plans", "there is no document")):
        response = client.get("/audit/", query_string={field: value})
        assert response.status_code == 400 and message in response.get_data(as_text=True), field


def test_the_form_suggests_names_groups_actions_and_folds_details(rt, client, auditor, users):
    eva = users.make("eva", Role.BORROWER)
    _rename(rt, "eva", "Eva Kowalski")
    _record(rt, "loan:request", eva, detail={"reason": "visit", "days": 5})
    html = client.get("/audit/").get_data(as_text=True)
    assert '<datalist id="known-people"><option value="Audrey">audrey</option>' in html
    assert '<option value="Eva Kowalski">eva</option>' in html
    assert re.search(r'<optgroup label="loan">\s*<option value="loan:\*"\s*>all loan events</option>', html)
    assert re.search(r'<option value="loan:approve"\s*>loan:approve</option>', html)
    assert '<optgroup label="public">' not in html
    # The detail is folded away, laid out for reading; the actor is shown by name, login beside.
    assert "<details class=\"json\"><summary>Details</summary><pre>{\n  &#34;days&#34;: 5," in html
    assert "Eva Kowalski</a><br><span class=\"muted\">eva</span>" in html
    # An action no group holds (typed into the address) stays chosen rather than silently dropped.
    kept = client.get("/audit/", query_string={"action": "legacy:thing"}).get_data(as_text=True)
    assert '<option value="legacy:thing" selected>legacy:thing</option>' in kept


def test_refunded_views_are_not_counted(rt, client, auditor, users):
    eva = users.make("eva", Role.BORROWER)
    document_id = make_document(rt, compiler_id=eva.id, grade=1)
    for _ in range(3):
        _view(rt, eva, document_id, ViewStatus.DELIVERED)
    for _ in range(2):
        _view(rt, eva, document_id, ViewStatus.REFUNDED)
    _record(rt, "document:view", eva, document_id=document_id, outcome="denied", reason_code="quota_exhausted")
    _record(rt, "alert:raise", None, subject_user_id=eva.id, detail={"rule": "burst"})
    with rt.db.session() as session:
        assert charts.views_per_day(session, AuditFilter()).total == 3
        assert [(bar.label, bar.value) for bar in charts.views_per_user(session, AuditFilter()).bars] == [("eva", 3)]
        strip = charts.person_strip(session, eva.id, AuditFilter())
        assert {row.key: row.total for row in strip.rows} == {"views": 3, "refusals": 1, "alerts": 1}
        assert {row.key: row.counts[-1] for row in strip.rows} == {"views": 3, "refusals": 1, "alerts": 1}
        assert len(strip.days) == charts.DEFAULT_DAYS
    html = client.get(f"/audit/trail/user/{eva.id}").get_data(as_text=True)
    assert "Views 3 · Refusals 1 · Alerts 1" in html
    assert "Views per day <span class=\"muted\">· total 3</span>" in html
    assert re.search(r">day \(UTC\)</text>", html)  # the axes are labelled
    # A record damaged in the database is verification's business: the charts still draw.
    damaged = _view(rt, eva, document_id, ViewStatus.DELIVERED)
    drop_append_only(rt)
    attack(rt, "UPDATE audit_events SET detail = 'garbled {\"view_id\":' WHERE seq = :seq", seq=damaged)
    response = client.get(f"/audit/trail/user/{eva.id}")
    assert response.status_code == 200 and "Views 4 · Refusals 1 · Alerts 1" in response.get_data(as_text=True)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_downloads_carry_names_say_what_and_when_and_verify(rt, client, auditor, users, tmp_path, fmt):
    eva = users.make("eva", Role.BORROWER)
    _rename(rt, "eva", "=Éva Kowalski")  # a name a spreadsheet would run: escaped like every text cell
    document_id = make_document(rt, compiler_id=eva.id, grade=1, title="Price list")
    with rt.db.session() as session:
        customer_id = session.get(Document, document_id).customer_id
        session.get(Customer, customer_id).name = "Dupont Industries"
    seqs = [_record(rt, "loan:request", eva, customer_id=customer_id, document_id=document_id) for _ in range(2)]
    response = client.post("/audit/export", data={"csrf_token": auditor, "format": fmt, "user": "=Éva Kowalski",
                                                  "customer": "Dupont Industries", "since": "2000-01-01"})
    assert response.status_code == 200, re.findall(r"class=\"errors\"[^<]*", response.get_data(as_text=True))
    name = re.search(r'filename="([^"]+)"', response.headers["Content-Disposition"]).group(1)
    expected = r"audit_eva-kowalski_dupont-industries_2000-01-01_to_now_exported-\d{8}T\d{4}Z_n\d+\."
    assert re.fullmatch(expected + fmt, name), name
    data = response.get_data()
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(data.decode())))
        assert [int(r["seq"]) for r in rows] == seqs
        assert {(r["actor_display_name"], r["customer_name"], r["document_title"]) for r in rows} == {
            ("'=Éva Kowalski", "Dupont Industries", "Price list")}
    else:
        rows = [json.loads(line) for line in data.decode().splitlines()]
        assert [r["seq"] for r in rows] == seqs
        assert {json.dumps(r["names"], sort_keys=True) for r in rows} == {json.dumps(
            {"actor": "=Éva Kowalski", "customer": "Dupont Industries", "document": "Price list",
             "subject_user": None}, sort_keys=True)}
    manifest = client.get(response.headers["X-Vault-Export-Manifest"]).get_json(force=True)
    assert manifest["file"] == name and manifest["rows"] == 2
    # What an outside auditor does with the file and its manifest: every check passes, names and all.
    path = tmp_path / name
    path.write_bytes(data)
    check = verify_export(path, manifest, audit_key=rt.audit.key,
                          public_key=rt.keyring.checkpoint_private_key.public_key())
    assert check.ok, check.problems
    # A name changed in the file is caught, though names are outside the MACs: the manifest covers them.
    path.write_bytes(data.replace(b"Dupont Industries", b"Durand Industries"))
    tampered = verify_export(path, manifest, audit_key=rt.audit.key)
    assert not tampered.ok and any("SHA-256" in problem for problem in tampered.problems)


def test_a_name_meaning_nobody_or_several_is_told_in_the_readers_language(rt, client, auditor, users):
    """The desk's answer to a name it cannot place is in the auditor's language, as every other refusal."""
    users.make("eva", Role.BORROWER)
    users.make("sam", Role.BORROWER)
    _rename(rt, "eva", "Eva Kowalski")
    _rename(rt, "sam", "Eva Kowalski")
    for language, nobody, several in (("ru", "клиента &#39;Atlantis Ltd&#39; нет", "называет нескольких пользователей"),
                                      ("zh-CN", "没有客户", "指多个用户")):
        headers = {"Accept-Language": language}
        missing = client.get("/audit/", query_string={"customer": "Atlantis Ltd"}, headers=headers)
        assert missing.status_code == 400 and nobody in missing.get_data(as_text=True), language
        shared = client.get("/audit/", query_string={"user": "Eva Kowalski"}, headers=headers)
        assert shared.status_code == 400 and several in shared.get_data(as_text=True), language
    not_a_date = client.get("/audit/", query_string={"since": "yesterday"}, headers={"Accept-Language": "ru"})
    assert not_a_date.status_code == 400 and "не дата" in not_a_date.get_data(as_text=True)
