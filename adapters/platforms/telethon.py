"""Telegram directly through Telethon, for users without an Integration Service.

Optional: install with ``pip install 'invite-service[telethon]'``. Telethon is
imported only when a client is built or an error is mapped, so the service
runs (and this module imports) without it.

**Accounts.** Each sender account is a Telethon ``StringSession`` (from
settings or Vault, never logged) plus the application's ``api_id`` /
``api_hash`` (:class:`TelethonConfig`). One ``TelegramClient`` per account,
connected on first use, built with:

* ``flood_sleep_threshold=0`` — Telethon would otherwise sleep through short
  FloodWaits inside the call; the account's scheduler must hear every one;
* ``request_retries=0`` and ``raise_last_call_error=True`` — a retry inside
  Telethon would re-send an action whose first try may have landed, and we
  want Telegram's own error, not "request was unsuccessful";
* ``receive_updates=False`` — a sender needs answers, not the update stream.

**Calls.** A target is resolved by the account that acts on it (access
hashes differ per account): by username if it has one, else by user id or
phone from that account's own cache. An invite is ``InviteToChannelRequest``
(or ``AddChatUserRequest`` for a basic group) and counts as INVITED only if
the user is not in the answer's ``missing_invitees`` (Telethon >= 1.35) and
Telegram reported a change; a message is ``send_message``. When Telegram
answers USER_ID_INVALID or PEER_ID_INVALID, chat and target are resolved once
more, afresh and with the same account, and the call is made once more.

**Errors.** Telethon raises one exception class per Telegram RPC error
(``telethon.errors.rpcerrorlist``). :func:`rpc_error_name` turns the class
back into the RPC error name Telethon filed it under, and the shared table of
``adapters/platforms/telegram.py`` (:data:`~adapters.platforms.telegram.ERROR_OUTCOMES`)
maps it, so both Telegram adapters give the same outcome for the same error.
Errors of an unknown name end as TRANSIENT_ERROR and are logged with the name.

**Never twice.** Telethon has no idempotency keys, and Telegram keeps no
record of our attempts. What this adapter can promise:

* within one process, a key acts at most once: a second ``send_*`` with the
  same key joins the running call or returns its stored answer, and
  :meth:`TelethonAdapter.lookup` returns that answer too;
* an action whose connection broke or timed out *during* the request is a
  delivery nobody can vouch for: TRANSIENT_ERROR with ``raw_error`` starting
  ``UNAVAILABLE:`` (``adapters.platforms.base.delivery_unknown``). Failures
  *before* the request (connecting, resolving) are plain TRANSIENT_ERROR —
  nothing was sent, so a new attempt is safe;
* ``lookup`` never returns None ("never reached Telegram"), because no Telethon
  call can prove that: a key with no stored answer (another process made the
  call, or the process restarted) or whose answer was lost raises
  :class:`DeliveryUnknown`. The sender (``streams/sender.py``) then leaves the
  target in flight instead of re-sending it; once the claim is older than the
  in-flight timeout, the reconciler (``streams/reconciler.py``) marks it
  ``unknown`` for an operator rather than releasing it — a possible double
  invite or message costs more than a stuck target. The answer of a call that
  was merely slow is stored when it arrives, so a lookup before the timeout
  still finds it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from models.outcomes import InviteResult, Outcome, Scope

from .base import (
    UNAVAILABLE_PREFIX,
    AccountState,
    DeliveryUnknown,
    PlatformAccount,
    PlatformAdapter,
    ResolvedTarget,
    TargetRef,
    delivery_unknown,
)
from .registry import register
from .telegram import map_error

__all__ = [
    "BadSession",
    "DeliveryUnknown",
    "TelethonAccount",
    "TelethonAdapter",
    "TelethonConfig",
    "TelethonMissing",
    "map_telethon_error",
    "rpc_error_name",
]

log = logging.getLogger(__name__)

Action = Literal["invite", "message"]
PLATFORM = "telegram"
INSTALL_HINT = "pip install 'invite-service[telethon]'"

# New members of a basic group see this much history, as when a Telegram app adds them.
FORWARD_HISTORY = 100

# Errors after which chat and target are resolved afresh and the call made once more.
_RERESOLVE = frozenset({"USER_ID_INVALID", "PEER_ID_INVALID"})

# Outcomes that name the *target*: met while resolving the chat they mean the chat is wrong.
_ABOUT_TARGET = frozenset({Scope.TARGET_PERMANENT, Scope.TARGET_DONE})


class TelethonMissing(ImportError):
    """Telethon is not installed; the message says how to install it."""


class BadSession(ValueError):
    """The configured session string is not a Telethon StringSession (its text is never shown)."""


class TelethonAccount(BaseModel):
    """One sender account: its Telethon StringSession and the user who owns it."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1)
    session: SecretStr = Field(description="Telethon StringSession.save() of the logged-in account")
    owner: str | None = Field(default=None, description="the platform user whose account this is")


