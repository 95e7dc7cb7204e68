"""The direct Telethon adapter: Telethon's own exceptions → our outcomes, and its "never twice".

Telegram itself cannot be reached from the tests. So the errors are Telethon's
real exception classes (``telethon.errors.rpcerrorlist``), built with their
own constructors (``FloodWaitError(request=None, capture=30)``) or by
Telethon's own ``rpc_message_to_error`` from the raw ``rpc_error`` Telegram
sends; the requests and answers are Telethon's real TL objects
(``InviteToChannelRequest``, ``messages.InvitedUsers`` ...); only the
``TelegramClient`` is replaced by :class:`FakeTelegram`, an object with the
methods the adapter calls that records every request that would have reached
Telegram.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from telethon import errors
from telethon.errors import rpc_message_to_error
from telethon.errors import rpcerrorlist as rpc
from telethon.tl import types
from telethon.tl.functions.channels import InviteToChannelRequest
from telethon.tl.functions.messages import AddChatUserRequest
from telethon.tl.functions.updates import GetStateRequest

from adapters.platforms import AccountState, TargetRef, delivery_unknown, get_adapter
from adapters.platforms.telegram import ERROR_OUTCOMES
from adapters.platforms.telethon import (
    FORWARD_HISTORY,
    DeliveryUnknown,
    TelethonAccount,
    TelethonAdapter,
    TelethonConfig,
    connect_telethon,
    map_telethon_error,
    rpc_error_name,
)
from models.outcomes import Outcome, Scope

SESSION = "1BVtsOKABu-secret-session-string"
CHANNEL = types.InputPeerChannel(channel_id=1, access_hash=11)
BASIC_GROUP = types.InputPeerChat(chat_id=2)
ALICE = types.InputPeerUser(user_id=10, access_hash=100)
ALICE_FRESH = types.InputPeerUser(user_id=10, access_hash=101)  # a new access hash after re-resolving


def added(user_id: int = 10) -> types.messages.InvitedUsers:
    """Telegram's answer to an invite that added the user (a service message "added")."""
    service = types.MessageService(
        id=7, peer_id=types.PeerChannel(1), date=None, action=types.MessageActionChatAddUser(users=[user_id])
    )
    updates = types.Updates(
        updates=[types.UpdateNewChannelMessage(message=service, pts=1, pts_count=1)],
        users=[],
        chats=[],
        date=None,
        seq=0,
    )
    return types.messages.InvitedUsers(updates=updates, missing_invitees=[])


def not_added() -> types.messages.InvitedUsers:
    """An invite that changed nothing: empty Updates, nobody missing."""
    return types.messages.InvitedUsers(
        updates=types.Updates(updates=[], users=[], chats=[], date=None, seq=0), missing_invitees=[]
    )


def refused_by_privacy(user_id: int = 10) -> types.messages.InvitedUsers:
    return types.messages.InvitedUsers(
        updates=types.Updates(updates=[], users=[], chats=[], date=None, seq=0),
        missing_invitees=[types.MissingInvitee(user_id=user_id, premium_would_allow_invite=True)],
    )


def no_such_username(name: str) -> ValueError:
    """What Telethon raises when ResolveUsername says USERNAME_NOT_OCCUPIED (users.py)."""
    error = ValueError(f'No user has "{name}" as username')
    error.__cause__ = rpc.UsernameNotOccupiedError(request=None)
    return error


class FakeTelegram:
    """Stands in for ``telethon.TelegramClient``: the methods the adapter calls, nothing else.

    ``answers`` are consumed in order by the acting calls (``client(request)``
    and ``send_message``): an exception instance is raised, anything else is
    returned; when empty, the call succeeds. ``requests`` records every
    acting call that would have reached Telegram.
    """

    def __init__(self, *answers: Any, entities: dict[Any, Any] | None = None) -> None:
        self.answers = list(answers)
        self.requests: list[Any] = []
        self.resolved: list[tuple[str, Any]] = []
        self.entities: dict[Any, Any] = {"grp": CHANNEL, "basic": BASIC_GROUP, "alice": ALICE, 10: ALICE}
        self.entities.update(entities or {})
        self.fresh_entities: dict[Any, Any] = {"alice": ALICE_FRESH, 10: ALICE_FRESH}
        self.connected = True
        self.connects = 0
        self.disconnected = False
        self.gate: asyncio.Event | None = None  # when set, acting calls wait for it

    def is_connected(self) -> bool:
        return self.connected

    async def connect(self) -> None:
        self.connects += 1
        self.connected = True

    async def disconnect(self) -> None:
        self.disconnected = True

    def _entity(self, table: dict[Any, Any], ref: Any) -> Any:
        found = table.get(ref, self.entities.get(ref))
        if isinstance(found, BaseException):
            raise found
        if found is None:
            raise ValueError(f'Cannot find any entity corresponding to "{ref}"')
        return found

    async def get_input_entity(self, peer: Any) -> Any:
        self.resolved.append(("cache", peer))
        return self._entity({}, peer)

    async def get_entity(self, entity: Any) -> Any:
        self.resolved.append(("fresh", entity))
        return self._entity(self.fresh_entities, entity)

    async def _answer(self, request: Any, default: Any) -> Any:
        self.requests.append(request)
        if self.gate is not None:
            await self.gate.wait()
        answer = self.answers.pop(0) if self.answers else default
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def __call__(self, request: Any) -> Any:
        default = types.updates.State(pts=1, qts=0, date=None, seq=0, unread_count=0)
        return await self._answer(request, default if isinstance(request, GetStateRequest) else added())

    async def send_message(self, entity: Any, message: str) -> Any:
        return await self._answer(("send_message", entity, message), types.Message(id=1, peer_id=None, message=message))


