"""One's own tokens and sessions through the API, as on "My account": list them (never a secret), revoke one's
own (another person's is an audited 404), log out everywhere (browser sessions end, tokens stay); no route
makes a token."""

from __future__ import annotations

import json
from datetime import timedelta

from tests.api.conftest import assert_error, events
from tests.conftest import login
from tests.test_cli_accounts import run
from vault.core.context import AccessContext
from vault.models import ApiToken, utcnow
from vault.services import accounts

TOKENS, LOGOUT = "/api/v1/me/tokens", "/api/v1/me/logout-everywhere"


def _make(rt, username: str, name: str, **options) -> tuple[int, str]:
    with rt.db.session() as session:
        made = accounts.create_token(rt, session, accounts.get_user(session, username), name=name,
                                     ctx=AccessContext.cli(), **options)
        return made.token.id, made.secret


def _revoked(rt, token_id: int) -> bool:
    with rt.db.session() as session:
        return session.get(ApiToken, token_id).revoked_at is not None


def test_the_caller_lists_and_revokes_their_own_tokens_as_the_page_does(api, rt):
    current = api.token("bob")  # the token these calls come with
    reader_id, reader = _make(rt, "bob", "dashboard", scope="read")
    old_id, _old = _make(rt, "bob", "old script", expires_at=utcnow() + timedelta(hours=1))
    bea_id, _bea = _make(rt, "bea", "bea's script")
    with rt.db.session() as session:  # an expired token stays listed until revoked, as on the page
        session.get(ApiToken, old_id).expires_at = utcnow() - timedelta(minutes=1)

    listed = api.get(TOKENS, "bob")
    assert listed.status_code == 200
    tokens = listed.get_json()["tokens"]
    assert [t["name"] for t in tokens] == ["old script", "dashboard", "cli"]  # newest first
    assert [t["id"] for t in tokens][:2] == [old_id, reader_id] and bea_id not in [t["id"] for t in tokens]
    by_name = {t["name"]: t for t in tokens}
    assert [t["current"] for t in tokens] == [False, False, True]
    assert by_name["dashboard"]["scope"] == "read" and by_name["cli"]["scope"] == "write"
    assert by_name["old script"]["expired"] is True and by_name["cli"]["expired"] is False
    assert by_name["cli"]["last_used_at"] is not None and by_name["dashboard"]["last_used_at"] is None
    assert all(t["revoked_at"] is None for t in tokens)
    # Never a secret: only the few characters the page shows too.
    body = listed.get_data(as_text=True)
    assert current not in body and reader not in body and accounts.hash_token(current) not in body
    assert by_name["cli"]["prefix"] == current[:10]

    # A read token lists, but does not revoke (it changes state).
    assert [t["id"] for t in api.get(TOKENS, token=reader).get_json()["tokens"]] == [t["id"] for t in tokens]
    assert_error(api.post(f"{TOKENS}/{old_id}/revoke", token=reader, json={}), 403, "token_scope")
    assert not _revoked(rt, old_id)

    revoked = api.post(f"{TOKENS}/{reader_id}/revoke", "bob")
    assert revoked.status_code == 200, revoked.get_json()
    answer = revoked.get_json()
    assert (answer["id"], answer["name"], answer["current"]) == (reader_id, "dashboard", False)
    assert answer["revoked_at"] is not None and _revoked(rt, reader_id)
    assert_error(api.get(TOKENS, token=reader), 401, "not_authenticated")
    # Recorded as the page records it: the person revoking their own token.
    [record] = events(rt, "token:revoke")
    assert (record.actor_name, record.subject_user_id) == ("bob", _user_id(rt, "bob"))
    assert json.loads(record.detail) == {"token_id": reader_id}
    assert reader_id not in [t["id"] for t in api.get(TOKENS, "bob").get_json()["tokens"]]

    # The token of the request itself may go too: it stops working at once.
    own = api.post(f"{TOKENS}/{tokens[2]['id']}/revoke", "bob").get_json()
    assert own["current"] is True and own["revoked_at"] is not None
    assert_error(api.get(TOKENS, token=current), 401, "not_authenticated")
    assert not _revoked(rt, bea_id) and not _revoked(rt, old_id)


def _user_id(rt, username: str) -> int:
    with rt.db.session() as session:
        return accounts.get_user(session, username).id


