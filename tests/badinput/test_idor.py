"""Other people's ids: every route that takes an id, tried by someone who must not see that object.

The routes are found by walking the URL map (every rule with a converter, pages and API), and the
test fails when a new one has no attempt below, so a route cannot be added without being tried. Each
attempt must be answered 403 or 404, never with the object's data (its distinctive words are looked
for in the body), and must change nothing (the whole state is compared before and after).

Where a role alone keeps the person out the attacker is someone without it; where the role is right
but the object is not theirs (another borrower's loan, another compiler's file, an alert about
oneself, one's own departure report, a handover item owed by someone else, a content URL opened by
someone else) that subtler person is the attacker.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from tests.badinput.scene import TEXTS, Scene, changed, person_word, snapshot
from tests.conftest import login
from vault.audit.export import load_manifest
from vault.models import ApiToken
from vault.services import accounts


@dataclass(frozen=True)
class Attempt:
    who: str
    values: dict[str, Any]
    forbidden: tuple[str, ...]
    form: dict[str, Any] = field(default_factory=dict)  # page POSTs: the fields a real form would send
    json: dict[str, Any] | None = None  # API POSTs with a JSON body
    upload: bool = False  # a multipart body with a file (uploads and versions)
    code: str | None = None  # the refusal's reason code, where it is the object rule's


LOAN_WORDS = ("Wombat", "Tapir")  # bob's reason, ann's comment
CONTENT = ("Manatee",)
CUSTOMER = ("Quokka",)
DOCUMENT = ("Narwhal", "Quokka")
ROTATED = ("Puffin",)
REASON = "Because the customer asked for it"
UPLOAD_FIELDS = {"title": "Injected", "grade": "1"}


def _token_id(scene: Scene, name: str) -> int:
    """The id of `name`'s API token (made for the scene if need be)."""
    secret = scene.token(name)
    with scene.rt.db.session() as session:
        return session.scalar(select(ApiToken.id).where(ApiToken.token_hash == accounts.hash_token(secret)))