ACCOUNTS = [
    TelethonAccount(id="acc-1", session=SecretStr(SESSION), owner="owner-1"),
    TelethonAccount(id="acc-2", session=SecretStr(SESSION + "2"), owner="owner-1"),
    TelethonAccount(id="acc-3", session=SecretStr(SESSION + "3"), owner="owner-2"),
]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def adapter_with(
    fake: FakeTelegram, clock: Callable[[], datetime] | None = None, **config: Any
) -> tuple[TelethonAdapter, list[str]]:
    built: list[str] = []

    async def factory(account: TelethonAccount, _: TelethonConfig) -> FakeTelegram:
        built.append(account.id)
        return fake

    cfg = TelethonConfig(
        api_id=12345, api_hash=SecretStr("0123456789abcdef0123456789abcdef"), accounts=ACCOUNTS, **config
    )
    options: dict[str, Any] = {"client_factory": factory}
    if clock is not None:
        options["clock"] = clock
    return TelethonAdapter(cfg, **options), built


def act(adapter: TelethonAdapter, action: str, key: str = "task:1:1", **kw: Any) -> Any:
    target = kw.pop("target", TargetRef(username="alice"))
    if action == "invite":
        return adapter.send_invite("acc-1", kw.pop("chat", "@grp"), target, key)
    return adapter.send_message("acc-1", target, "hello {first_name}", key)


# ---- the taxonomy, one row per Telegram error --------------------------------------------

