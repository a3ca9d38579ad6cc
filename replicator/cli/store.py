"""`replicator store encrypt|rotate-key|decrypt`: thin shells over replicator.encryption."""

from __future__ import annotations

from pathlib import Path

import click

from replicator.cli.output import CONTEXT_SETTINGS, emit, json_option, load


@click.group(context_settings=CONTEXT_SETTINGS)
def store() -> None:
    """Encryption of the snapshot store: encrypt a plain store, rotate its key, decrypt it."""


@store.command("encrypt", context_settings=CONTEXT_SETTINGS)
@json_option
@click.pass_context
def store_encrypt(ctx: click.Context, as_json: bool) -> None:
    """Rewrite a plain store encrypted with the configured key (atomic: old or new, never half)."""
    from replicator.encryption import encrypt_store

    emit(encrypt_store(load(ctx)), as_json)


@store.command("rotate-key", context_settings=CONTEXT_SETTINGS)
@click.option("--new-key-env", metavar="VARIABLE", help="Environment variable holding the new key.")
@click.option("--new-key-file", type=click.Path(path_type=Path, dir_okay=False),
              help="File holding the new key (mode 600, outside the storage folder).")
@json_option
@click.pass_context
def store_rotate_key(ctx: click.Context, new_key_env: str | None, new_key_file: Path | None,
                     as_json: bool) -> None:
    """Re-encrypt the store from the configured key to a new one; then point the config at it."""
    from replicator.encryption import RotateRequest, rotate_key

    emit(rotate_key(load(ctx), RotateRequest(new_key_env, new_key_file)), as_json)


@store.command("decrypt", context_settings=CONTEXT_SETTINGS)
@json_option
@click.pass_context
def store_decrypt(ctx: click.Context, as_json: bool) -> None:
    """Rewrite the encrypted store as a plain file with the configured key (atomic); then drop the key."""
    from replicator.encryption import decrypt_store

    emit(decrypt_store(load(ctx)), as_json)