def attempts(scene: Scene, manifest_seq: int, manifest_word: str) -> dict[tuple[str, str], list[Attempt]]:
    s = scene
    ann = s.ids["ann"]
    ann_words = (TEXTS.open_alert_summary.split()[2], "Jackal")
    loan = {"loan_id": s.loan_active}
    rotation = {"proposal_id": s.rotation_open}
    requested = {"loan_id": s.loan_requested}
    doc = {"document_id": s.doc2}
    return {
        # account administration: only administrators, whoever the person is
        ("admin.user", "GET"): [Attempt("kim", {"user_id": ann}, (person_word("ann"),))],
        ("admin.disable", "POST"): [Attempt("kim", {"user_id": ann}, ())],
        ("admin.enable", "POST"): [Attempt("kim", {"user_id": ann}, ())],
        ("admin.role_add", "POST"): [Attempt("kim", {"user_id": ann}, (), form={"role": "custodian"})],
        ("admin.role_remove", "POST"): [Attempt("kim", {"user_id": ann}, (), form={"role": "approver"})],
        ("admin.second_factor_reset", "POST"): [Attempt("kim", {"user_id": ann}, ())],
        ("admin.manager", "POST"): [Attempt("kim", {"user_id": ann}, (), form={"manager": str(s.ids["kim"])})],
        ("admin.password_link", "POST"): [Attempt("kim", {"user_id": ann}, ())],
        ("admin.role_decide", "POST"): [Attempt("kim", {"request_id": 1, "verdict": "approve"}, ())],
        ("admin.manager_decide", "POST"): [Attempt("kim", {"request_id": 1, "verdict": "approve"}, ())],
        # one's own things: another person's token is "not found"; a made-up password link too
        ("account.token_revoke", "POST"): [Attempt("eve", {"token_id": _token_id(s, "bob")}, ())],
        ("auth.set_password", "GET"): [Attempt("eve", {"secret": "not-a-real-link"}, ())],
        ("auth.set_password", "POST"): [Attempt("eve", {"secret": "not-a-real-link"}, (),
                                                form={"new": "a much longer secret 42",
                                                      "confirm": "a much longer secret 42"})],
        # a letter's link: a made-up one is "not found"; only the new owner, their managers and an administrator
        # revoke a real one (eve works customers, but not this one: to her its letter is "not found")
        ("letters.confirm", "GET"): [Attempt("eve", {"link": "not-a-real-link"}, ())],
        ("letters.confirm", "POST"): [Attempt("eve", {"link": "a" * 32 + "." + "b" * 43}, (),
                                              form={"contacted": "1"})],
        ("letters.revoke", "POST"): [Attempt("eve", {"letter_id": s.letter}, CUSTOMER, code="not_found")],
        # alerts: an approver never sees or settles an alert about themselves
        ("alerts.show", "GET"): [Attempt("ann", {"alert_id": s.alert_ann_open}, ann_words),
                                 Attempt("ann", {"alert_id": s.alert_ann}, ("Bison", "Jackal")),
                                 Attempt("bob", {"alert_id": s.alert_notice}, (person_word("sam"),))],
        ("alerts.acknowledge", "POST"): [Attempt("ann", {"alert_id": s.alert_ann_open}, ann_words)],
        ("alerts.resolve", "POST"): [Attempt("ann", {"alert_id": s.alert_ann_open}, ann_words,
                                             form={"note": "Nothing to see here, all fine"})],
        ("alerts.lift", "POST"): [Attempt("ann", {"alert_id": s.alert_ann_open}, ann_words)],
        ("api.show_alert", "GET"): [Attempt("ann", {"alert_id": s.alert_ann_open}, ann_words)],
        ("api.acknowledge_alert", "POST"): [Attempt("ann", {"alert_id": s.alert_ann_open}, ann_words, json={})],
        ("api.resolve_alert", "POST"): [Attempt("ann", {"alert_id": s.alert_ann_open}, ann_words,
                                                json={"note": "Nothing to see here, all fine"})],
        ("api.lift_suspension", "POST"): [Attempt("ann", {"alert_id": s.alert_ann_open}, ann_words, json={})],
        # who works a customer: only the owner's managers and approvers, never the person gaining it
        ("customers.change_owner", "POST"): [Attempt("eve", {"customer_id": s.customer}, CUSTOMER,
                                                     form={"owner-owner": str(s.ids["eve"])})],
        ("customers.add_co_owner", "POST"): [Attempt("eve", {"customer_id": s.customer}, CUSTOMER,
                                                     form={"co-person": str(s.ids["eve"])})],
        ("customers.remove_co_owner", "POST"): [Attempt("eve", {"customer_id": s.customer}, CUSTOMER,
                                                        form={"rm-person": str(s.ids["bob"])})],
        ("api.change_owner", "POST"): [Attempt("eve", {"customer_id": s.customer}, CUSTOMER, json={"owner": "eve"})],
        ("api.add_co_owner", "POST"): [Attempt("eve", {"customer_id": s.customer}, CUSTOMER, json={"user": "eve"})],
        # the pool: a customer with an owner is not in it, and one the caller does not see is "not found"
        ("api.claim", "POST"): [Attempt("eve", {"customer_id": s.customer}, CUSTOMER, json={})],
        ("api.assign", "POST"): [Attempt("eve", {"customer_id": s.customer}, CUSTOMER, json={"owner": "eve"}),
                                 Attempt("ann", {"customer_id": s.customer}, CUSTOMER, json={"owner": "eve"})],
        ("api.release", "POST"): [Attempt("eve", {"customer_id": s.customer}, CUSTOMER, json={"reason": REASON})],
        ("pool.claim", "POST"): [Attempt("eve", {"customer_id": s.customer}, CUSTOMER)],
        ("pool.assign", "POST"): [Attempt("eve", {"customer_id": s.customer}, CUSTOMER,
                                          form={"as-owner": str(s.ids["eve"])})],
        ("pool.release", "POST"): [Attempt("eve", {"customer_id": s.customer}, CUSTOMER, form={"rel-reason": REASON})],
        ("api.remove_co_owner", "POST"): [Attempt("eve", {"customer_id": s.customer}, CUSTOMER,
                                                  json={"user": "bob"})],
        # the customer record: cam does not see the customer at all; carl (who entered it) sees it but
        # neither owns it nor manages its owner, so may not edit it or read its history
        ("records.reveal", "POST"): [Attempt("cam", {"customer_id": s.customer}, CUSTOMER, code="not_found",
                                             form={"rv-reason": REASON, "rv-place": "Office"})],
        ("records.edit", "POST"): [Attempt("cam", {"customer_id": s.customer}, CUSTOMER, form={"rec-city": "X"}),
                                   Attempt("carl", {"customer_id": s.customer}, CUSTOMER, code="not_owner",
                                           form={"rec-city": "X"})],
        ("records.add_log", "POST"): [Attempt("cam", {"customer_id": s.customer}, CUSTOMER,
                                              form={"log-contact": "X", "log-topic": "Y", "log-channel": "call"})],
        ("records.history", "GET"): [Attempt("cam", {"customer_id": s.customer}, CUSTOMER),
                                     Attempt("carl", {"customer_id": s.customer}, CUSTOMER, code="not_in_chain")],
        ("records.version", "GET"): [Attempt("carl", {"customer_id": s.customer, "number": 1}, CUSTOMER,
                                             code="not_in_chain")],
        ("api.reveal", "POST"): [Attempt("cam", {"customer_id": s.customer}, CUSTOMER,
                                         json={"reason": REASON, "place": "Office"})],
        ("api.edit", "PATCH"): [Attempt("cam", {"customer_id": s.customer}, CUSTOMER, json={"city": "X"}),
                                Attempt("carl", {"customer_id": s.customer}, CUSTOMER, json={"city": "X"})],
        ("api.add_log", "POST"): [Attempt("cam", {"customer_id": s.customer}, CUSTOMER,
                                          json={"happened_on": "2026-01-01", "channel": "call", "contact": "X",
                                                "topic": "Y"})],
        ("api.history", "GET"): [Attempt("carl", {"customer_id": s.customer}, CUSTOMER)],
        ("api.old_version", "GET"): [Attempt("cam", {"customer_id": s.customer, "number": 1}, CUSTOMER)],
        # the audit desk: auditors only
        ("audit.trail", "GET"): [Attempt("bob", {"kind": "customer", "ident": s.customer}, CUSTOMER),
                                 Attempt("adm", {"kind": "user", "ident": s.ids["bob"]}, (person_word("bob"),))],
        ("audit.manifest", "GET"): [Attempt("bob", {"event_seq": manifest_seq}, (manifest_word,)),
                                    Attempt("adm", {"event_seq": manifest_seq}, (manifest_word,))],
        ("api_audit.manifest", "GET"): [Attempt("bob", {"event_seq": manifest_seq}, (manifest_word,))],
        # content: the single-use URL of someone else's view (and it is not burnt by the attempt)
        ("content.deliver", "GET"): [Attempt("eve", {"secret": s.view_secret}, CONTENT, code="not_found")],
        ("api.content", "GET"): [Attempt("eve", {"secret": s.view_secret}, CONTENT)],
        # the viewer: bob's view, its page URLs and its heartbeat are his alone
        ("viewer.show", "GET"): [Attempt("eve", {"view_id": s.reading_view}, ("Pangolin",), code="not_found")],
        ("viewer.heartbeat", "POST"): [Attempt("eve", {"view_id": s.reading_view}, ("Pangolin",))],
        ("viewer.page_image", "GET"): [Attempt("eve", {"token": s.page_token, "number": 1}, CONTENT,
                                               code="not_found")],
        ("api.view_page", "GET"): [Attempt("eve", {"token": s.page_token, "number": 1}, CONTENT)],
        # customers and documents: metadata is for the four working roles, not admins or auditors
        ("customers.show", "GET"): [Attempt("aud", {"customer_id": s.customer}, DOCUMENT),
                                    Attempt("adm", {"customer_id": s.customer}, DOCUMENT)],
        ("api.show_customer", "GET"): [Attempt("aud", {"customer_id": s.customer}, DOCUMENT)],
        ("api.upload_document", "POST"): [Attempt("aud", {"customer_id": s.customer}, CUSTOMER, upload=True,
                                                  form=UPLOAD_FIELDS),
                                          Attempt("bob", {"customer_id": s.customer}, CUSTOMER, upload=True,
                                                  form=UPLOAD_FIELDS)],
        ("documents.show", "GET"): [Attempt("adm", doc, DOCUMENT)],
        ("api.show_document", "GET"): [Attempt("aud", doc, DOCUMENT)],
        # cam compiles for other customers: this one is not his to see (need to know), let alone to version
        ("documents.add_version", "POST"): [Attempt("cam", doc, CONTENT, upload=True, code="not_found")],
        ("api.add_version", "POST"): [Attempt("cam", doc, CONTENT, upload=True)],
        ("loans.reading", "GET"): [Attempt("aud", doc, DOCUMENT)],
        ("loans.request_loan", "GET"): [Attempt("aud", doc, DOCUMENT)],
        ("loans.request_loan", "POST"): [Attempt("aud", doc, DOCUMENT, form={
            "reason": REASON, "category": "other", "place": "Office", "days": "3"})],
        ("loans.request_extension", "GET"): [Attempt("kim", doc, ())],
        ("loans.request_extension", "POST"): [Attempt("kim", doc, (), form={
            "reason": REASON, "category": "other", "place": "Office", "extra_views": "2"})],
        ("loans.open_view", "POST"): [Attempt("eve", doc, CONTENT, form={"reason": REASON, "place": "Office"},
                                              code="not_found")],
        ("api.open_view", "POST"): [Attempt("eve", doc, CONTENT, json={"reason": REASON, "place": "Office"})],
        ("api.open_content", "POST"): [Attempt("eve", doc, CONTENT, json={"reason": REASON, "place": "Office"})],
        ("loans.quota_override", "POST"): [Attempt("eve", doc, (), form={"views": "50"})],
        # loans: another borrower's loan is "not found"; an approver does not see closed loans of others
        ("loans.show", "GET"): [Attempt("eve", loan, LOAN_WORDS),
                                Attempt("abe", {"loan_id": s.loan_revoked}, ("Gecko", "Wombat"))],
        ("api.show_loan", "GET"): [Attempt("eve", loan, LOAN_WORDS),
                                   Attempt("abe", {"loan_id": s.loan_revoked}, ("Gecko", "Wombat"))],
        ("loans.approve", "POST"): [Attempt("eve", requested, ("Ibex",)),
                                    Attempt("abe", {"loan_id": s.loan_revoked}, ("Gecko",))],
        ("api.approve_loan", "POST"): [Attempt("eve", requested, ("Ibex",), json={}),
                                       Attempt("abe", {"loan_id": s.loan_revoked}, ("Gecko",), json={})],
        ("loans.reject", "POST"): [Attempt("eve", requested, ("Ibex",), form={"comment": "No, not needed"})],
        ("api.reject_loan", "POST"): [Attempt("eve", requested, ("Ibex",), json={"comment": "No, not needed"})],
        ("loans.release", "POST"): [Attempt("eve", {"loan_id": s.loan_release}, LOAN_WORDS)],
        ("api.release_loan", "POST"): [Attempt("eve", {"loan_id": s.loan_release}, LOAN_WORDS)],
        ("api.designate_custodian", "POST"): [Attempt("eve", {"loan_id": s.loan_release}, LOAN_WORDS,
                                                      json={"custodian": "kim", "reason": REASON})],
        ("loans.return_loan", "POST"): [Attempt("eve", loan, LOAN_WORDS, code="not_found")],
        ("api.return_loan", "POST"): [Attempt("eve", loan, LOAN_WORDS)],
        ("loans.revoke", "POST"): [Attempt("eve", loan, LOAN_WORDS, form={"reason": REASON, "confirm": "y"})],
        # withdrawing: another borrower's request is "not found"; an approver has no such act at all
        ("loans.withdraw", "POST"): [Attempt("eve", requested, ("Ibex",), code="not_found"),
                                     Attempt("abe", requested, ())],
        ("api.withdraw_loan", "POST"): [Attempt("eve", requested, ("Ibex",)), Attempt("abe", requested, ())],
        ("api.revoke_loan", "POST"): [Attempt("eve", loan, LOAN_WORDS, json={"reason": REASON})],
        # departures: read by auditors and admins, never one's own; handover owed by the successor only
        ("departures.show", "GET"): [Attempt("aux", {"departure_id": s.departure_aux}, ("Walrus",),
                                             code="own_departure"),
                                     Attempt("bob", {"departure_id": s.departure}, ("Walrus",))],
        ("departures.report", "GET"): [Attempt("aux", {"departure_id": s.departure_aux}, ("Walrus",),
                                               code="own_departure"),
                                       Attempt("sue", {"departure_id": s.departure}, ("Dingo", "Ibex"))],
        ("departures.report_csv", "GET"): [Attempt("aux", {"departure_id": s.departure_aux}, ("Walrus",)),
                                           Attempt("sue", {"departure_id": s.departure}, ("Dingo", "Ibex"))],
        ("departures.report_pdf", "GET"): [Attempt("aux", {"departure_id": s.departure_aux}, ("Walrus",)),
                                           Attempt("sue", {"departure_id": s.departure}, ("Dingo", "Ibex"))],
        ("departures.update", "POST"): [Attempt("aud", {"departure_id": s.departure}, ("Walrus",),
                                                form={"note": "moved"})],
        ("departures.complete", "POST"): [Attempt("aud", {"departure_id": s.departure}, ("Walrus",))],
        ("departures.withdraw", "POST"): [Attempt("aud", {"departure_id": s.departure}, ("Walrus",),
                                                  form={"reason": REASON})],
        ("api.show_departure", "GET"): [Attempt("aux", {"departure_id": s.departure_aux}, ("Walrus",)),
                                        Attempt("bob", {"departure_id": s.departure}, ("Walrus",))],
        ("api.departure_report", "GET"): [Attempt("aux", {"departure_id": s.departure_aux}, ("Walrus",)),
                                          Attempt("sue", {"departure_id": s.departure}, ("Dingo", "Ibex"))],
        ("api.withdraw_departure", "POST"): [Attempt("aud", {"departure_id": s.departure}, ("Walrus",),
                                                     json={"reason": REASON})],
        ("api.complete_departure", "POST"): [Attempt("aud", {"departure_id": s.departure}, ("Walrus",))],
        ("api.update_departure", "POST"): [Attempt("aud", {"departure_id": s.departure}, ("Walrus",),
                                                   json={"note": "moved"})],
        # an item is reached only through its own departure: sam's item under aux's departure is "not found"
        ("api.reassign_item", "POST"): [Attempt("aud", {"departure_id": s.departure, "item_id": s.item},
                                                CUSTOMER, json={"to": "eve"}),
                                        Attempt("adm", {"departure_id": s.departure_aux, "item_id": s.item},
                                                CUSTOMER, json={"to": "eve"})],
        ("api.override_departure", "POST"): [Attempt("sue", {"departure_id": s.departure}, CUSTOMER,
                                                     json={"reason": REASON})],
        ("api.confirm_handover", "POST"): [Attempt("eve", {"item_id": s.item}, ("Heron", *CUSTOMER),
                                                   json={"contact_date": "2020-01-01", "note": REASON})],
        ("departures.reassign", "POST"): [Attempt("aud", {"departure_id": s.departure, "item_id": s.item},
                                                  CUSTOMER, form={"to_user": str(s.ids["eve"])})],
        ("departures.override", "GET"): [Attempt("sue", {"departure_id": s.departure}, CUSTOMER)],
        ("departures.override", "POST"): [Attempt("sue", {"departure_id": s.departure}, CUSTOMER,
                                                  form={"reason": REASON})],
        ("departures.confirm", "POST"): [Attempt("eve", {"item_id": s.item}, ("Heron",), code="not_successor",
                                                 form={f"i{s.item}-contact_date": "2020-01-01",
                                                       f"i{s.item}-note": REASON})],
        ("departures.revoke_leaver_loan", "POST"): [Attempt("kim", loan, LOAN_WORDS, form={"reason": REASON})],
        # rotation: decided by the owner's managers and approvers, never by the owner or the one who gains;
        # the contact confirmed by the new owner only
        ("rotation.approve", "POST"): [
            Attempt("eve", rotation, ROTATED, code="not_found",
                    form={f"a{s.rotation_open}-to_user": str(s.ids["cam"]), f"a{s.rotation_open}-confirm": "y"}),
            Attempt("carl", rotation, ROTATED, form={f"a{s.rotation_open}-to_user": str(s.ids["cam"]),
                                                     f"a{s.rotation_open}-confirm": "y"}),
            Attempt("cam", rotation, ROTATED, form={f"a{s.rotation_open}-to_user": str(s.ids["cam"]),
                                                    f"a{s.rotation_open}-confirm": "y"})],
        ("rotation.skip", "POST"): [Attempt("eve", rotation, ROTATED, code="not_found",
                                            form={f"s{s.rotation_open}-reason": REASON,
                                                  f"s{s.rotation_open}-confirm": "y"}),
                                    Attempt("cam", rotation, ROTATED, form={f"s{s.rotation_open}-reason": REASON,
                                                                            f"s{s.rotation_open}-confirm": "y"})],
        ("rotation.confirm", "POST"): [Attempt("carl", {"proposal_id": s.rotation_task}, ("Lemur",),
                                               code="not_found", form={f"c{s.rotation_task}-note": REASON})],
        ("api.approve_rotation", "POST"): [Attempt("eve", rotation, ROTATED, json={}),
                                           Attempt("cam", rotation, ROTATED, json={}),
                                           Attempt("abe", rotation, ROTATED, json={"to": "abe"})],
        ("api.skip_rotation", "POST"): [Attempt("eve", rotation, ROTATED, json={"reason": REASON}),
                                        Attempt("carl", rotation, ROTATED, json={"reason": REASON})],
        # accounts through the API: only administrators, and never on their own account
        ("api.show_user", "GET"): [Attempt("kim", {"username": "ann"}, (person_word("ann"),))],
        ("api.set_manager", "POST"): [Attempt("kim", {"username": "ann"}, (), json={"manager": "kim"}),
                                      Attempt("adm", {"username": "adm"}, (), json={"manager": "ann"})],
        ("api.change_email", "POST"): [Attempt("kim", {"username": "ann"}, (), json={"email": "k@example.com"})],
        ("api.add_role", "POST"): [Attempt("kim", {"username": "ann"}, (), json={"role": "custodian"}),
                                   Attempt("adm", {"username": "adm"}, (), json={"role": "borrower"})],
        ("api.remove_role", "POST"): [Attempt("kim", {"username": "ann"}, (), json={"role": "approver"}),
                                      Attempt("adm", {"username": "adm"}, (), json={"role": "admin"})],
        ("api.disable_user", "POST"): [Attempt("kim", {"username": "ann"}, ()),
                                       Attempt("adm", {"username": "adm"}, ())],
        ("api.enable_user", "POST"): [Attempt("kim", {"username": "ann"}, ())],
        ("api.new_password_link", "POST"): [Attempt("kim", {"username": "ann"}, ()),
                                            Attempt("adm", {"username": "adm"}, ())],
        ("api.reset_second_factor", "POST"): [Attempt("kim", {"username": "ann"}, ()),
                                              Attempt("adm", {"username": "adm"}, ())],
        ("api.approve_role_request", "POST"): [Attempt("kim", {"request_id": 1}, ())],
        ("api.refuse_role_request", "POST"): [Attempt("kim", {"request_id": 1}, ())],
        ("api.approve_manager_request", "POST"): [Attempt("kim", {"request_id": 1}, ())],
        ("api.refuse_manager_request", "POST"): [Attempt("kim", {"request_id": 1}, ())],
        # a quota: not a borrower's to set, and everyone's is not a custodian's
        ("api.set_quota", "POST"): [Attempt("eve", doc, DOCUMENT, json={"views": 50, "person": "eve"}),
                                    Attempt("kim", doc, DOCUMENT, json={"views": 50, "person": None})],
        # a rotated customer's contact: confirmed by its new owner only, and only once the proposal is approved
        ("api.confirm_rotation", "POST"): [Attempt("carl", {"proposal_id": s.rotation_task}, ("Lemur",),
                                                   json={"note": REASON}),
                                           Attempt("cam", rotation, ROTATED, json={})],
        ("api.revoke_letter", "POST"): [Attempt("eve", {"letter_id": s.letter}, CUSTOMER, json={})],
        # one's own tokens through the API: another person's is "not found", as on the account page
        ("api.revoke_my_token", "POST"): [Attempt("eve", {"token_id": _token_id(s, "bob")}, (), json={})],
        # a loan's decision context: the same loans as the loan itself
        ("api.show_loan_context", "GET"): [Attempt("eve", loan, LOAN_WORDS),
                                           Attempt("abe", {"loan_id": s.loan_revoked}, ("Gecko", "Wombat"))],
    }