# (Telethon exception, action, outcome, retry_after, raw error name)
TABLE: list[tuple[BaseException, str, Outcome, float | None, str]] = [
    # account temporary
    (rpc.FloodWaitError(request=None, capture=30), "invite", Outcome.FLOOD_WAIT, 30.0, "FLOOD_WAIT"),
    (rpc.FloodWaitError(request=None, capture=300), "message", Outcome.FLOOD_WAIT, 300.0, "FLOOD_WAIT"),
    (rpc.FloodPremiumWaitError(request=None, capture=5), "invite", Outcome.FLOOD_WAIT, 5.0, "FLOOD_PREMIUM_WAIT"),
    (rpc.AuthKeyDuplicatedError(request=None), "invite", Outcome.SESSION_DUPLICATED, None, "AUTH_KEY_DUPLICATED"),
    # account restricted
    (rpc.PeerFloodError(request=None), "invite", Outcome.PEER_FLOOD, None, "PEER_FLOOD"),
    (rpc.PeerFloodError(request=None), "message", Outcome.PEER_FLOOD, None, "PEER_FLOOD"),
    (rpc.UserRestrictedError(request=None), "invite", Outcome.PEER_FLOOD, None, "USER_RESTRICTED"),
    # account dead (banned, frozen, session gone)
    (rpc.UserDeactivatedBanError(request=None), "invite", Outcome.ACCOUNT_BANNED, None, "USER_DEACTIVATED_BAN"),
    (rpc.UserDeactivatedError(request=None), "message", Outcome.ACCOUNT_BANNED, None, "USER_DEACTIVATED"),
    (rpc.PhoneNumberBannedError(request=None), "invite", Outcome.ACCOUNT_BANNED, None, "PHONE_NUMBER_BANNED"),
    (rpc.FrozenMethodInvalidError(request=None), "invite", Outcome.ACCOUNT_BANNED, None, "FROZEN_METHOD_INVALID"),
    (
        rpc.FrozenParticipantMissingError(request=None),
        "invite",
        Outcome.ACCOUNT_BANNED,
        None,
        "FROZEN_PARTICIPANT_MISSING",
    ),
    (rpc.AuthKeyUnregisteredError(request=None), "invite", Outcome.SESSION_INVALID, None, "AUTH_KEY_UNREGISTERED"),
    (rpc.SessionRevokedError(request=None), "message", Outcome.SESSION_INVALID, None, "SESSION_REVOKED"),
    (rpc.SessionExpiredError(request=None), "invite", Outcome.SESSION_INVALID, None, "SESSION_EXPIRED"),
    (rpc.AuthKeyInvalidError(request=None), "invite", Outcome.SESSION_INVALID, None, "AUTH_KEY_INVALID"),
    # target already done
    (rpc.UserAlreadyParticipantError(request=None), "invite", Outcome.ALREADY_MEMBER, None, "USER_ALREADY_PARTICIPANT"),
    # target permanent
    (
        rpc.UserPrivacyRestrictedError(request=None),
        "invite",
        Outcome.PRIVACY_RESTRICTED,
        None,
        "USER_PRIVACY_RESTRICTED",
    ),
    (
        rpc.UserPrivacyRestrictedError(request=None),
        "message",
        Outcome.PRIVACY_RESTRICTED,
        None,
        "USER_PRIVACY_RESTRICTED",
    ),
    (
        rpc.UserNotMutualContactError(request=None),
        "invite",
        Outcome.NOT_MUTUAL_CONTACT,
        None,
        "USER_NOT_MUTUAL_CONTACT",
    ),
    (rpc.UserChannelsTooMuchError(request=None), "invite", Outcome.TOO_MANY_CHANNELS, None, "USER_CHANNELS_TOO_MUCH"),
    (rpc.UserKickedError(request=None), "invite", Outcome.KICKED, None, "USER_KICKED"),
    (rpc.UserBannedInChannelError(request=None), "invite", Outcome.BANNED_IN_CHANNEL, None, "USER_BANNED_IN_CHANNEL"),
    (rpc.InputUserDeactivatedError(request=None), "invite", Outcome.USER_DEACTIVATED, None, "INPUT_USER_DEACTIVATED"),
    (rpc.InputUserDeactivatedError(request=None), "message", Outcome.USER_DEACTIVATED, None, "INPUT_USER_DEACTIVATED"),
    (rpc.UserIdInvalidError(request=None), "invite", Outcome.USER_INVALID, None, "USER_ID_INVALID"),
    (rpc.UserIdInvalidError(request=None), "message", Outcome.USER_INVALID, None, "USER_ID_INVALID"),
    (rpc.PeerIdInvalidError(request=None), "message", Outcome.USER_INVALID, None, "PEER_ID_INVALID"),
    (rpc.UsernameNotOccupiedError(request=None), "invite", Outcome.USERNAME_NOT_FOUND, None, "USERNAME_NOT_OCCUPIED"),
    (rpc.UsernameInvalidError(request=None), "message", Outcome.USERNAME_NOT_FOUND, None, "USERNAME_INVALID"),
    (rpc.UserBotError(request=None), "invite", Outcome.USER_IS_BOT, None, "USER_BOT"),
    (rpc.BotGroupsBlockedError(request=None), "invite", Outcome.USER_IS_BOT, None, "BOT_GROUPS_BLOCKED"),
    (rpc.UserIsBlockedError(request=None), "message", Outcome.USER_BLOCKED_SENDER, None, "USER_IS_BLOCKED"),
    (rpc.YouBlockedUserError(request=None), "message", Outcome.USER_BLOCKED_SENDER, None, "YOU_BLOCKED_USER"),
    # task fatal
    (rpc.ChatAdminRequiredError(request=None), "invite", Outcome.CHAT_ADMIN_REQUIRED, None, "CHAT_ADMIN_REQUIRED"),
    (rpc.ChatWriteForbiddenError(request=None), "invite", Outcome.CHAT_WRITE_FORBIDDEN, None, "CHAT_WRITE_FORBIDDEN"),
    (rpc.ChatWriteForbiddenError(request=None), "message", Outcome.CHAT_WRITE_FORBIDDEN, None, "CHAT_WRITE_FORBIDDEN"),
    (rpc.ChannelPrivateError(request=None), "invite", Outcome.CHAT_INVALID, None, "CHANNEL_PRIVATE"),
    (rpc.ChannelInvalidError(request=None), "invite", Outcome.CHAT_INVALID, None, "CHANNEL_INVALID"),
    (rpc.ChatIdInvalidError(request=None), "invite", Outcome.CHAT_INVALID, None, "CHAT_ID_INVALID"),
    (rpc.PeerIdInvalidError(request=None), "invite", Outcome.CHAT_INVALID, None, "PEER_ID_INVALID"),
    (rpc.UsersTooMuchError(request=None), "invite", Outcome.CHAT_FULL, None, "USERS_TOO_MUCH"),
    (rpc.ChatRestrictedError(request=None), "message", Outcome.CHAT_RESTRICTED, None, "CHAT_RESTRICTED"),
    # transient, and the unknown
    (rpc.RpcCallFailError(request=None), "invite", Outcome.TRANSIENT_ERROR, None, "RPC_CALL_FAIL"),
    (rpc.TimeoutError(request=None), "message", Outcome.TRANSIENT_ERROR, None, "TIMEOUT"),
    (
        rpc.WorkerBusyTooLongRetryError(request=None),
        "invite",
        Outcome.TRANSIENT_ERROR,
        None,
        "WORKER_BUSY_TOO_LONG_RETRY",
    ),
    (
        errors.BadRequestError(request=None, message="SOMETHING_TELEGRAM_INVENTED_TOMORROW"),
        "invite",
        Outcome.TRANSIENT_ERROR,
        None,
        "SOMETHING_TELEGRAM_INVENTED_TOMORROW",
    ),
]

