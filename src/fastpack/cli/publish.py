"""`fastpack publish --bundle B [--manifest M]`: hash, check and upload a bundle in one read, then index it."""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

from fastpack.cli.common import add_output_flags, print_json
from fastpack.cli.server_publish import add_server_flags, run_server_publish, wants_server

_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_size(text: str) -> int:
    """Bytes, or a number with a K/M/G (KiB/MiB/GiB) suffix: `16MiB`, `8M`, `5242880`."""
    match = _SIZE.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"expected a size like 16MiB, 8M or 5242880, got {text!r}")
    return int(match.group(1)) * _UNITS[(match.group(2) or "")[:1].lower()]


def add_upload_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--part-size", type=parse_size, default=None, help="multipart part size (default 16MiB, minimum 5MiB)"
    )
    parser.add_argument("--concurrency", type=int, default=None, help="parts in flight at once (default 4)")


def upload_options(args: argparse.Namespace) -> dict[str, int]:
    from fastpack.store import DEFAULT_CONCURRENCY, DEFAULT_PART_SIZE

    return {
        "part_size": args.part_size or DEFAULT_PART_SIZE,
        "concurrency": args.concurrency or DEFAULT_CONCURRENCY,
    }


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "publish",
        help="publish a bundle (canonical objects + version index) to S3 or the local store",
        description=(
            "Reads the bundle once: hashes it, uploads it and checks its manifest in the same pass, and completes "
            "the upload only if everything is right. Store: --s3, --store, the STORAGE_S3_* environment, or the "
            "local store (FASTPACK_STORE, default ~/.local/share/fastpack/store); or --server / SERVER_BASE to go "
            "through a fastpack serve API."
        ),
    )
    parser.add_argument("--bundle", required=True, metavar="B", help="the bundle.tar.zst to publish")
    parser.add_argument(
        "--manifest", metavar="M", help="manifest.json expected inside the bundle (default: the bundle's own)"
    )
    parser.add_argument(
        "--declared-hash",
        metavar="H|SIDECAR",
        help="expected SHA-256 (64 hex, or a sha256sum sidecar file); uploads straight to the canonical key",
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--s3", metavar="s3://BUCKET[/PREFIX]", help="S3 bucket (endpoint, keys from STORAGE_S3_*)")
    target.add_argument("--store", metavar="DIR", help="local store directory")
    add_server_flags(parser, target)
    parser.add_argument("--signature", metavar="FILE", help="signature file to store with the bundle")
    parser.add_argument(
        "--signature-algorithm", choices=("cosign", "x509", "pgp"), help="algorithm of --signature (default: detect)"
    )
    parser.add_argument(
        "--trust",
        metavar="PATH",
        help="trust bundle (keys/certs/keyrings); the signature must verify against it (default: SIGNING_TRUST_BUNDLE)",
    )
    add_upload_flags(parser)
    add_output_flags(parser)
    parser.set_defaults(func=run)


def resolve_store(s3: str | None, store_dir: str | None) -> Any:
    from fastpack.store import store_from_env, store_from_url

    if s3:
        if not s3.startswith("s3://"):
            from fastpack.errors import UsageError

            raise UsageError(f"--s3 expects s3://bucket[/prefix], got {s3!r}")
        return store_from_url(s3)
    if store_dir:
        return store_from_url(store_dir)
    return store_from_env()


def _signature(args: argparse.Namespace) -> Any:
    from fastpack.errors import InputError, UsageError
    from fastpack.publish import SignatureInput

    if args.signature is None:
        if args.signature_algorithm:
            raise UsageError("--signature-algorithm given without --signature")
        return None
    try:
        with open(args.signature, encoding="utf-8") as handle:
            text = handle.read(1 << 20)
    except FileNotFoundError:
        raise InputError("signature file not found", path=args.signature) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read signature: {exc}", path=args.signature) from None
    algorithm = args.signature_algorithm
    if algorithm is None:
        from fastpack.sign import detect_algorithm

        algorithm = detect_algorithm(text)
        if algorithm is None:
            raise UsageError("cannot tell the signature's algorithm: pass --signature-algorithm", path=args.signature)
    return SignatureInput(text, algorithm)


def _trust(path: str | None) -> Any:
    path = path or os.environ.get("SIGNING_TRUST_BUNDLE") or None
    if path is None:
        return None
    from fastpack.sign.trust import Trust

    return Trust.load(path)


def run(args: argparse.Namespace) -> int:
    from fastpack.publish import publish
    from fastpack.sidecar import parse_expected_sha256

    signature = _signature(args)
    if wants_server(args):
        return run_server_publish(args, signature)
    declared = parse_expected_sha256(args.declared_hash) if args.declared_hash else None
    trust = _trust(args.trust)
    store = resolve_store(args.s3, args.store)
    result = publish(
        args.bundle,
        args.manifest,
        store,
        declared_hash=declared,
        signature=signature,
        trust=trust,
        quiet=args.quiet or args.json,
        **upload_options(args),
    )
    print_json(result.to_json())
    if not (args.quiet or args.json):
        action = "uploaded" if result.uploaded else "already stored"
        print(
            f"published {result.extension}@{result.version} ({result.size} bytes, {action}) to {store.url}",
            file=sys.stderr,
        )
    return 0


def publish_while_packing(args: argparse.Namespace) -> int:
    """`pack DIR OUT --publish …`: OUT is written and uploaded (to staging) in the same pass, then published."""
    from fastpack.cli.pack import pack_options
    from fastpack.errors import InputError, UsageError
    from fastpack.manifest import MANIFEST_NAME, read_manifest_file
    from fastpack.pack import pack
    from fastpack.publish import publish_staged_pack
    from fastpack.store import new_staging_key
    from fastpack.upload.tee import UploadResult, UploadSink

    if not args.validate:
        raise UsageError("--publish needs the manifest validation that --no-validate skips")
    if args.publish and not args.publish.startswith("s3://"):
        raise UsageError(f"--publish expects s3://bucket[/prefix], got {args.publish!r}")
    store = resolve_store(args.publish, args.publish_store)
    manifest_path = os.path.join(args.dir, MANIFEST_NAME)
    manifest = read_manifest_file(manifest_path)
    store.head(new_staging_key())  # credentials, bucket and endpoint fail here, before any packing
    options = upload_options(args)
    sink = UploadSink(store, new_staging_key(), part_size=options["part_size"], concurrency=options["concurrency"])
    try:
        result = pack(args.dir, args.out, extra_sinks=[sink], **pack_options(args))
    except BaseException:
        sink.abort()
        raise
    staged = UploadResult(sink.key, result.sha256, result.size, True)
    if read_manifest_file(manifest_path) != manifest:
        store.delete(sink.key)
        raise InputError("manifest.json changed while packing; not published", path=manifest_path)
    published = publish_staged_pack(store, staged, manifest, None, label=result.path)
    if args.json:
        print_json({**result.to_json(), "publish": published.to_json()})
    elif not args.quiet:
        print(f"{result.sha256}  {result.path}")
        action = "uploaded" if published.uploaded else "already stored"
        print(
            f"{result.entries} entries, {result.tar_size} → {result.size} bytes, {result.backend} backend, "
            f"{result.seconds:.2f}s; published {published.extension}@{published.version} ({action}) to {store.url}",
            file=sys.stderr,
        )
    return 0