def _routes(app: Any) -> set[tuple[str, str]]:
    return {(rule.endpoint, method) for rule in app.url_map.iter_rules()
            if rule.arguments and rule.endpoint != "static"
            for method in rule.methods - {"HEAD", "OPTIONS"}}


class Callers:
    """Signed-in browsers and API tokens of the scene's people, made once each."""

    def __init__(self, app: Any, scene: Scene) -> None:
        self.app = app
        self.scene = scene
        self.browsers: dict[str, tuple[Any, str]] = {}

    def page(self, who: str) -> tuple[Any, str]:
        if who not in self.browsers:
            client = self.app.test_client()
            self.browsers[who] = (client, login(client, who))
        return self.browsers[who]

    def call(self, endpoint: str, method: str, attempt: Attempt) -> Any:
        path = self.app.url_map.bind("localhost").build(endpoint, attempt.values)
        if path.startswith("/api/"):
            headers = {"Authorization": f"Bearer {self.scene.token(attempt.who)}"}
            client = self.app.test_client()
            if attempt.upload:
                return client.open(path, method=method, headers=headers, content_type="multipart/form-data",
                                   data={"file": (io.BytesIO(b"%PDF-1.7\nnew\n%%EOF\n"), "new.pdf"),
                                         **attempt.form})
            return client.open(path, method=method, headers=headers, json=attempt.json)
        client, token = self.page(attempt.who)
        if method == "GET":
            return client.get(path)
        data: dict[str, Any] = {"csrf_token": token, **attempt.form}
        if attempt.upload:
            data["file"] = (io.BytesIO(b"%PDF-1.7\nnew\n%%EOF\n"), "new.pdf")
        return client.post(path, data=data, content_type="multipart/form-data" if attempt.upload else None)