RERESOLVED = {"USER_ID_INVALID", "PEER_ID_INVALID"}


def _row_id(row: tuple[BaseException, str, Outcome, float | None, str]) -> str:
    return f"{type(row[0]).__name__}-{row[1]}"


@pytest.mark.parametrize(("error", "action", "outcome", "retry_after", "raw"), TABLE, ids=map(_row_id, TABLE))
def test_telethon_error_maps_to_outcome(
    error: BaseException, action: Any, outcome: Outcome, retry_after: float | None, raw: str
) -> None:
    result = map_telethon_error(error, action)
    assert (result.outcome, result.retry_after, result.raw_error) == (outcome, retry_after, raw)
    assert result.platform == "telegram"
    assert not delivery_unknown(result)  # Telegram answered: the outcome is known


@pytest.mark.parametrize(("error", "action", "outcome", "retry_after", "raw"), TABLE, ids=map(_row_id, TABLE))
async def test_adapter_maps_telethon_errors(
    error: BaseException, action: str, outcome: Outcome, retry_after: float | None, raw: str
) -> None:
    # Raised on every acting call: a re-resolved retry meets the same error.
    fake = FakeTelegram(error, error)
    adapter, _ = adapter_with(fake)
    result = await act(adapter, action)
    assert (result.outcome, result.retry_after, result.raw_error) == (outcome, retry_after, raw)
    # A stale peer is resolved again and retried exactly once; nothing else is retried.
    assert len(fake.requests) == (2 if raw in RERESOLVED else 1)


@pytest.mark.parametrize(("name", "outcome"), sorted(ERROR_OUTCOMES.items()))
def test_every_shared_table_name_through_telethons_own_conversion(name: str, outcome: Outcome) -> None:
    # The exception Telethon itself raises when Telegram answers rpc_error{code, name}.
    raw = f"{name}_17" if name in {"FLOOD_WAIT", "FLOOD_PREMIUM_WAIT"} else name
    error = rpc_message_to_error(types.RpcError(error_code=420 if raw != name else 400, error_message=raw), None)
    assert rpc_error_name(error)[0] == name
    result = map_telethon_error(error, "invite")
    assert result.outcome is outcome
    if outcome is Outcome.FLOOD_WAIT:
        assert result.retry_after == 17.0


def test_issue_list_uses_telethons_specific_classes() -> None:
    # Every error the issue names has a class of its own in Telethon 1.45: the
    # mapping is tested against those, not against generic RPCErrors.
    for cls in (
        rpc.FloodWaitError, rpc.PeerFloodError, rpc.UserRestrictedError, rpc.FrozenMethodInvalidError,
        rpc.UserDeactivatedBanError, rpc.AuthKeyUnregisteredError, rpc.SessionRevokedError,
        rpc.AuthKeyDuplicatedError, rpc.UserPrivacyRestrictedError, rpc.UserNotMutualContactError,
        rpc.UserAlreadyParticipantError, rpc.UserChannelsTooMuchError, rpc.UserKickedError,
        rpc.UserBannedInChannelError, rpc.InputUserDeactivatedError, rpc.UserIdInvalidError,
        rpc.PeerIdInvalidError, rpc.UsernameNotOccupiedError, rpc.UserBotError, rpc.ChatAdminRequiredError,
        rpc.ChatWriteForbiddenError, rpc.ChannelPrivateError, rpc.UsersTooMuchError, rpc.UserIsBlockedError,
        rpc.ChatRestrictedError,
    ):  # fmt: skip
        assert any(isinstance(row[0], cls) for row in TABLE), cls.__name__
        assert map_telethon_error(cls(request=None), "invite").outcome is not Outcome.TRANSIENT_ERROR, cls.__name__