class TelethonConfig(BaseModel):
    """Telegram API credentials, the accounts, and the adapter's time limits."""

    model_config = ConfigDict(frozen=True)

    api_id: int = Field(gt=0)
    api_hash: SecretStr
    accounts: list[TelethonAccount] = Field(default_factory=list)
    connect_timeout_seconds: float = Field(default=10.0, gt=0)
    # Below Settings.inflight_timeout_seconds, so a slow call is settled by its
    # own sender before the reconciler takes it for lost.
    call_timeout_seconds: float = Field(default=60.0, gt=0)
    # The reconciler looks up stale claims one after another: a lookup must not
    # hold its round for a whole call timeout.
    lookup_wait_seconds: float = Field(default=5.0, gt=0, description="how long lookup waits for a running call")
    remembered_calls: int = Field(default=10_000, ge=1, description="answers kept for replay and lookup")

    @model_validator(mode="after")
    def _unique_accounts(self) -> TelethonConfig:
        ids = [a.id for a in self.accounts]
        doubles = sorted({i for i in ids if ids.count(i) > 1})
        if doubles:
            raise ValueError(f"account ids must be unique; repeated: {doubles}")
        return self


class TelegramClientLike(Protocol):
    """The part of ``telethon.TelegramClient`` this adapter uses."""

    def is_connected(self) -> bool: ...
    async def connect(self) -> None: ...
    async def disconnect(self) -> None: ...
    async def get_input_entity(self, peer: Any) -> Any: ...
    async def get_entity(self, entity: Any) -> Any: ...
    async def send_message(self, entity: Any, message: str) -> Any: ...
    async def __call__(self, request: Any) -> Any: ...


ClientFactory = Callable[[TelethonAccount, TelethonConfig], Awaitable[TelegramClientLike]]


def _require_telethon() -> None:
    try:
        import telethon  # noqa: F401
    except ImportError as exc:
        raise TelethonMissing(f"the Telethon adapter needs Telethon: {INSTALL_HINT}") from exc


async def connect_telethon(account: TelethonAccount, config: TelethonConfig) -> TelegramClientLike:
    """A connected ``TelegramClient`` for ``account`` (see the module docstring for its options)."""
    _require_telethon()
    from telethon import TelegramClient
    from telethon.sessions import StringSession

    try:
        session = StringSession(account.session.get_secret_value())
    except ValueError:  # bad base64 or version: say which account, never the string
        raise BadSession(f"the session of account {account.id!r} is not a Telethon StringSession") from None
    client = TelegramClient(
        session,
        config.api_id,
        config.api_hash.get_secret_value(),
        timeout=max(1, round(config.connect_timeout_seconds)),
        flood_sleep_threshold=0,
        request_retries=0,
        raise_last_call_error=True,
        receive_updates=False,
    )
    await client.connect()
    return client


# ---- errors -------------------------------------------------------------------


@cache
def _names_by_class() -> dict[type, str]:
    """Telethon's error classes → the RPC error name each was generated from."""
    from telethon.errors import rpcerrorlist

    names: dict[type, str] = {}
    for pattern, cls in rpcerrorlist.rpc_errors_re:
        # FLOOD_WAIT_(\d+) → FLOOD_WAIT: the number travels as the exception's attribute.
        names.setdefault(cls, re.sub(r"_?\(\\d\+\)", "", pattern))
    for name, cls in rpcerrorlist.rpc_errors_dict.items():
        names[cls] = name.upper()  # exact names win over patterns
    return names


