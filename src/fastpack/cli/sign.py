"""`fastpack sign BUNDLE --algorithm cosign|x509|pgp`."""

from __future__ import annotations

import argparse
import sys

from fastpack.cli.common import print_json

ALGORITHMS = ("cosign", "x509", "pgp")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "sign",
        help="sign a bundle (cosign, x509 CMS or OpenPGP), writing BUNDLE.SIGNATURE",
        description="Sign a bundle with a real signature that cosign/openssl/gpgv can verify. The key comes from "
        "--key or FASTPACK_SIGNING_KEY (x509 certificate: --cert or FASTPACK_SIGNING_CERT); encrypted cosign keys "
        "take their password from COSIGN_PASSWORD, or a prompt on a terminal.",
    )
    parser.add_argument("bundle", metavar="BUNDLE", help="bundle file to sign (e.g. bundle.tar.zst)")
    parser.add_argument("--algorithm", "-a", required=True, choices=ALGORITHMS, help="signature format")
    parser.add_argument("--key", "-k", help="private key: cosign.key / PKCS#8 PEM / OpenPGP secret key")
    parser.add_argument("--cert", help="x509: signer certificate (PEM)")
    parser.add_argument("--chain", help="x509: intermediate certificates to include (PEM)")
    parser.add_argument("--output", "-o", help="signature file to write (default: BUNDLE.SIGNATURE)")
    parser.add_argument("--bundle-out", help="cosign: also write a sigstore bundle JSON (v0.3) to this file")
    parser.add_argument(
        "--sha256", metavar="HEX|SIDECAR", help="expected SHA-256 (or sidecar file): refuse to sign if it differs"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    parser.add_argument("--quiet", "-q", action="store_true", help="print nothing on success")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fastpack.sidecar import parse_expected_sha256
    from fastpack.sign import sign_bundle

    result = sign_bundle(
        args.bundle,
        args.algorithm,
        key=args.key,
        cert=args.cert,
        chain=args.chain,
        expected_sha256=parse_expected_sha256(args.sha256) if args.sha256 else None,
        output=args.output,
        bundle_out=args.bundle_out,
    )
    if args.json:
        print_json(result.to_json())
    elif not args.quiet:
        print(result.path)
        print(f"signed {result.sha256} ({result.algorithm}, signer {result.signer})", file=sys.stderr)
    return 0
