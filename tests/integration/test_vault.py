"""Vault adapter over real HTTP against a fake Vault.

No Vault server can run here, so these tests talk to ``tests/support/fake_vault.py``,
a small Vault-compatible HTTP server written from Vault's API documentation
(AppRole login, KV v2 read, token renew-self/lookup-self, sys/health).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from adapters.vault import (
    VaultClient,
    VaultFailure,
    VaultStartupError,
    load_secrets,
    open_vault,
)
from models.settings import Settings
from tests.support.fake_vault import FakeVault

ROLE_ID = "invite-service-role"
SECRET_ID = "approle-secret-id-7f3a9c"
PATH = "secret/invite-service"
SECRET = {
    "jwt_secret": "jwt-hs256-key-5b1e",
    "integration_service_token": "integration-token-c0ffee",
    "telegram_api_id": "123456",
    "telegram_api_hash": "telegram-hash-9d8e7f",
}
SECRET_VALUES = ["jwt-hs256-key-5b1e", "integration-token-c0ffee", "telegram-hash-9d8e7f", SECRET_ID]


def settings_for(url: str | None, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "vault_addr": url,
        "vault_role_id": ROLE_ID,
        "vault_secret_id": SecretStr(SECRET_ID),
        "vault_timeout_seconds": 5.0,
    }
    values.update(overrides)
    return Settings.model_validate(values)


@pytest.fixture
def vault() -> Iterator[FakeVault]:
    with FakeVault(role_id=ROLE_ID, secret_id=SECRET_ID, secrets_by_path={PATH: dict(SECRET)}) as fake:
        yield fake


def test_secrets_are_read_and_applied(vault: FakeVault) -> None:
    session = open_vault(settings_for(vault.url))

    assert session is not None
    assert session.settings.jwt_secret.get_secret_value() == SECRET["jwt_secret"]
    assert session.settings.integration_service_token is not None
    assert session.settings.integration_service_token.get_secret_value() == SECRET["integration_service_token"]
    assert session.secrets.telegram_api_id == 123456
    assert session.secrets.telegram_api_hash is not None
    assert session.secrets.telegram_api_hash.get_secret_value() == SECRET["telegram_api_hash"]
    assert (vault.counters.logins, vault.counters.reads) == (1, 1)
    assert session.renewer.lease.renewable and session.renewer.lease.ttl_seconds == 3600


def test_load_secrets_without_vault_returns_settings_unchanged(vault: FakeVault) -> None:
    plain = settings_for(None)

    assert load_secrets(plain) is plain
    assert vault.counters.requests == []


def test_load_secrets_returns_a_copy_with_the_secrets(vault: FakeVault) -> None:
    plain = settings_for(vault.url)
    loaded = load_secrets(plain)

    assert loaded.jwt_secret.get_secret_value() == SECRET["jwt_secret"]
    assert plain.jwt_secret.get_secret_value() != SECRET["jwt_secret"]  # the input is not mutated


def test_wrong_secret_id_is_a_clear_error_without_the_secret_id(vault: FakeVault) -> None:
    wrong = "wrong-secret-id-31337"
    with pytest.raises(VaultStartupError) as caught:
        load_secrets(settings_for(vault.url, vault_secret_id=SecretStr(wrong)))

    message = str(caught.value)
    assert caught.value.failure is VaultFailure.PERMISSION_DENIED
    assert vault.url in message
    assert "invalid role or secret ID" in message
    assert "INVITE_VAULT_SECRET_ID" in message
    assert wrong not in message and SECRET_ID not in message
    assert vault.counters.failed_logins == 1 and vault.counters.reads == 0


def test_wrong_role_id_is_permission_denied(vault: FakeVault) -> None:
    with pytest.raises(VaultStartupError) as caught:
        load_secrets(settings_for(vault.url, vault_role_id="someone-else"))

    assert caught.value.failure is VaultFailure.PERMISSION_DENIED
    assert "INVITE_VAULT_ROLE_ID" in str(caught.value)


def test_missing_approle_credentials_are_named() -> None:
    with pytest.raises(VaultStartupError) as caught:
        load_secrets(settings_for("http://127.0.0.1:1", vault_role_id=None, vault_secret_id=None))

    assert caught.value.failure is VaultFailure.NOT_CONFIGURED
    assert "INVITE_VAULT_ROLE_ID" in str(caught.value) and "INVITE_VAULT_SECRET_ID" in str(caught.value)


def test_unreachable_vault_is_a_clear_error() -> None:
    # A port that was free a moment ago: nothing listens there.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"http://127.0.0.1:{probe.getsockname()[1]}"

    with pytest.raises(VaultStartupError) as caught:
        load_secrets(settings_for(address))

    assert caught.value.failure is VaultFailure.UNREACHABLE
    assert address in str(caught.value)
    assert SECRET_ID not in str(caught.value)


def test_sealed_vault_is_named() -> None:
    with FakeVault(role_id=ROLE_ID, secret_id=SECRET_ID, secrets_by_path={PATH: SECRET}, sealed=True) as sealed:
        with pytest.raises(VaultStartupError) as caught:
            load_secrets(settings_for(sealed.url))
        health = VaultClient(settings_for(sealed.url)).health()

    assert caught.value.failure is VaultFailure.SEALED
    assert health.sealed is True


def test_missing_secret_path_names_the_path(vault: FakeVault) -> None:
    with pytest.raises(VaultStartupError) as caught:
        load_secrets(settings_for(vault.url, vault_secret_path="not-there"))

    assert caught.value.failure is VaultFailure.SECRET_MISSING
    assert "secret/not-there" in str(caught.value)
    assert "secret/data/not-there" in str(caught.value)


@pytest.mark.parametrize(
    ("drop", "named"),
    [
        ("integration_service_token", "integration_service_token"),
        ("jwt_secret", "jwt_secret (or jwt_public_key)"),
        ("telegram_api_hash", "telegram_api_hash"),
    ],
)
def test_missing_key_names_the_key(drop: str, named: str) -> None:
    partial = {k: v for k, v in SECRET.items() if k != drop}
    with (
        FakeVault(role_id=ROLE_ID, secret_id=SECRET_ID, secrets_by_path={PATH: partial}) as fake,
        pytest.raises(VaultStartupError) as caught,
    ):
        load_secrets(settings_for(fake.url))

    assert caught.value.failure is VaultFailure.KEY_MISSING
    assert named in str(caught.value)
    assert not any(value in str(caught.value) for value in SECRET_VALUES)


def test_invalid_value_names_the_key_but_not_the_value() -> None:
    bad = dict(SECRET, telegram_api_id="not-a-number-4242")
    with (
        FakeVault(role_id=ROLE_ID, secret_id=SECRET_ID, secrets_by_path={PATH: bad}) as fake,
        pytest.raises(VaultStartupError) as caught,
    ):
        load_secrets(settings_for(fake.url))

    assert caught.value.failure is VaultFailure.INVALID_SECRET
    assert "telegram_api_id" in str(caught.value)
    assert "not-a-number-4242" not in str(caught.value)


def test_rs256_public_key_is_exposed_and_never_leaves_the_dev_secret_in_force() -> None:
    pem = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"
    only_public = {"jwt_public_key": pem, "integration_service_token": "t"}
    with FakeVault(role_id=ROLE_ID, secret_id=SECRET_ID, secrets_by_path={PATH: only_public}) as fake:
        if "jwt_public_key" in Settings.model_fields:
            session = open_vault(settings_for(fake.url))
            assert session is not None
            assert session.secrets.jwt_public_key is not None
            assert session.secrets.jwt_public_key.get_secret_value() == pem
        else:
            with pytest.raises(VaultStartupError) as caught:
                open_vault(settings_for(fake.url))
            assert "jwt_public_key" in str(caught.value) and "jwt_secret" in str(caught.value)

    both = dict(SECRET, jwt_public_key=pem)
    with FakeVault(role_id=ROLE_ID, secret_id=SECRET_ID, secrets_by_path={PATH: both}) as fake:
        session = open_vault(settings_for(fake.url))
    assert session is not None
    assert session.secrets.jwt_public_key is not None and session.secrets.jwt_public_key.get_secret_value() == pem


async def test_token_is_renewed_before_it_expires() -> None:
    # A 5 s token is renewed at about 3.3 s. Had a renewal come after expiry,
    # Vault would have refused it (denied) and the renewer would have logged in again.
    with FakeVault(role_id=ROLE_ID, secret_id=SECRET_ID, secrets_by_path={PATH: SECRET}, token_ttl=5) as fake:
        session = open_vault(settings_for(fake.url))
        assert session is not None
        task = asyncio.create_task(session.renewer.run())
        try:
            renewed = await asyncio.to_thread(fake.wait_until, lambda c: c.renewals >= 2, 60)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert renewed, "the renewer never renewed the token twice"
        assert fake.counters.logins == 1
        assert fake.counters.denied == 0
        assert fake.counters.refused_renewals == 0
        # The token still works after the renewals.
        assert session.renewer.client.read_secrets().jwt_secret is not None


async def test_refused_renewal_logs_in_again() -> None:
    with FakeVault(role_id=ROLE_ID, secret_id=SECRET_ID, secrets_by_path={PATH: SECRET}, refuse_renewal=True) as fake:
        session = open_vault(settings_for(fake.url))
        assert session is not None
        first_token = fake.issued_tokens[-1]

        await session.renewer.renew_once()

        assert fake.counters.refused_renewals == 1
        assert fake.counters.logins == 2
        assert fake.issued_tokens[-1] != first_token
        # The client now uses the new token.
        assert session.renewer.client.read_secrets().integration_service_token is not None
        assert fake.counters.denied == 0


async def test_not_renewable_token_is_replaced_by_a_login() -> None:
    with FakeVault(role_id=ROLE_ID, secret_id=SECRET_ID, secrets_by_path={PATH: SECRET}, renewable=False) as fake:
        session = open_vault(settings_for(fake.url))
        assert session is not None

        lease = await session.renewer.renew_once()

        assert fake.counters.renewals == 0 and fake.counters.refused_renewals == 0  # renew-self not even tried
        assert fake.counters.logins == 2
        assert lease.ttl_seconds == 3600


async def test_revoked_token_is_replaced_by_a_login(vault: FakeVault) -> None:
    session = open_vault(settings_for(vault.url))
    assert session is not None
    vault.revoke_all()

    await session.renewer.renew_once()

    assert vault.counters.denied == 1  # the renew-self with the revoked token
    assert vault.counters.logins == 2
    assert session.renewer.client.lookup().ttl_seconds > 0


async def test_renewal_near_max_ttl_logs_in_again() -> None:
    # Max TTL 10 s on a 3600 s token: the first renewal grants at most 10 s,
    # less than half the login's TTL, so the renewer logs in for a fresh token.
    with FakeVault(
        role_id=ROLE_ID, secret_id=SECRET_ID, secrets_by_path={PATH: SECRET}, token_ttl=3600, token_max_ttl=10
    ) as fake:
        session = open_vault(settings_for(fake.url))
        assert session is not None

        await session.renewer.renew_once()

        assert fake.counters.renewals == 1
        assert fake.counters.logins == 2


async def test_secrets_never_appear_in_logs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, hvac's and urllib3's included
    texts: list[str] = []
    with FakeVault(role_id=ROLE_ID, secret_id=SECRET_ID, secrets_by_path={PATH: SECRET}, refuse_renewal=True) as fake:
        session = open_vault(settings_for(fake.url))
        assert session is not None
        await session.renewer.renew_once()  # refused renewal, then a login
        fake.revoke_all()
        await session.renewer.renew_once()
        session.renewer.client.lookup()
        for bad in (
            settings_for(fake.url, vault_secret_id=SecretStr("bad-" + SECRET_ID)),
            settings_for(fake.url, vault_secret_path="missing"),
        ):
            with pytest.raises(VaultStartupError) as caught:
                load_secrets(bad)
            texts.append(str(caught.value))
            texts.append(repr(caught.value))
        tokens = list(fake.issued_tokens)
        texts.append(repr(session.secrets))
        texts.append(repr(session.settings))

    assert len(tokens) >= 3
    assert caplog.records, "nothing was logged: the test would prove nothing"
    everything = caplog.text + "\n".join(texts)
    for value in [*SECRET_VALUES, *tokens]:
        assert value not in everything