def _is_rpc_error(exc: BaseException) -> bool:
    from telethon.errors import RPCError

    return isinstance(exc, RPCError)


def rpc_error_name(exc: BaseException) -> tuple[str, int | None]:
    """The Telegram RPC error name of a Telethon error, and its seconds (FloodWait).

    Telethon's generated classes keep their base's ``message`` ("FLOOD",
    "BAD_REQUEST"), so the name comes from the class; a name Telethon does not
    know arrives as a bare ``RPCError`` subclass whose ``message`` is the name.
    """
    name = _names_by_class().get(type(exc))
    if name is None:
        name = str(getattr(exc, "message", None) or type(exc).__name__)
    seconds = getattr(exc, "seconds", None)
    return name, seconds if isinstance(seconds, int) else None


def map_telethon_error(exc: BaseException, action: Action) -> InviteResult:
    """A Telethon RPC error as an InviteResult, through the shared Telegram table."""
    name, seconds = rpc_error_name(exc)
    return map_error(name, seconds, action)


def _result(outcome: Outcome, raw_error: str | None = None) -> InviteResult:
    return InviteResult(outcome=outcome, raw_error=raw_error, platform=PLATFORM)


def _unknown_delivery(exc: BaseException) -> InviteResult:
    return _result(Outcome.TRANSIENT_ERROR, f"{UNAVAILABLE_PREFIX}{type(exc).__name__}")


# Failures of the transport *during* a request: it may have reached Telegram.
_IN_FLIGHT_FAILURES: tuple[type[BaseException], ...] = (ConnectionError, OSError, TimeoutError, EOFError)


class _Verdict(Exception):
    """The attempt ended with this result before (or instead of) a usable answer."""

    def __init__(self, result: InviteResult) -> None:
        super().__init__(result.raw_error)
        self.result = result


class _Reresolve(Exception):
    """Telegram named a stale peer: resolve afresh and make the call once more."""


def _resolution_failure(exc: BaseException, about: Literal["chat", "user"]) -> InviteResult:
    """What a failed resolution means; nothing was sent, so never an unknown delivery."""
    # Telethon turns USERNAME_NOT_OCCUPIED into ValueError("No user has ...") raised from the RPC error.
    cause = exc.__cause__
    rpc = exc if _is_rpc_error(exc) else cause if cause is not None and _is_rpc_error(cause) else None
    if rpc is not None:
        result = map_telethon_error(rpc, "message" if about == "user" else "invite")
        if about == "chat" and result.scope in _ABOUT_TARGET:
            return _result(Outcome.CHAT_INVALID, result.raw_error)
        return result
    if isinstance(exc, (ValueError, TypeError)):  # Telethon's "cannot find any entity"
        return _result(Outcome.CHAT_INVALID if about == "chat" else Outcome.USER_INVALID, "UNRESOLVED")
    # Connection trouble while resolving: the action itself was never sent.
    return _result(Outcome.TRANSIENT_ERROR, f"RESOLVE:{type(exc).__name__}")


def _invite_outcome(answer: Any) -> InviteResult:
    """An invite's answer: added, refused by privacy (missing_invitees), or no change."""
    from telethon.tl import types

    # messages.InvitedUsers since layer 166 (Telethon 1.35); bare Updates before.
    if getattr(answer, "missing_invitees", None):
        return _result(Outcome.PRIVACY_RESTRICTED, "MISSING_INVITEES")
    updates = getattr(answer, "updates", answer)
    # An invite that changed nothing (the user is already in) comes back as
    # empty Updates; nobody is counted invited who was not added.
    if isinstance(updates, types.Updates) and not updates.updates:
        return _result(Outcome.ALREADY_MEMBER, "NOT_ADDED")
    return _result(Outcome.INVITED)


def _chat_ref(chat: str) -> str:
    """``@name`` → ``name``; Telethon parses ``name`` and the ``t.me/`` link forms itself."""
    name = chat.strip()
    return name.removeprefix("@")


# ---- the adapter -------------------------------------------------------------------

