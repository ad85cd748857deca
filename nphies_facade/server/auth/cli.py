"""Security commands: `clients add|list|disable|enable|remove|rotate`, `token` (mint a local access
token) and `audit verify`. Each change to a client is audited (subtype client-add, client-disable ...)."""

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from ...resources.audit import AuditEntry, Auditor, verify_chain
from ...resources.context import RequestContext
from ...resources.sqlite.store import SqliteStore
from ..cli_target import NoStore, add_data_dir, add_server_options, existing_store, say, settings_from
from ..settings import Settings
from .clients import ACTIVE, DISABLED, ClientError, ClientRecord, new_client
from .issuer import TokenIssuer
from .keys import ServerKey
from .scopes import narrow, split_scope_string


def _settings(args: argparse.Namespace) -> Settings:
    return settings_from(args)


def _with_store(settings: Settings, work: Callable[[SqliteStore], Awaitable[int]]) -> int:
    """Runs `work` on the data dir's store; fails (exit 2) when there is none, never creating one."""
    try:
        path = existing_store(settings)
    except NoStore as exc:
        return _fail(str(exc))
    say(f"store {path}")
    return asyncio.run(_on_store(path, work))


async def _on_store(path: Path, work: Callable[[SqliteStore], Awaitable[int]]) -> int:
    store = SqliteStore(path)
    await store.open()
    try:
        return await work(store)
    finally:
        await store.close()


def _fail(message: str) -> int:
    print(f"nphies-facade: {message}", file=sys.stderr)
    return 2


async def _audit_change(
    store: SqliteStore, settings: Settings, action: str, what: str, client_id: str
) -> None:
    from .runtime import audit_key  # the runtime module pulls in the server's HTTP stack

    auditor = Auditor(store, audit_key(settings))
    ctx = RequestContext(actor=f"cli:{getpass.getuser()}", client_id=client_id)
    await auditor.record_failure(ctx, AuditEntry(action, f"client-{what}", detail={"client": client_id}))


def _read_jwks(path: Path | None) -> dict | None:
    if path is None:
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ClientError(f"cannot read the JWKS file: {exc}") from None


def _clients_add(args: argparse.Namespace) -> int:
    try:
        jwks = _read_jwks(args.jwks)
    except ClientError as exc:
        return _fail(str(exc))
    claims = {
        "role": args.role,
        "region": args.region,
        "organization": args.organization,
        "fhirUser": args.fhir_user,
        "patient": args.patient,
    }
    try:
        client = new_client(args.id, args.scope, args.jwks_url, jwks, claims).reregistered()
    except ClientError as exc:
        return _fail(str(exc))

    settings = _settings(args)

    async def add(store: SqliteStore) -> int:
        existing = await store.security().get_client(client.client_id)
        if existing is not None and not args.replace:
            return _fail(
                f"client {client.client_id} is already registered; add --replace to replace it "
                "(its tokens stop working), or use clients rotate to change its keys"
            )
        await store.security().put_client(client.client_id, client.to_json())
        await _audit_change(
            store, settings, "U" if existing else "C", "replace" if existing else "add", client.client_id
        )
        verb = "replaced" if existing else "registered"
        print(f"client {client.client_id} {verb} with scopes: {' '.join(client.scopes)}")
        return 0

    return _with_store(settings, add)


def _clients_list(args: argparse.Namespace) -> int:
    async def show(store: SqliteStore) -> int:
        for record in await store.security().list_clients():
            keys = record.get("jwks_url") or "inline JWKS"
            status = record.get("status", ACTIVE)
            print(
                f"{record['client_id']}\t{status}\t{' '.join(record['scopes'])}\t{keys}\t"
                f"{json.dumps(record['claims'])}"
            )
        return 0

    return _with_store(_settings(args), show)


Change = Callable[[ClientRecord, argparse.Namespace], ClientRecord]


def _change_client(args: argparse.Namespace, what: str, change: Change) -> int:
    """Loads the client, applies `change`, stores and audits it."""
    settings = _settings(args)

    async def run(store: SqliteStore) -> int:
        record = await store.security().get_client(args.id)
        if record is None:
            return _fail(f"client {args.id} is not registered")
        try:
            changed = change(ClientRecord.from_json(record), args)
        except ClientError as exc:
            return _fail(str(exc))
        await store.security().put_client(args.id, changed.to_json())
        await _audit_change(store, settings, "U", what, args.id)
        print(f"client {args.id} {what}d")
        return 0

    return _with_store(settings, run)


def _clients_disable(args: argparse.Namespace) -> int:
    return _change_client(args, "disable", lambda client, _: client.with_status(DISABLED))


def _clients_enable(args: argparse.Namespace) -> int:
    return _change_client(args, "enable", lambda client, _: client.with_status(ACTIVE))


def _rotated(client: ClientRecord, args: argparse.Namespace) -> ClientRecord:
    rotated = client.with_keys(args.jwks_url, _read_jwks(args.jwks))
    return rotated.reregistered() if args.revoke_tokens else rotated


def _clients_rotate(args: argparse.Namespace) -> int:
    return _change_client(args, "rotate", _rotated)


