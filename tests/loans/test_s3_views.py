"""Views served from a real S3 server (SeaweedFS), and a real storage outage: an S3 endpoint nobody
answers on. The view is given back when the storage cannot be reached."""

from __future__ import annotations

import socket

import pytest

from storage import S3Store
from tests.loans.helpers import used, view_rows
from vault.models import ViewStatus

pytestmark = pytest.mark.s3

CONTENT = b"Price list for the account, kept in S3.\n" * 2000


def _dead_endpoint() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"  # closed again: connections are refused


def test_a_view_streams_from_s3_and_an_outage_gives_it_back(world, rt, s3_store):
    rt.store = s3_store
    doc = world.document(1, content=CONTENT)
    ann = world.browser("ann")
    response, body = ann.read(doc, download=True)
    assert (response.status_code, body) == (200, CONTENT)

    url = ann.download_link(doc)
    rt.store = S3Store(endpoint=_dead_endpoint(), access_key="vault", secret_key="not-needed-here",
                       bucket="vault-test", secure=False)
    audit = world.audit.mark()
    down = ann.get(url)
    assert down.status_code == 503
    assert "file store cannot be reached" in down.get_data(as_text=True)
    [refund] = audit.since("view:refund")
    assert '"cause":"storage_unavailable"' in refund.detail
    assert [v.status for v in view_rows(rt)] == [ViewStatus.DELIVERED, ViewStatus.REFUNDED]
    assert used(rt, world.ids["ann"], doc) == 1