def test_revoking_what_is_not_ones_own_is_refused_and_changes_nothing(api, rt):
    api.token("bob")
    beas = _make(rt, "bea", "bea's script")[0]
    gone = _make(rt, "bob", "gone")[0]
    kept = _make(rt, "bob", "kept")[0]
    with rt.db.session() as session:
        accounts.revoke_tokens(rt, session, accounts.get_user(session, "bob"), token_id=gone)
    before = len(events(rt, "token:revoke"))
    for target, audited in ((beas, True), (999_999, True), (gone, True), (2**31, False)):
        path = f"{TOKENS}/{target}/revoke"
        assert_error(api.post(path, "bob", json={}), 404, "not_found")
        if audited:  # probing ids is recorded as for any hidden object
            refusal = events(rt, "account:self", outcome="denied")[-1]
            assert (refusal.actor_name, refusal.reason_code, json.loads(refusal.detail)["path"]) == (
                "bob", "not_found", path)
    for body in ({"token": kept}, {"reason": ""}, [], "x"):
        assert_error(api.post(f"{TOKENS}/{kept}/revoke", "bob", json=body), 422, "invalid_request")
    assert len(events(rt, "token:revoke")) == before
    assert not _revoked(rt, beas) and not _revoked(rt, kept)
    # A token of someone not signed in at all, or no token: 401 before anything is looked up.
    assert_error(api.post(f"{TOKENS}/{kept}/revoke", json={}), 401, "not_authenticated")
    assert_error(api.get(TOKENS), 401, "not_authenticated")
    assert_error(api.post(LOGOUT, json={}), 401, "not_authenticated")


def test_logging_out_everywhere_ends_the_browser_sessions_and_keeps_the_tokens(api, rt, app):
    browser = app.test_client()
    login(browser, "bob")
    assert browser.get("/account").status_code == 200
    token = api.token("bob")
    assert_error(api.post(LOGOUT, "bob", json={"all": True}), 422, "invalid_request")
    assert events(rt, "auth:logout_everywhere") == []

    ended = api.post(LOGOUT, "bob")
    assert ended.status_code == 200, ended.get_json()
    answer = ended.get_json()
    assert answer["sessions_ended"] is True
    assert [(t["name"], t["current"]) for t in answer["tokens"]] == [("cli", True)]  # tokens stay, as on the page
    # The browser's session is over at its next request; the token still works.
    assert browser.get("/account").status_code == 302
    assert api.get(TOKENS, token=token).status_code == 200
    [record] = events(rt, "auth:logout_everywhere")
    assert (record.actor_name, record.subject_user_id) == ("bob", _user_id(rt, "bob"))


def test_no_route_makes_a_token(app):
    """A token minting tokens would let a stolen one outlive its revocation."""
    assert not [rule.rule for rule in app.url_map.iter_rules()
                if rule.rule.startswith("/api/") and "token" in rule.rule and "POST" in rule.methods
                and not rule.rule.endswith("/revoke")]


def test_a_token_made_before_tokens_expired_is_listed_with_the_expiry_it_has(api, rt):
    """A token made before tokens expired has no stored expiry, yet stops `token_max_days` after it was
    made: the API, the account page and `vault token list` showed no expiry ("never", blank, null) for a
    token that is about to stop, or has stopped. They show when it stops, as the API's guard decides it."""
    api.token("bob")
    young_id, _young = _make(rt, "bob", "old sync")
    stale_id, stale = _make(rt, "bob", "older sync")
    limit = timedelta(days=rt.settings.token_max_days)
    made = utcnow().replace(microsecond=0) - timedelta(days=3)
    with rt.db.session() as session:
        for token_id, created in ((young_id, made), (stale_id, made - limit)):
            row = session.get(ApiToken, token_id)
            row.expires_at, row.created_at = None, created
    assert_error(api.get(TOKENS, token=stale), 401, "not_authenticated")  # the guard stops it

    by_id = {t["id"]: t for t in api.get(TOKENS, "bob").get_json()["tokens"]}
    young_end = (made + limit).isoformat().replace("+00:00", "Z")
    assert (by_id[young_id]["expires_at"], by_id[young_id]["expired"]) == (young_end, False)
    assert (by_id[stale_id]["expires_at"], by_id[stale_id]["expired"]) == (
        made.isoformat().replace("+00:00", "Z"), True)

    listed = run(rt, "token", "list", "bob")
    rows = {line.split()[0]: line for line in listed.stdout.splitlines()[1:]}
    assert (made + limit).strftime("%Y-%m-%d %H:%M") in rows[str(young_id)]
    assert "(expired)" in rows[str(stale_id)] and "(expired)" not in rows[str(young_id)]

    browser = api.app.test_client()
    login(browser, "bob")
    page = browser.get("/account").get_data(as_text=True)
    row = page[page.index("<td>old sync</td>"):]
    row = row[:row.index("</tr>")]
    assert str((made + limit).year) in row and "<td></td>" not in row and "(expired)" not in row
    stale_row = page[page.index("<td>older sync</td>"):]
    assert "(expired)" in stale_row[:stale_row.index("</tr>")]  # marked, as the API and the CLI mark it