def _clients_remove(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def remove(store: SqliteStore) -> int:
        if not await store.security().delete_client(args.id):
            return _fail(f"client {args.id} is not registered")
        await _audit_change(store, settings, "D", "remove", args.id)
        print(f"client {args.id} removed; its tokens no longer work")
        return 0

    return _with_store(settings, remove)


class TokenRefused(Exception):
    """No token can be minted for the client and scopes asked for."""


async def mint_token(
    store: SqliteStore,
    settings: Settings,
    client_id: str,
    scope: str,
    context: dict[str, str | None] | None = None,
    lifetime: int | None = None,
) -> str:
    """A token signed with the server's key for the server `settings` names (its issuer on stderr)."""
    record = await store.security().get_client(client_id)
    if record is None:
        raise TokenRefused(f"client {client_id} is not registered (nphies-facade clients add ...)")
    client = ClientRecord.from_json(record)
    if not client.active:
        raise TokenRefused(f"client {client_id} is disabled (nphies-facade clients enable {client_id})")
    granted = narrow(split_scope_string(scope), client.scopes)
    if not granted:
        raise TokenRefused("none of the requested scopes is registered for the client")
    key = ServerKey.load_or_create(settings.secrets_dir)
    base = settings.public_base_url
    audience = settings.auth_audience or base
    issuer = TokenIssuer(key, f"{base}/auth", audience, settings.auth_token_lifetime)
    say(f"issuer {base}/auth, audience {audience} (--base-url or --host/--port must match the server)")
    return issuer.mint(client, granted, context or {}, lifetime).access_token


def _token(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def mint(store: SqliteStore) -> int:
        context = {"patient": args.patient, "fhirUser": args.fhir_user}
        try:
            print(await mint_token(store, settings, args.client, args.scope, context, args.lifetime))
        except TokenRefused as exc:
            return _fail(str(exc))
        return 0

    return _with_store(settings, mint)


def _audit_verify(args: argparse.Namespace) -> int:
    async def verify(store: SqliteStore) -> int:
        report = await verify_chain(store.security())
        if report.ok:
            print(f"audit chain intact: {report.records} records")
            return 0
        print(f"audit chain broken at record {report.broken_seq}: {report.reason}")
        return 1

    return _with_store(_settings(args), verify)


def add_commands(commands: argparse._SubParsersAction) -> None:
    clients = commands.add_parser("clients", help="clients of the built-in authorization server")
    actions = clients.add_subparsers(dest="clients_command", required=True)
    add = actions.add_parser("add", help="register a SMART Backend Services client")
    add.add_argument("--id", required=True, help="the client id")
    keys = add.add_mutually_exclusive_group(required=True)
    keys.add_argument("--jwks-url", help="URL of the client's JWKS (public keys)")
    keys.add_argument("--jwks", type=Path, help="file holding the client's JWKS")
    add.add_argument("--scope", required=True, help='scopes it may be granted, e.g. "system/*.rs"')
    add.add_argument("--role", help="role claim of its tokens (practitioner, biller, auditor ...)")
    add.add_argument("--region", help="region claim of its tokens")
    add.add_argument("--organization", help="organization claim, e.g. Organization/7")
    add.add_argument("--fhir-user", help="fhirUser claim, e.g. Practitioner/9")
    add.add_argument("--patient", help="patient context claim, e.g. Patient/1")
    add.add_argument(
        "--replace", action="store_true", help="replace an existing registration (its tokens stop working)"
    )
    add_data_dir(add)
    add.set_defaults(run=_clients_add)
    listing = actions.add_parser("list", help="list registered clients and their status")
    add_data_dir(listing)
    listing.set_defaults(run=_clients_list)
    for name, run, text in (
        ("disable", _clients_disable, "disable a client: no new tokens, its live tokens stop at once"),
        ("enable", _clients_enable, "enable a disabled client again"),
        ("remove", _clients_remove, "remove a client: its live tokens stop at once"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("id", help="the client id")
        add_data_dir(action)
        action.set_defaults(run=run)
    rotate = actions.add_parser(
        "rotate", help="new keys for a client (without --jwks/--jwks-url: fetch its JWKS URL again)"
    )
    rotate.add_argument("id", help="the client id")
    new_keys = rotate.add_mutually_exclusive_group()
    new_keys.add_argument("--jwks-url", help="the new URL of the client's JWKS")
    new_keys.add_argument("--jwks", type=Path, help="file holding the client's new JWKS")
    rotate.add_argument(
        "--revoke-tokens", action="store_true", help="also stop the tokens issued before the rotation"
    )
    add_data_dir(rotate)
    rotate.set_defaults(run=_clients_rotate)

    token = commands.add_parser("token", help="mint an access token for a registered client (local use)")
    token.add_argument("--client", required=True, help="a registered client id")
    token.add_argument("--scope", required=True, help="scopes to grant (narrowed to the registration)")
    token.add_argument("--patient", help="patient context, e.g. Patient/1")
    token.add_argument("--fhir-user", help="fhirUser, e.g. Practitioner/9")
    token.add_argument("--lifetime", type=int, help="seconds until it expires (default the server's)")
    add_data_dir(token)
    add_server_options(token)
    token.set_defaults(run=_token)

    audit = commands.add_parser("audit", help="the audit trail")
    audit_actions = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_actions.add_parser("verify", help="check the hash chain; names the first broken record")
    add_data_dir(verify)
    verify.set_defaults(run=_audit_verify)