def test_every_route_with_an_id_refuses_people_who_may_not_see_the_object(app: Any, scene: Scene) -> None:
    aud = {"Authorization": f"Bearer {scene.token('aud')}"}
    export = app.test_client().get("/api/v1/audit", headers=aud)
    assert export.status_code == 200
    export.get_data()  # the manifest is written once the whole export has been streamed
    manifest_seq = int(export.headers["X-Vault-Export-Manifest"].split("/")[-2])
    manifest = load_manifest(scene.rt.store, manifest_seq)
    assert manifest is not None
    table = attempts(scene, manifest_seq, json.loads(manifest)["sha256"])

    missing = _routes(app) - set(table)
    assert not missing, f"routes with an id and no IDOR attempt: {sorted(missing)}"
    assert not set(table) - _routes(app), "attempts for routes that no longer exist"

    callers = Callers(app, scene)
    failures: list[str] = []
    for (endpoint, method), tries in sorted(table.items()):
        for attempt in tries:
            # Signing in and making tokens are acts of their own: done before the state is taken.
            if endpoint.startswith("api"):
                scene.token(attempt.who)
            else:
                callers.page(attempt.who)
            before = snapshot(scene.rt)
            response = callers.call(endpoint, method, attempt)
            label = f"{method} {endpoint} by {attempt.who} {attempt.values}"
            body = response.get_data().decode("utf-8", "replace")
            if response.status_code not in (403, 404):
                failures.append(f"{label}: answered {response.status_code}")
            leaked = [word for word in attempt.forbidden if word in body]
            if leaked:
                failures.append(f"{label}: the body shows {leaked}")
            if attempt.code and f"Reason code: {attempt.code}" not in body:
                failures.append(f"{label}: not refused with {attempt.code}")
            difference = changed(before, snapshot(scene.rt))
            if difference:
                failures.append(f"{label}: changed {sorted(difference)}")
    assert not failures, "\n".join(failures)

    # The content URL eve tried is still bob's, unused: it gives him his stamped copy.
    bob, _token = callers.page("bob")
    response = bob.get(f"/content/{scene.view_secret}")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf" and response.get_data() != TEXTS.content