async def test_unknown_error_is_transient_and_logged_with_its_name(caplog: pytest.LogCaptureFixture) -> None:
    error = rpc_message_to_error(types.RpcError(error_code=400, error_message="BRAND_NEW_ERROR"), None)
    fake = FakeTelegram(error)
    adapter, _ = adapter_with(fake)
    with caplog.at_level(logging.WARNING):
        result = await act(adapter, "invite")
    assert (result.outcome, result.raw_error, result.scope) == (
        Outcome.TRANSIENT_ERROR,
        "BRAND_NEW_ERROR",
        Scope.TRANSIENT,
    )
    assert "BRAND_NEW_ERROR" in caplog.text


# ---- invites: what Telegram's answer means -------------------------------------------------


async def test_invite_into_a_channel_adds_the_user() -> None:
    fake = FakeTelegram()
    adapter, _ = adapter_with(fake)
    result = await adapter.send_invite("acc-1", "@grp", TargetRef(username="alice"), "k")
    assert (result.outcome, result.raw_error, result.platform) == (Outcome.INVITED, None, "telegram")
    [request] = fake.requests
    assert isinstance(request, InviteToChannelRequest)
    assert request.channel == types.InputChannel(channel_id=1, access_hash=11)
    assert request.users == [types.InputUser(user_id=10, access_hash=100)]
    assert fake.resolved == [("cache", "grp"), ("cache", "alice")]  # "@grp" resolves as "grp"


async def test_missing_invitee_is_not_invited() -> None:
    # Since layer 166 Telegram answers a privacy refusal with success plus missing_invitees.
    fake = FakeTelegram(refused_by_privacy())
    adapter, _ = adapter_with(fake)
    result = await act(adapter, "invite")
    assert (result.outcome, result.raw_error) == (Outcome.PRIVACY_RESTRICTED, "MISSING_INVITEES")
    assert result.scope is Scope.TARGET_PERMANENT


async def test_invite_that_changed_nothing_is_already_member() -> None:
    adapter, _ = adapter_with(FakeTelegram(not_added()))
    result = await act(adapter, "invite")
    assert (result.outcome, result.raw_error) == (Outcome.ALREADY_MEMBER, "NOT_ADDED")


async def test_invite_into_a_basic_group_uses_add_chat_user() -> None:
    fake = FakeTelegram()
    adapter, _ = adapter_with(fake)
    assert (await act(adapter, "invite", chat="basic")).outcome is Outcome.INVITED
    [request] = fake.requests
    assert isinstance(request, AddChatUserRequest)
    assert (request.chat_id, request.user_id, request.fwd_limit) == (
        2,
        types.InputUser(user_id=10, access_hash=100),
        FORWARD_HISTORY,
    )


async def test_stale_peer_is_resolved_again_once_with_the_same_account() -> None:
    fake = FakeTelegram(rpc.UserIdInvalidError(request=None))
    adapter, built = adapter_with(fake)
    result = await act(adapter, "invite")
    assert result.outcome is Outcome.INVITED
    assert [type(r) for r in fake.requests] == [InviteToChannelRequest, InviteToChannelRequest]
    assert fake.requests[1].users == [types.InputUser(user_id=10, access_hash=101)]  # the fresh access hash
    assert fake.resolved == [("cache", "grp"), ("cache", "alice"), ("fresh", "grp"), ("fresh", "alice")]
    assert built == ["acc-1"]


async def test_message_is_sent_to_the_resolved_user() -> None:
    fake = FakeTelegram()
    adapter, _ = adapter_with(fake)
    result = await adapter.send_message("acc-1", TargetRef(user_id=10), "hi there", "m1")
    assert result.outcome is Outcome.MESSAGE_SENT
    assert fake.requests == [("send_message", types.InputUser(user_id=10, access_hash=100), "hi there")]
    assert fake.resolved == [("cache", 10)]  # an id resolves from this account's cache


# ---- resolution failures: nothing was sent ---------------------------------------------------


