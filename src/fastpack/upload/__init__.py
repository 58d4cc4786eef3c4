"""The single-pass multipart tee of SPEC §5.1: hash and upload the bytes in one read."""