# Search takes no id, but it is the other way to reach other people's objects: by their words. Each
# person below works none of the scene's customer (Quokka) or files (Narwhal, Axolotl, Pangolin, Okapi),
# nor is its owner (Sam) in their chain; a prefix is searched so the page's echo of the query cannot
# itself contain the word looked for.
HIDDEN_SEARCHES = {
    "eve": ("quokk", "narwh", "axolo", "pangol", "okap", "sam doe"),  # a borrower of another team
    "cam": ("quokk", "narwh", "sam doe"),  # another compiler
}
HIDDEN_WORDS = ("Quokka", "Narwhal", "Axolotl", "Pangolin", "Okapi")


def test_search_never_reaches_what_the_person_may_not_see(app: Any, scene: Scene) -> None:
    callers = Callers(app, scene)
    failures: list[str] = []
    for who, queries in HIDDEN_SEARCHES.items():
        browser, _token = callers.page(who)
        headers = {"Authorization": f"Bearer {scene.token(who)}"}
        for query in queries:
            page = browser.get("/search/", query_string={"q": query})
            api = app.test_client().get("/api/v1/search", query_string={"q": query}, headers=headers)
            for label, response in (("page", page), ("api", api)):
                body = response.get_data(as_text=True)
                if response.status_code != 200:
                    failures.append(f"{who} {label} {query!r}: answered {response.status_code}")
                leaked = [word for word in (*HIDDEN_WORDS, person_word("sam")) if word in body]
                if leaked:
                    failures.append(f"{who} {label} {query!r}: shows {leaked}")
            answer = api.get_json()
            if answer.get("customers") or answer.get("files"):
                failures.append(f"{who} api {query!r}: found {answer}")
    assert not failures, "\n".join(failures)
    # The control: Bob holds a loan of the Narwhal file, so he finds it (and only what he may see),
    # with the names escaped on the page.
    bob, _token = callers.page("bob")
    found = bob.get("/search/", query_string={"q": "narwh"}).get_data(as_text=True)
    assert "Plan Narwhal" in found and "Quokka" in found and "Axolotl" not in found
    assert "<script>" not in found
