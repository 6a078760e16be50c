"""The upload pipeline against a real S3 server (SeaweedFS): encrypted at rest, streamed back, and a
refusal in the middle of a multipart upload leaves nothing in the bucket."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.conftest import Users
from tests.documents.conftest import CTX, Company, Trickle, events, row_counts, stored_keys, text_bytes
from vault.core.errors import ServiceError
from vault.models import DocumentVersion, Role, Segment, User
from vault.services import customers, documents, integrity

pytestmark = pytest.mark.s3


@pytest.fixture
def s3_company(s3_rt):
    people = Users(s3_rt)
    people.make("cora", Role.COMPILER)
    with s3_rt.db.session() as session:
        cora = session.scalar(select(User).where(User.username == "cora"))
        customer_id = customers.create_customer(s3_rt, session, cora, name="Acme Corp", segment=Segment.VIP,
                                                ctx=CTX).id
    return Company(s3_rt, customer_id)


def test_upload_and_stream_back_on_s3(s3_rt, s3_company):
    data = text_bytes(5_500_000, marker=b"S3-SECRET-MARKER")  # more than one multipart part of ciphertext
    document_id = s3_company.upload(data=data, name="ledger.txt", stream=Trickle(data))
    with s3_rt.db.session() as session:
        version = session.scalar(select(DocumentVersion).where(DocumentVersion.document_id == document_id))
    assert version.size == len(data) and version.sha256 == hashlib.sha256(data).hexdigest()
    assert stored_keys(s3_rt) == [version.object_key]
    with s3_rt.store.open(version.object_key) as handle:
        stored = handle.read()
    assert b"S3-SECRET-MARKER" not in stored
    with documents.plaintext_chunks(s3_rt, version, documents.ReadGrant.for_check(version)) as chunks:
        parts = list(chunks)
    assert len(parts) > 1
    assert b"".join(parts) == data
    report = integrity.fsck(s3_rt, min_age=timedelta(0))
    assert report.ok and report.versions_checked == 1 and report.objects_listed == 1
    assert len(events(s3_rt, "document:upload")) == 1


def test_too_large_in_the_middle_of_a_multipart_upload_leaves_nothing(s3_rt, s3_company):
    data = text_bytes(7 * 1024 * 1024)  # past the first 5 MiB part, then past the 6 MiB limit
    with pytest.raises(ServiceError) as refused:
        s3_company.upload(data=data, name="big.txt", stream=Trickle(data))
    assert refused.value.code == "file_too_large"
    assert stored_keys(s3_rt) == []
    assert row_counts(s3_rt) == (0, 0)
