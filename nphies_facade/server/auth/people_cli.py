"""Commands for SMART App Launch: `users add|disable|enable|passwd|list` and `apps add|list|disable|enable`.

Passwords are read from a prompt or, with `--password-stdin`, from the first line of standard input;
they never appear on the command line. A confidential-symmetric app's secret is printed once.
"""

import argparse
import getpass
import json
import sys
from dataclasses import replace
from pathlib import Path

from ...resources.sqlite.store import SqliteStore
from ..cli_target import add_data_dir
from .accounts import AccountError, Accounts, UserRecord, hash_password, new_user
from .apps import APP_TYPES, LAUNCH_TYPES, AppError, AppRecord, new_app
from .apps import KIND as APP_KIND
from .cli import _fail, _settings, _with_store


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    try:
        first = getpass.getpass("password: ")
        again = getpass.getpass("again: ")
    except EOFError:
        raise AccountError(
            "no password was typed (or pass it on standard input with --password-stdin)"
        ) from None
    if again != first:
        raise AccountError("the passwords differ")
    return first


def _users_add(args: argparse.Namespace) -> int:
    try:
        user = new_user(
            args.username, args.fhir_user, _password(args), args.role, args.region, args.organization
        )
    except AccountError as exc:
        return _fail(str(exc))

    async def add(store: SqliteStore) -> int:
        if not await Accounts(store.security()).save(user, create=True):
            return _fail(f"user {user.username} exists (use passwd, enable or disable)")
        print(f"user {user.username} added as {user.fhir_user}")
        return 0

    return _with_store(_settings(args), add)


def _change_user(args: argparse.Namespace, change, done: str) -> int:
    async def work(store: SqliteStore) -> int:
        accounts = Accounts(store.security())
        user = await accounts.get(args.username)
        if user is None:
            return _fail(f"user {args.username} is not known")
        await accounts.save(change(user))
        print(f"user {user.username} {done}")
        return 0

    return _with_store(_settings(args), work)


def _users_disable(args: argparse.Namespace) -> int:
    return _change_user(args, lambda u: replace(u, disabled=True), "disabled; its tokens stop working")


def _users_enable(args: argparse.Namespace) -> int:
    return _change_user(args, lambda u: replace(u, disabled=False, failures=0, locked_until=0.0), "enabled")


def _users_passwd(args: argparse.Namespace) -> int:
    try:
        password_hash = hash_password(_password(args))
    except AccountError as exc:
        return _fail(str(exc))

    def change(user: UserRecord) -> UserRecord:
        return replace(user, password_hash=password_hash, failures=0, locked_until=0.0)

    return _change_user(args, change, "has a new password")


def _users_list(args: argparse.Namespace) -> int:
    async def show(store: SqliteStore) -> int:
        for user in await Accounts(store.security()).list():
            state = "disabled" if user.disabled else "active"
            attributes = " ".join(f"{k}={v}" for k, v in user.claims().items() if k != "fhirUser")
            print(f"{user.username}\t{user.fhir_user}\t{state}\t{attributes}")
        return 0

    return _with_store(_settings(args), show)


def _apps_add(args: argparse.Namespace) -> int:
    jwks = None
    if args.jwks is not None:
        try:
            jwks = json.loads(args.jwks.read_text())
        except (OSError, ValueError) as exc:
            return _fail(f"cannot read the JWKS file: {exc}")
    try:
        app, secret = new_app(
            args.id,
            args.name or args.id,
            args.type,
            args.redirect_uri,
            args.scope,
            args.launch,
            jwks,
            args.jwks_url,
        )
    except AppError as exc:
        return _fail(str(exc))

    async def add(store: SqliteStore) -> int:
        if not await store.security().put_record(
            APP_KIND, app.client_id, app.to_json(), create=not args.replace
        ):
            return _fail(f"app {app.client_id} exists (add --replace to replace it)")
        print(f"app {app.client_id} registered ({app.type}) with scopes: {' '.join(app.scopes)}")
        if secret:
            print(f"client secret (shown once, keep it safe): {secret}")
        return 0

    return _with_store(_settings(args), add)


