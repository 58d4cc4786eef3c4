"""`fastpack keygen --algorithm cosign|x509|pgp`."""

from __future__ import annotations

import argparse

from fastpack.cli.common import print_json
from fastpack.cli.sign import ALGORITHMS


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "keygen",
        help="make signing keys: cosign.key/.pub, a test CA + signer certificate, or an OpenPGP key",
        description="cosign: cosign.key (encrypted with COSIGN_PASSWORD, cosign's format) and cosign.pub. "
        "x509: ca.pem, ca.key, signer.pem, signer.key (ECDSA P-256, for testing). "
        "pgp: pgp-secret.asc (unprotected), pgp-public.asc and pgp-public.gpg (binary, for gpgv). "
        "Existing files are never overwritten.",
    )
    parser.add_argument("--algorithm", "-a", required=True, choices=ALGORITHMS, help="key type to generate")
    parser.add_argument("--output-dir", "-d", default=".", help="directory to write the keys into (default: .)")
    parser.add_argument("--name", help="identity: certificate CN (x509) or user ID (pgp, e.g. 'Name <mail>')")
    parser.add_argument("--json", action="store_true", help="print the files written as JSON on stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fastpack.sign.keygen import keygen

    files = keygen(args.algorithm, args.output_dir, name=args.name)
    if args.json:
        print_json({"algorithm": args.algorithm, "files": files})
    else:
        print("\n".join(files))
    return 0