@pytest.mark.parametrize(
    ("entities", "chat", "outcome", "raw"),
    [
        ({"alice": no_such_username("alice")}, "grp", Outcome.USERNAME_NOT_FOUND, "USERNAME_NOT_OCCUPIED"),
        ({"alice": rpc.UsernameInvalidError(request=None)}, "grp", Outcome.USERNAME_NOT_FOUND, "USERNAME_INVALID"),
        ({"alice": types.InputPeerChannel(5, 55)}, "grp", Outcome.USER_INVALID, "NOT_A_USER"),
        ({}, "nowhere", Outcome.CHAT_INVALID, "UNRESOLVED"),
        ({"gone": no_such_username("gone")}, "gone", Outcome.CHAT_INVALID, "USERNAME_NOT_OCCUPIED"),
        ({"grp": ALICE}, "grp", Outcome.CHAT_INVALID, "NOT_A_GROUP"),
        ({"grp": rpc.ChannelPrivateError(request=None)}, "grp", Outcome.CHAT_INVALID, "CHANNEL_PRIVATE"),
        ({"alice": rpc.FloodWaitError(request=None, capture=90)}, "grp", Outcome.FLOOD_WAIT, "FLOOD_WAIT"),
        (
            {"alice": rpc.AuthKeyUnregisteredError(request=None)},
            "grp",
            Outcome.SESSION_INVALID,
            "AUTH_KEY_UNREGISTERED",
        ),
        ({"alice": ConnectionError("reset")}, "grp", Outcome.TRANSIENT_ERROR, "RESOLVE:ConnectionError"),
    ],
)
async def test_resolution_failures(entities: dict[str, Any], chat: str, outcome: Outcome, raw: str) -> None:
    fake = FakeTelegram(entities=entities)
    adapter, _ = adapter_with(fake)
    result = await act(adapter, "invite", chat=chat)
    assert (result.outcome, result.raw_error) == (outcome, raw)
    assert fake.requests == []
    assert not delivery_unknown(result)  # nothing was sent: a new attempt is safe


async def test_id_only_target_unknown_to_this_account_is_user_invalid() -> None:
    fake = FakeTelegram()
    adapter, _ = adapter_with(fake)
    result = await adapter.send_message("acc-1", TargetRef(user_id=99), "hi", "k")
    assert (result.outcome, result.raw_error) == (Outcome.USER_INVALID, "UNRESOLVED")
    assert fake.requests == []


# ---- never twice ---------------------------------------------------------------------------------


async def test_same_key_acts_once_and_lookup_returns_the_answer() -> None:
    fake = FakeTelegram()
    adapter, _ = adapter_with(fake)
    first = await act(adapter, "invite", key="t:1:1")
    again = await act(adapter, "invite", key="t:1:1")
    assert first == again
    assert len(fake.requests) == 1
    assert await adapter.lookup("t:1:1") == first


async def test_lookup_of_a_key_this_process_never_sent_is_unknown_not_none() -> None:
    adapter, _ = adapter_with(FakeTelegram())
    with pytest.raises(DeliveryUnknown):
        await adapter.lookup("t:9:1")


@pytest.mark.parametrize("lost", [ConnectionError("reset by peer"), OSError("network unreachable"), TimeoutError()])
async def test_connection_lost_during_the_call_is_never_resent(lost: BaseException) -> None:
    fake = FakeTelegram(lost)
    adapter, _ = adapter_with(fake)
    result = await act(adapter, "message", key="t:2:1")
    assert result.outcome is Outcome.TRANSIENT_ERROR
    assert delivery_unknown(result)
    assert result.raw_error == f"UNAVAILABLE:{type(lost).__name__}"
    with pytest.raises(DeliveryUnknown):
        await adapter.lookup("t:2:1")
    # Asked again under the same key (as the sender does after a lookup), it does not act again.
    assert await act(adapter, "message", key="t:2:1") == result
    assert len(fake.requests) == 1


async def test_slow_call_is_unknown_then_answered_by_lookup() -> None:
    fake = FakeTelegram()
    fake.gate = asyncio.Event()  # Telegram does not answer until the test says so
    adapter, _ = adapter_with(fake, call_timeout_seconds=0.01, lookup_wait_seconds=0.01)
    result = await act(adapter, "invite", key="t:3:1")
    assert delivery_unknown(result)
    with pytest.raises(DeliveryUnknown, match="still running"):
        await adapter.lookup("t:3:1")
    fake.gate.set()  # the answer arrives after all, and is kept
    looked_up = None
    for _ in range(1000):  # each lookup waits lookup_wait_seconds for the answer being stored
        try:
            looked_up = await adapter.lookup("t:3:1")
            break
        except DeliveryUnknown:
            continue
    assert looked_up is not None and looked_up.outcome is Outcome.INVITED
    assert len(fake.requests) == 1