def _apps_list(args: argparse.Namespace) -> int:
    async def show(store: SqliteStore) -> int:
        for record in await store.security().list_records(APP_KIND):
            app = AppRecord.from_json(record)
            state = "disabled" if app.disabled else "active"
            print(
                f"{app.client_id}\t{app.type}\t{state}\t{' '.join(app.redirect_uris)}\t{' '.join(app.scopes)}"
            )
        return 0

    return _with_store(_settings(args), show)


def _set_app_disabled(disabled: bool):
    def run(args: argparse.Namespace) -> int:
        async def work(store: SqliteStore) -> int:
            record = await store.security().get_record(APP_KIND, args.id)
            if record is None:
                return _fail(f"app {args.id} is not registered")
            await store.security().put_record(APP_KIND, args.id, {**record, "disabled": disabled})
            print(f"app {args.id} {'disabled' if disabled else 'enabled'}")
            return 0

        return _with_store(_settings(args), work)

    return run


def _user_commands(commands: argparse._SubParsersAction) -> None:
    users = commands.add_parser(
        "users", help="people who log in to SMART apps (built-in authorization server)"
    )
    actions = users.add_subparsers(dest="users_command", required=True)
    add = actions.add_parser("add", help="add a user linked to a Practitioner, Patient or RelatedPerson")
    add.add_argument("username", help="the login name (lower case)")
    add.add_argument(
        "--fhir-user", required=True, help="Practitioner/<id>, Patient/<id> or RelatedPerson/<id>"
    )
    add.add_argument("--role", help="role for the ABAC policy (practitioner, biller, patient ...)")
    add.add_argument("--region", help="region for the ABAC policy")
    add.add_argument("--organization", help="organization for the ABAC policy, e.g. Organization/7")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add_data_dir(add)
    add.set_defaults(run=_users_add)
    for name, run, text in (
        ("disable", _users_disable, "stop a user logging in; their live tokens stop working"),
        ("enable", _users_enable, "let a disabled or locked-out user log in again"),
        ("passwd", _users_passwd, "set a user's password"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("username")
        if name == "passwd":
            action.add_argument("--password-stdin", action="store_true", help="read it from standard input")
        add_data_dir(action)
        action.set_defaults(run=run)
    listing = actions.add_parser("list", help="list users")
    add_data_dir(listing)
    listing.set_defaults(run=_users_list)


def _app_commands(commands: argparse._SubParsersAction) -> None:
    apps = commands.add_parser("apps", help="SMART apps people use (built-in authorization server)")
    actions = apps.add_subparsers(dest="apps_command", required=True)
    add = actions.add_parser("add", help="register a public or confidential SMART app")
    add.add_argument("--id", required=True, help="the client id")
    add.add_argument("--name", help="the name users see on the consent screen")
    add.add_argument("--type", choices=APP_TYPES, default="public", help="public (PKCE only) or confidential")
    add.add_argument(
        "--redirect-uri", action="append", required=True, help="an exact redirect URI (repeatable)"
    )
    add.add_argument(
        "--scope", required=True, help='scopes it may be granted, e.g. "launch/patient patient/*.rs"'
    )
    add.add_argument("--launch", action="append", choices=LAUNCH_TYPES, help="launch types (default both)")
    add.add_argument("--jwks-url", help="confidential-asymmetric: URL of the app's JWKS")
    add.add_argument("--jwks", type=Path, help="confidential-asymmetric: file holding the app's JWKS")
    add.add_argument("--replace", action="store_true", help="replace an app registered with this id")
    add_data_dir(add)
    add.set_defaults(run=_apps_add)
    listing = actions.add_parser("list", help="list apps")
    add_data_dir(listing)
    listing.set_defaults(run=_apps_list)
    for name, disabled in (("disable", True), ("enable", False)):
        action = actions.add_parser(name, help=f"{name} an app")
        action.add_argument("--id", required=True)
        add_data_dir(action)
        action.set_defaults(run=_set_app_disabled(disabled))


def add_commands(commands: argparse._SubParsersAction) -> None:
    _user_commands(commands)
    _app_commands(commands)
