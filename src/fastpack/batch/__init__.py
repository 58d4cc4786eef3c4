"""Monorepo mode: pack (and publish) many extensions at once, incrementally.

discover → shard → digest (stat fast path) → local / fleet cache → pack →
publish, on a bounded pool of workers; see issue 7 and `fastpack batch --help`.
"""
