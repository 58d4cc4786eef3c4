"""`fastpack verify BUNDLE [--sha256 H|FILE] [--signature S --algorithm A (--key|--ca|--keyring)]`."""

from __future__ import annotations

import argparse

from fastpack.cli.common import print_json
from fastpack.cli.limits import add_limit_flags, limits_from_args

_ALGORITHMS = ("cosign", "x509", "pgp")
_LABELS = {"ok": "ok", "fail": "FAIL", "skip": "skip"}


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "verify",
        help="check a bundle: sha256, zstd frame, tar structure, manifest, signature",
        description="Check a bundle in one read; one line per check, exit 1 if any fails.",
    )
    parser.add_argument("bundle", metavar="BUNDLE", help="bundle.tar.zst to verify")
    parser.add_argument(
        "--sha256", metavar="HEX|SIDECAR", help="expected SHA-256 (default: the sidecar next to BUNDLE, if any)"
    )
    parser.add_argument("--signature", metavar="FILE", help="detached signature to verify (e.g. BUNDLE.SIGNATURE)")
    parser.add_argument("--algorithm", choices=_ALGORITHMS, help="signature algorithm")
    trust = parser.add_mutually_exclusive_group()
    trust.add_argument("--key", metavar="PUB", help="public key (cosign)")
    trust.add_argument("--ca", metavar="CA.pem", help="trusted CA certificates (x509)")
    trust.add_argument("--keyring", metavar="PUB", help="OpenPGP public key or keyring (pgp)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    add_limit_flags(parser)
    parser.set_defaults(func=run)


def _signature_request(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from fastpack.errors import UsageError
    from fastpack.verify import SignatureRequest

    trust = args.key or args.ca or args.keyring
    if args.signature is None:
        if args.algorithm or trust:
            raise UsageError("--algorithm/--key/--ca/--keyring need --signature")
        return None
    if args.algorithm is None:
        raise UsageError("--signature needs --algorithm (cosign, x509 or pgp)")
    if trust is None:
        raise UsageError("--signature needs the trust to check it against: --key, --ca or --keyring")
    return SignatureRequest(args.signature, args.algorithm, key=args.key, ca=args.ca, keyring=args.keyring)


def run(args: argparse.Namespace) -> int:
    from fastpack.verify import verify_bundle

    report = verify_bundle(
        args.bundle,
        expected_sha256=args.sha256,
        signature=_signature_request(args),
        limits=limits_from_args(args),
    )
    if args.json:
        print_json(report.to_json())
    else:
        for check in report.checks:
            print(f"{_LABELS[check.status]:<4} {check.name}: {check.message}")
        print(f"{report.path}: {'OK' if report.ok else 'FAILED'}")
    return 0 if report.ok else 1
