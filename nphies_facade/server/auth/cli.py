"""Security commands: `clients add|list`, `token` (mint a local access token) and `audit verify`."""

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from ...resources.audit import verify_chain
from ...resources.sqlite.store import SqliteStore
from ..settings import Settings
from .clients import ClientError, ClientRecord, new_client
from .issuer import TokenIssuer
from .keys import ServerKey
from .scopes import narrow, split_scope_string


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(data_dir=args.data_dir) if args.data_dir is not None else Settings()


async def _with_store(settings: Settings, work: Callable[[SqliteStore], Awaitable[int]]) -> int:
    store = SqliteStore(settings.database_path)
    await store.open()
    try:
        return await work(store)
    finally:
        await store.close()


def _fail(message: str) -> int:
    print(f"nphies-facade: {message}", file=sys.stderr)
    return 2


def _clients_add(args: argparse.Namespace) -> int:
    jwks = None
    if args.jwks is not None:
        try:
            jwks = json.loads(args.jwks.read_text())
        except (OSError, ValueError) as exc:
            return _fail(f"cannot read the JWKS file: {exc}")
    claims = {
        "role": args.role,
        "region": args.region,
        "organization": args.organization,
        "fhirUser": args.fhir_user,
        "patient": args.patient,
    }
    try:
        client = new_client(args.id, args.scope, args.jwks_url, jwks, claims)
    except ClientError as exc:
        return _fail(str(exc))

    async def add(store: SqliteStore) -> int:
        await store.security().put_client(client.client_id, client.to_json())
        print(f"client {client.client_id} registered with scopes: {' '.join(client.scopes)}")
        return 0

    return asyncio.run(_with_store(_settings(args), add))


def _clients_list(args: argparse.Namespace) -> int:
    async def show(store: SqliteStore) -> int:
        for record in await store.security().list_clients():
            keys = record.get("jwks_url") or "inline JWKS"
            print(
                f"{record['client_id']}\t{' '.join(record['scopes'])}\t{keys}\t{json.dumps(record['claims'])}"
            )
        return 0

    return asyncio.run(_with_store(_settings(args), show))


def _token(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def mint(store: SqliteStore) -> int:
        record = await store.security().get_client(args.client)
        if record is None:
            return _fail(f"client {args.client} is not registered (nphies-facade clients add ...)")
        client = ClientRecord.from_json(record)
        granted = narrow(split_scope_string(args.scope), client.scopes)
        if not granted:
            return _fail("none of the requested scopes is registered for the client")
        key = ServerKey.load_or_create(settings.secrets_dir)
        base = settings.public_base_url
        issuer = TokenIssuer(
            key, f"{base}/auth", settings.auth_audience or base, settings.auth_token_lifetime
        )
        overrides = {"patient": args.patient, "fhirUser": args.fhir_user}
        print(issuer.mint(client, granted, overrides, args.lifetime).access_token)
        return 0

    return asyncio.run(_with_store(settings, mint))


def _audit_verify(args: argparse.Namespace) -> int:
    async def verify(store: SqliteStore) -> int:
        report = await verify_chain(store.security())
        if report.ok:
            print(f"audit chain intact: {report.records} records")
            return 0
        print(f"audit chain broken at record {report.broken_seq}: {report.reason}")
        return 1

    return asyncio.run(_with_store(_settings(args), verify))


def _data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="folder of the SQLite store (default ./data)")


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
    _data_dir(add)
    add.set_defaults(run=_clients_add)
    listing = actions.add_parser("list", help="list registered clients")
    _data_dir(listing)
    listing.set_defaults(run=_clients_list)

    token = commands.add_parser("token", help="mint an access token for a registered client (local use)")
    token.add_argument("--client", required=True, help="a registered client id")
    token.add_argument("--scope", required=True, help="scopes to grant (narrowed to the registration)")
    token.add_argument("--patient", help="patient context, e.g. Patient/1")
    token.add_argument("--fhir-user", help="fhirUser, e.g. Practitioner/9")
    token.add_argument("--lifetime", type=int, help="seconds until it expires (default the server's)")
    _data_dir(token)
    token.set_defaults(run=_token)

    audit = commands.add_parser("audit", help="the audit trail")
    audit_actions = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_actions.add_parser("verify", help="check the hash chain; names the first broken record")
    _data_dir(verify)
    verify.set_defaults(run=_audit_verify)