Work = Callable[["TelegramClientLike"], Awaitable[InviteResult]]


@register("telethon")
class TelethonAdapter(PlatformAdapter):
    """Telegram user accounts driven in-process through Telethon, one client per account.

    Registered as ``telethon``; its results say platform ``telegram``, since
    that is where the targets are.
    """

    def __init__(
        self,
        config: TelethonConfig,
        *,
        client_factory: ClientFactory | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if client_factory is None:
            _require_telethon()  # a worker configured for Telethon without it fails at start, not per target
        self._config = config
        self._accounts = {a.id: a for a in config.accounts}
        self._factory = client_factory or connect_telethon
        self._clock = clock
        self._clients: dict[str, TelegramClientLike] = {}
        self._connecting: dict[str, asyncio.Lock] = {}
        # key → the call, as a task: a slow call finishes (and is remembered)
        # even after its caller stopped waiting.
        self._calls: OrderedDict[str, asyncio.Task[InviteResult]] = OrderedDict()
        self._states: dict[str, PlatformAccount] = {}

    def __repr__(self) -> str:  # no sessions, no api_hash
        return f"TelethonAdapter(accounts={sorted(self._accounts)})"

    # ---- PlatformAdapter ----------------------------------------------------

    async def send_invite(self, account_id: str, chat: str, target: TargetRef, idempotency_key: str) -> InviteResult:
        return await self._once(idempotency_key, account_id, "invite", lambda c: self._invite(c, chat, target))

    async def send_message(self, account_id: str, target: TargetRef, text: str, idempotency_key: str) -> InviteResult:
        return await self._once(idempotency_key, account_id, "message", lambda c: self._message(c, target, text))

    async def lookup(self, idempotency_key: str) -> InviteResult | None:
        """The answer of this process's call with the key. Never None (see the module docstring).

        Raises :class:`DeliveryUnknown` when there is no answer to give.
        """
        call = self._calls.get(idempotency_key)
        if call is None:
            raise DeliveryUnknown(idempotency_key, "no call with this key was made by this process")
        try:
            async with asyncio.timeout(self._config.lookup_wait_seconds):
                result = await asyncio.shield(call)
        except TimeoutError:
            raise DeliveryUnknown(idempotency_key, "the call is still running") from None
        if delivery_unknown(result):
            raise DeliveryUnknown(idempotency_key, f"the connection failed during the call ({result.raw_error})")
        return result

    async def resolve_target(self, account_id: str, target: TargetRef) -> ResolvedTarget | InviteResult:
        """Asks Telegram (``get_entity``), refreshing this account's cache of the user."""
        from telethon import utils

        try:
            client = await self._client(account_id)
            entity = await client.get_entity(target.username or target.user_id or target.phone)
        except Exception as exc:
            if not _is_rpc_error(exc):
                return _result(Outcome.TRANSIENT_ERROR, type(exc).__name__)
            return map_telethon_error(exc, "message")
        return ResolvedTarget(
            user_id=utils.get_peer_id(entity), username=getattr(entity, "username", None),
            bot=bool(getattr(entity, "bot", False)),
        )

    async def account_status(self, account_id: str) -> PlatformAccount:
        """The state learnt from the account's last answers, else a harmless probe of its session.

        Raises KeyError for an account without a session, and whatever the
        connection raises when the state cannot be known.
        """
        account = self._account(account_id)
        known = self._states.get(account_id)
        if known is not None and (known.status is not AccountState.COOLDOWN or self._cooling(known)):
            return known
        from telethon.tl.functions.updates import GetStateRequest

        try:
            client = await self._client(account_id)
            await client(GetStateRequest())  # needs a live authorization, changes nothing
        except Exception as exc:
            if not _is_rpc_error(exc):
                raise
            learnt = self._learn(account_id, map_telethon_error(exc, "message"))
            if learnt is None:
                raise
            return learnt
        self._states.pop(account_id, None)
        return PlatformAccount(id=account.id, platform=PLATFORM, status=AccountState.ACTIVE, user_id=account.owner)

    async def list_accounts(self, user_id: str) -> list[PlatformAccount]:
        """The configured accounts of ``user_id``, in the state last learnt (no network)."""
        return [
            self._states.get(a.id)
            or PlatformAccount(id=a.id, platform=PLATFORM, status=AccountState.ACTIVE, user_id=a.owner)
            for a in self._config.accounts
            if a.owner == user_id
        ]

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            try:
                await client.disconnect()
            except Exception:  # closing down: one bad socket must not keep the others open
                log.warning("could not disconnect a Telethon client", exc_info=True)

    # ---- one call per key -----------------------------------------------------

    async def _once(self, key: str, account_id: str, action: Action, work: Work) -> InviteResult:
        call = self._calls.get(key)
        if call is None:
            call = asyncio.ensure_future(self._run(account_id, action, work))
            self._remember(key, call)
        try:
            async with asyncio.timeout(self._config.call_timeout_seconds):
                return await asyncio.shield(call)
        except TimeoutError as exc:
            # The call goes on; lookup() gets its answer if it comes.
            return _unknown_delivery(exc)

    def _remember(self, key: str, call: asyncio.Task[InviteResult]) -> None:
        self._calls[key] = call
        while len(self._calls) > self._config.remembered_calls:
            oldest_key, oldest = next(iter(self._calls.items()))
            if not oldest.done():
                break  # a running call is never forgotten
            del self._calls[oldest_key]

    async def _run(self, account_id: str, action: Action, work: Work) -> InviteResult:
        if account_id not in self._accounts:
            # No session for it: as dead as a revoked one (disable, re-assign, alert).
            result = _result(Outcome.SESSION_INVALID, "UNKNOWN_ACCOUNT")
        else:
            result = await self._attempt(account_id, action, work)
        self._learn(account_id, result)
        return result

    async def _attempt(self, account_id: str, action: Action, work: Work) -> InviteResult:
        try:
            client = await self._client(account_id)
        except BadSession:
            log.error("account %s has a malformed session string: disabled", account_id)
            return _result(Outcome.SESSION_INVALID, "BAD_SESSION")
        except Exception as exc:  # noqa: BLE001 — any failure to connect is a verdict, not a crash
            if _is_rpc_error(exc):
                return map_telethon_error(exc, action)
            # Could not connect: nothing was sent, a later attempt is safe.
            log.warning("Telethon could not connect account %s: %s", account_id, type(exc).__name__)
            return _result(Outcome.TRANSIENT_ERROR, f"CONNECT:{type(exc).__name__}")
        try:
            return await work(client)
        except Exception as exc:  # a bug here must not read as "never sent"
            log.exception("Telethon %s of account %s failed unexpectedly", action, account_id)
            return _unknown_delivery(exc)

    async def _client(self, account_id: str) -> TelegramClientLike:
        account = self._account(account_id)
        async with self._connecting.setdefault(account_id, asyncio.Lock()):
            client = self._clients.get(account_id)
            if client is None:
                client = await self._factory(account, self._config)
                self._clients[account_id] = client
            elif not client.is_connected():
                await client.connect()
            return client

    def _account(self, account_id: str) -> TelethonAccount:
        try:
            return self._accounts[account_id]
        except KeyError:
            raise KeyError(f"no Telethon session configured for account {account_id!r}") from None

    # ---- actions -----------------------------------------------------------------

    async def _invite(self, client: TelegramClientLike, chat: str, target: TargetRef) -> InviteResult:
        from telethon import utils
        from telethon.tl import types
        from telethon.tl.functions.channels import InviteToChannelRequest
        from telethon.tl.functions.messages import AddChatUserRequest

        for fresh in (False, True):
            try:
                peer = await self._resolve_chat(client, chat, fresh)
                user = await self._resolve_user(client, target, fresh)
                request: Any
                if isinstance(peer, types.InputPeerChat):
                    request = AddChatUserRequest(chat_id=peer.chat_id, user_id=user, fwd_limit=FORWARD_HISTORY)
                else:
                    request = InviteToChannelRequest(channel=utils.get_input_channel(peer), users=[user])
                answer = await self._act(client(request), "invite", may_reresolve=not fresh)
            except _Verdict as verdict:
                return verdict.result
            except _Reresolve:
                continue
            return _invite_outcome(answer)
        raise AssertionError("unreachable: the fresh round never re-resolves")

    async def _message(self, client: TelegramClientLike, target: TargetRef, text: str) -> InviteResult:
        for fresh in (False, True):
            try:
                user = await self._resolve_user(client, target, fresh)
                await self._act(client.send_message(user, text), "message", may_reresolve=not fresh)
            except _Verdict as verdict:
                return verdict.result
            except _Reresolve:
                continue
            return _result(Outcome.MESSAGE_SENT)
        raise AssertionError("unreachable: the fresh round never re-resolves")

    async def _act(self, request: Awaitable[Any], action: Action, *, may_reresolve: bool) -> Any:
        """Await the one request that acts: Telegram's errors become verdicts, a lost answer unknown."""
        try:
            return await request
        except Exception as exc:
            if _is_rpc_error(exc):
                name, _ = rpc_error_name(exc)
                if may_reresolve and name in _RERESOLVE:
                    log.info("Telegram answered %s: resolving again with the same account", name)
                    raise _Reresolve from exc
                raise _Verdict(map_telethon_error(exc, action)) from exc
            if isinstance(exc, _IN_FLIGHT_FAILURES):
                log.warning("Telethon %s: connection lost during the call (%s)", action, type(exc).__name__)
                raise _Verdict(_unknown_delivery(exc)) from exc
            raise

    async def _resolve_chat(self, client: TelegramClientLike, chat: str, fresh: bool) -> Any:
        from telethon.tl import types

        peer = await self._resolve(client, _chat_ref(chat), fresh, about="chat")
        if not isinstance(peer, (types.InputPeerChannel, types.InputPeerChat)):
            raise _Verdict(_result(Outcome.CHAT_INVALID, "NOT_A_GROUP"))
        return peer

    async def _resolve_user(self, client: TelegramClientLike, target: TargetRef, fresh: bool) -> Any:
        from telethon import utils

        # A username resolves with any account; an id or a phone only from this
        # account's own cache (it must have met the user, or have them as a contact).
        ref: Any = target.username or target.user_id or target.phone
        peer = await self._resolve(client, ref, fresh, about="user")
        try:
            return utils.get_input_user(peer)
        except TypeError:
            raise _Verdict(_result(Outcome.USER_INVALID, "NOT_A_USER")) from None

    async def _resolve(self, client: TelegramClientLike, ref: Any, fresh: bool, about: Literal["chat", "user"]) -> Any:
        from telethon import utils

        try:
            if fresh:  # get_entity asks Telegram and refreshes the session's cache
                return utils.get_input_peer(await client.get_entity(ref))
            return await client.get_input_entity(ref)
        except Exception as exc:
            raise _Verdict(_resolution_failure(exc, about)) from exc

    # ---- account state learnt from answers -----------------------------------------

    def _learn(self, account_id: str, result: InviteResult) -> PlatformAccount | None:
        """Remember what an answer says about the account, for account_status and list_accounts."""
        if result.scope is Scope.ACCOUNT_DEAD:
            dead = AccountState.SESSION_INVALID if result.outcome is Outcome.SESSION_INVALID else AccountState.BANNED
            return self._state(account_id, dead, result)
        if result.scope is Scope.ACCOUNT_RESTRICTED:
            return self._state(account_id, AccountState.RESTRICTED, result)
        if result.scope is Scope.ACCOUNT_TEMPORARY:
            return self._state(account_id, AccountState.COOLDOWN, result)
        if result.scope is Scope.SUCCESS:
            self._states.pop(account_id, None)
        return None

    def _cooling(self, known: PlatformAccount) -> bool:
        return known.until is not None and known.until > self._clock()

    def _state(self, account_id: str, status: AccountState, result: InviteResult) -> PlatformAccount:
        account = self._accounts.get(account_id)
        until = self._clock() + timedelta(seconds=result.retry_after) if result.retry_after is not None else None
        known = PlatformAccount(
            id=account_id,
            platform=PLATFORM,
            status=status,
            user_id=account.owner if account else None,
            until=until,
            reason=result.raw_error,
        )
        self._states[account_id] = known
        return known
