"""Tracing leaked copies back to their view: page images through lossy copies, stamped PDFs, clean files;
through `vault trace`, the auditors' page and the API. Every trace is recorded."""

from __future__ import annotations

import io
import json

from click.testing import CliRunner
from PIL import Image

from tests.api.conftest import Api
from tests.conftest import login
from tests.loans.helpers import REASON, page_url, view_rows
from tests.rendering.inputs import pdf_bytes
from tests.viewer.conftest import INSIDE
from vault.cli import cli
from vault.models import Role


def _env(rt, keyring_path):
    return {"VAULT_DATA_DIR": str(rt.settings.data_dir), "VAULT_DATABASE_URL": rt.settings.database_url,
            "VAULT_KEYRING": str(keyring_path), "VAULT_SECRET_KEY": rt.settings.secret_key}


def _jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


def _copies(page: bytes) -> dict[str, bytes]:
    """What a leaked page goes through: re-saved at JPEG q75, halved, a 10 % crop on each side."""
    image = Image.open(io.BytesIO(page)).convert("RGB")
    width, height = image.size
    cropped = image.crop((width // 10, height // 10, width - width // 10, height - height // 10))
    return {"jpeg75": _jpeg(image, 75), "half": _jpeg(image.resize((width // 2, height // 2)), 90),
            "crop": _jpeg(cropped, 90)}


def test_vault_trace_finds_the_view_of_a_page_image_and_a_stamped_pdf(world, rt, keyring_path, tmp_path):
    doc = world.document(1, content=pdf_bytes(2), name="plan.pdf", content_type="application/pdf")
    ann = world.browser("ann", **INSIDE)
    page = ann.get(ann.open_view(doc).headers["Location"])
    image = ann.get(page_url(page, 2)).get_data()
    [view] = view_rows(rt)
    env = _env(rt, keyring_path)
    audit = world.audit.mark()
    for name, data in _copies(image).items():
        path = tmp_path / f"{name}.jpg"
        path.write_bytes(data)
        result = CliRunner().invoke(cli, ["trace", str(path)], env=env)
        assert result.exit_code == 0, (name, result.output)
        assert f"view      {view.id} " in result.output
        assert "ann (ann)" in result.output or "(ann)" in result.output
        assert REASON in result.output and "Example Industries" in result.output and "Head office" in result.output
    traces = audit.since("audit:trace")
    assert len(traces) == 3 and all(json.loads(t.detail)["view_id"] == view.id for t in traces)

    stamped = ann.get(ann.download_link(doc)).get_data()  # grade 1: a stamped PDF leaves
    path = tmp_path / "leak.pdf"
    path.write_bytes(stamped)
    result = CliRunner().invoke(cli, ["trace", "--json", str(path)], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["view_id"] == view_rows(rt)[-1].id


def test_a_clean_image_has_no_mark_and_exits_non_zero(rt, keyring_path, tmp_path):
    path = tmp_path / "clean.png"
    Image.new("RGB", (1240, 1754), "white").save(path)
    result = CliRunner().invoke(cli, ["trace", str(path)], env=_env(rt, keyring_path))
    assert result.exit_code == 1 and "no mark found" in result.output
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    assert CliRunner().invoke(cli, ["trace", str(text)], env=_env(rt, keyring_path)).exit_code == 2


def test_auditors_trace_on_their_desk_and_through_the_api(world, rt, app, client, users):
    doc = world.document(1, content=pdf_bytes(1), name="plan.pdf", content_type="application/pdf")
    ann = world.browser("ann")
    page = ann.get(ann.open_view(doc).headers["Location"])
    leak = _copies(ann.get(page_url(page, 1)).get_data())["jpeg75"]
    [view] = view_rows(rt)
    users.make("aud", Role.AUDITOR)
    api = Api(app, client, users)
    audit = world.audit.mark()
    answer = api.post("/api/v1/audit/trace", "aud", data={"file": (io.BytesIO(leak), "leak.jpg")},
                      content_type="multipart/form-data", check=False)
    assert answer.status_code == 200
    body = answer.get_json()
    assert (body["found"], body["view_id"], body["person"]["login"], body["reason"]) == (True, view.id, "ann", REASON)
    clean = io.BytesIO()
    Image.new("RGB", (800, 800), "white").save(clean, format="PNG")
    assert api.post("/api/v1/audit/trace", "aud", data={"file": (io.BytesIO(clean.getvalue()), "c.png")},
                    content_type="multipart/form-data", check=False).get_json() == {"found": False}
    bad = api.post("/api/v1/audit/trace", "aud", data={"file": (io.BytesIO(b"hello"), "x.txt")},
                   content_type="multipart/form-data", check=False)
    assert bad.status_code == 400
    assert api.post("/api/v1/audit/trace", "ann", data={"file": (io.BytesIO(leak), "leak.jpg")},
                    content_type="multipart/form-data", check=False).status_code == 403  # auditors only
    assert [t.outcome for t in audit.since("audit:trace")] == ["allowed", "allowed", "failed"]

    desk = app.test_client()
    token = login(desk, "aud")
    assert "Trace a leaked copy" in desk.get("/audit/").get_data(as_text=True)
    shown = desk.post("/audit/trace", data={"csrf_token": token, "file": (io.BytesIO(leak), "leak.jpg")},
                      content_type="multipart/form-data")
    html = shown.get_data(as_text=True)
    assert shown.status_code == 200 and f"View {view.id}" in html and REASON in html