async def test_failure_to_connect_is_a_safe_transient() -> None:
    calls = 0

    async def factory(account: TelethonAccount, config: TelethonConfig) -> FakeTelegram:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("no route to host")
        return FakeTelegram()

    cfg = TelethonConfig(api_id=1, api_hash=SecretStr("h"), accounts=ACCOUNTS)
    adapter = TelethonAdapter(cfg, client_factory=factory)
    first = await adapter.send_invite("acc-1", "grp", TargetRef(username="alice"), "k1")
    assert (first.outcome, first.raw_error) == (Outcome.TRANSIENT_ERROR, "CONNECT:OSError")
    assert not delivery_unknown(first)  # nothing was sent
    second = await adapter.send_invite("acc-1", "grp", TargetRef(username="alice"), "k2")
    assert second.outcome is Outcome.INVITED
    assert calls == 2


async def test_disconnected_client_is_reconnected_before_the_call() -> None:
    fake = FakeTelegram()
    adapter, built = adapter_with(fake)
    await act(adapter, "invite", key="k1")
    fake.connected = False
    assert (await act(adapter, "invite", key="k2")).outcome is Outcome.INVITED
    assert (built, fake.connects) == (["acc-1"], 1)


async def test_account_without_a_session_is_session_invalid() -> None:
    adapter, built = adapter_with(FakeTelegram())
    result = await adapter.send_invite("stranger", "grp", TargetRef(username="alice"), "k")
    assert (result.outcome, result.raw_error) == (Outcome.SESSION_INVALID, "UNKNOWN_ACCOUNT")
    assert built == []


# ---- accounts ------------------------------------------------------------------------------------


async def test_account_status_follows_the_answers() -> None:
    clock = Clock()
    fake = FakeTelegram(rpc.FloodWaitError(request=None, capture=30))
    adapter, _ = adapter_with(fake, clock=clock)
    assert (await act(adapter, "invite", key="k1")).outcome is Outcome.FLOOD_WAIT
    cooling = await adapter.account_status("acc-1")
    assert (cooling.status, cooling.until, cooling.reason) == (
        AccountState.COOLDOWN,
        clock.now + timedelta(seconds=30),
        "FLOOD_WAIT",
    )
    assert not any(isinstance(r, GetStateRequest) for r in fake.requests)  # a known cooldown needs no probe
    clock.now += timedelta(seconds=31)
    active = await adapter.account_status("acc-1")
    assert (active.status, active.user_id) == (AccountState.ACTIVE, "owner-1")
    assert isinstance(fake.requests[-1], GetStateRequest)


@pytest.mark.parametrize(
    ("error", "state"),
    [
        (rpc.PeerFloodError(request=None), AccountState.RESTRICTED),
        (rpc.UserDeactivatedBanError(request=None), AccountState.BANNED),
        (rpc.FrozenMethodInvalidError(request=None), AccountState.BANNED),
        (rpc.SessionRevokedError(request=None), AccountState.SESSION_INVALID),
    ],
)
async def test_account_state_learnt_from_an_answer(error: BaseException, state: AccountState) -> None:
    adapter, _ = adapter_with(FakeTelegram(error))
    await act(adapter, "invite")
    assert (await adapter.account_status("acc-1")).status is state
    listed = {a.id: a.status for a in await adapter.list_accounts("owner-1")}
    assert listed == {"acc-1": state, "acc-2": AccountState.ACTIVE}


async def test_account_status_probe_finds_a_dead_session() -> None:
    fake = FakeTelegram(rpc.AuthKeyUnregisteredError(request=None))
    adapter, _ = adapter_with(fake)
    status = await adapter.account_status("acc-1")
    assert (status.status, status.reason) == (AccountState.SESSION_INVALID, "AUTH_KEY_UNREGISTERED")
    assert isinstance(fake.requests[0], GetStateRequest)
    with pytest.raises(KeyError, match="stranger"):
        await adapter.account_status("stranger")


async def test_list_accounts_by_owner_and_close() -> None:
    fake = FakeTelegram()
    adapter, _ = adapter_with(fake)
    assert [a.id for a in await adapter.list_accounts("owner-2")] == ["acc-3"]
    assert await adapter.list_accounts("nobody") == []
    await act(adapter, "invite")
    await adapter.aclose()
    assert fake.disconnected


