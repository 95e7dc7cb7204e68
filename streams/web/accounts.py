"""Account routes: the user's sender accounts from the Integration Service, with live limit state."""

from __future__ import annotations

from faust.web import Request, Response, View

from adapters.integration import IntegrationError
from models.api import AccountList, AccountListQuery, AccountView
from models.limits import ActionKind

from .context import Api
from .errors import HttpError, parse_query
from .limits import limit_view, outlooks


def register(api: Api) -> None:
    async def list_accounts(view: View, request: Request) -> Response:
        user = await api.owner(request)
        query = parse_query(request, AccountListQuery)
        try:
            accounts = await api.rt.adapter(query.platform).list_accounts(user)
        except IntegrationError as exc:
            raise HttpError(503, "integration_unavailable", f"the Integration Service did not answer: {exc}") from None
        found = await outlooks(api, [a.id for a in accounts], ActionKind.INVITE)
        items = [
            AccountView(id=a.id, platform=a.platform, status=a.status.value, until=a.until, reason=a.reason,
                        limits=limit_view(o))
            for a, o in zip(accounts, found, strict=True)
        ]
        return view.json(AccountList(items=items).model_dump(mode="json"))

    api.routes.add("GET", "/api/v1/accounts", list_accounts, tag="accounts",
                   summary="The user's sender accounts with their live limits and cooldowns",
                   query=AccountListQuery, responses={200: AccountList}, errors=(503,))
