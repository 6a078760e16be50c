"""`[pool]` in the policy file: read key by key, a mistyped or out-of-range value stops the start-up, and
`vault policy show` prints it back so it reads the same."""

from __future__ import annotations

import tomllib

import pytest

from vault.config.policy_file import PoolSettings, to_toml
from vault.config.settings import ConfigError, load_settings
from vault.models import Segment


def test_the_pool_section_changes_who_claims_how_many_and_when_claims_lapse(tmp_path):
    path = tmp_path / "vault.toml"
    path.write_text('[pool]\nclaim_roles_vip = ["Compiler"]\nclaim_roles_ordinary = []\nmax_claims_key = 4\n'
                    'lapse_days = 14\n')
    pool = load_settings(environ={"VAULT_CONFIG": str(path)}).pool
    assert pool.claim_roles(Segment.VIP) == {"compiler"} and pool.claim_roles("ordinary") == frozenset()
    assert pool.claim_roles(Segment.KEY) == {"borrower", "compiler"}  # the default stays where not given
    assert pool.max_claims("key") == 4 and pool.max_claims(Segment.VIP) == PoolSettings().max_claims_vip
    assert pool.lapse_days == 14
    # Printed back as a policy file, it reads the same.
    shown = load_settings(environ={"VAULT_CONFIG": str(path)}).policy_sections()
    again = tmp_path / "shown.toml"
    again.write_text(to_toml(shown))
    assert load_settings(environ={"VAULT_CONFIG": str(again)}).pool == pool
    assert tomllib.loads(to_toml(shown))["pool"]["claim_roles_vip"] == ["compiler"]


@pytest.mark.parametrize(("text", "message"), [
    ("max_claim_key = 3", "unknown key"),
    ('claim_roles_vip = ["approver"]', "borrower, compiler"),
    ('claim_roles_vip = "borrower"', "must be a list"),
    ("max_claims_vip = -1", "from 0 to 100000"),
    ("max_claims_key = true", "from 0 to 100000"),
    ("lapse_days = 0", "from 1 to 3660"),
    ('lapse_days = "30"', "from 1 to 3660"),
])
def test_a_mistyped_pool_setting_stops_the_start_up(tmp_path, text, message):
    path = tmp_path / "vault.toml"
    path.write_text(f"[pool]\n{text}\n")
    with pytest.raises(ConfigError, match=message):
        load_settings(environ={"VAULT_CONFIG": str(path)})