# ---- configuration, secrets, registry, optional dependency ------------------------------------


def test_config_keeps_secrets_out_of_reprs_and_names_duplicate_accounts() -> None:
    cfg = TelethonConfig(api_id=1, api_hash=SecretStr("very-secret-hash"), accounts=ACCOUNTS)
    text = repr(cfg) + str(cfg) + repr(TelethonAdapter(cfg))
    assert SESSION not in text and "very-secret-hash" not in text
    with pytest.raises(ValueError, match="acc-1"):
        TelethonConfig(api_id=1, api_hash=SecretStr("h"), accounts=[ACCOUNTS[0], ACCOUNTS[0]])


async def test_no_session_string_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    adapter, _ = adapter_with(FakeTelegram(ConnectionError("reset"), rpc.SessionRevokedError(request=None)))
    with caplog.at_level(logging.DEBUG):
        await act(adapter, "invite", key="k1")
        await act(adapter, "invite", key="k2")
    assert caplog.records  # the failures were logged ...
    assert SESSION not in caplog.text  # ... without the session


async def test_registry_builds_the_telethon_adapter() -> None:
    cfg = TelethonConfig(api_id=1, api_hash=SecretStr("h"), accounts=ACCOUNTS)

    async def factory(account: TelethonAccount, config: TelethonConfig) -> FakeTelegram:
        return FakeTelegram()

    adapter = get_adapter("telethon", config=cfg, client_factory=factory)
    assert isinstance(adapter, TelethonAdapter)
    assert adapter.platform == "telethon"
    assert (await act(adapter, "invite")).platform == "telegram"  # targets live on Telegram


async def test_real_client_is_built_to_report_every_flood_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    from telethon import TelegramClient

    async def no_network(self: TelegramClient) -> None:
        return None

    monkeypatch.setattr(TelegramClient, "connect", no_network)
    cfg = TelethonConfig(api_id=1, api_hash=SecretStr("h"), accounts=ACCOUNTS)
    client: Any = await connect_telethon(TelethonAccount(id="a", session=SecretStr(a_real_string_session())), cfg)
    assert isinstance(client, TelegramClient)
    assert client.flood_sleep_threshold == 0  # no sleeping through FloodWaits inside Telethon
    assert client._request_retries == 0  # no re-sending an action that may have landed
    assert client._raise_last_call_error is True
    assert client._no_updates is True


def a_real_string_session() -> str:
    """A well-formed StringSession (DC 2, a zero auth key): what StringSession.save() gives."""
    from telethon.crypto import AuthKey
    from telethon.sessions import StringSession

    session = StringSession()
    session.set_dc(2, "149.154.167.51", 443)
    session.auth_key = AuthKey(bytes(256))
    return session.save()


async def test_malformed_session_string_is_a_dead_session_and_stays_secret(caplog: pytest.LogCaptureFixture) -> None:
    cfg = TelethonConfig(
        api_id=1, api_hash=SecretStr("h"), accounts=[TelethonAccount(id="acc-1", session=SecretStr(SESSION))]
    )
    adapter = TelethonAdapter(cfg)  # the real client factory: the string is not a Telethon session
    with caplog.at_level(logging.DEBUG):
        result = await adapter.send_invite("acc-1", "grp", TargetRef(username="alice"), "k")
    assert (result.outcome, result.raw_error) == (Outcome.SESSION_INVALID, "BAD_SESSION")
    assert SESSION not in caplog.text


def test_module_imports_without_telethon_and_says_how_to_install() -> None:
    code = (
        "import sys, asyncio; sys.modules['telethon'] = None\n"
        "from adapters.platforms.telethon import TelethonAdapter, TelethonConfig, TelethonMissing, connect_telethon\n"
        "from adapters.platforms import get_adapter\n"
        "cfg = TelethonConfig(api_id=1, api_hash='h', accounts=[{'id': 'a', 'session': 's'}])\n"
        "try:\n"
        "    asyncio.run(connect_telethon(cfg.accounts[0], cfg))\n"
        "except TelethonMissing as exc:\n"
        "    print('MISSING', exc)\n"
        "try:\n"
        "    TelethonAdapter(cfg)\n"
        "except TelethonMissing as exc:\n"
        "    print('REFUSED', exc)\n"
        "print('BUILT', type(get_adapter('telegram', client=None)).__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "MISSING" in done.stdout and "invite-service[telethon]" in done.stdout
    assert "REFUSED" in done.stdout  # at construction, so a worker fails at start and not per target
    assert "BUILT TelegramAdapter" in done.stdout  # the Integration Service adapter needs no Telethon
