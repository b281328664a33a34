#!/usr/bin/env python3
"""Prints the criterion medians of `cargo bench --bench verify` as Markdown
tables, with the ratios of issue 5's targets.

Usage: python3 benches/report.py [CRITERION_DIR]
(default: $CARGO_TARGET_DIR/criterion or target/criterion)
"""

import json
import os
import sys

ALGS = ["RS256", "PS256", "ES256", "EdDSA", "HS256"]
ROWS = [
    ("raw_verify", "raw signature verify (`jsonwebtoken::crypto::verify`)"),
    ("bare", "bare tower service (request + call + response)"),
    ("decode_value", "`jsonwebtoken::decode::<Value>`"),
    ("decode_typed", "`jsonwebtoken::decode::<PeerClaims>`"),
    ("verify_cache_off", "`Verify`, first-seen (cache off)"),
    ("verify_fresh", "`Verify`, first-seen (cache on: miss + insert)"),
    ("verify_cached", "`Verify`, repeated token (cache hit)"),
    ("verify_scopes_cached", "`Verify` + `RequireScopes`, repeated token"),
    ("verify_scopes_cache_off", "`Verify` + `RequireScopes`, cache off"),
]
# Peer figures quoted in issue 5 (µs): the best of jwt-authorizer 0.15 and a
# hand-written axum `from_fn` + decode, per algorithm.
PEERS = {"RS256": 18.2, "ES256": 39.3, "EdDSA": 28.1, "HS256": 4.2}


def median_ns(root, group, bench):
    path = os.path.join(root, group, bench, "new", "estimates.json")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)["median"]["point_estimate"]
    except (OSError, KeyError, ValueError):
        return None


def fmt(ns):
    if ns is None:
        return "–"
    if ns >= 1000:
        return f"{ns / 1000:.2f} µs"
    return f"{ns:.0f} ns"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def verdict(value, limit, at_most=True):
    if value is None:
        return "–"
    ok = value <= limit if at_most else value >= limit
    return f"{value:.2f} {'met' if ok else 'MISSED'}"


def main():
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(target, "criterion")
    m = {(g, b): median_ns(root, g, b) for g in ALGS for b, _ in ROWS}

    print("| per request (criterion median) | " + " | ".join(ALGS) + " |")
    print("|---|" + "---|" * len(ALGS))
    for bench, label in ROWS:
        cells = [fmt(m[(g, bench)]) for g in ALGS]
        print(f"| {label} | " + " | ".join(cells) + " |")

    print()
    print("| ratio (target) | " + " | ".join(ALGS) + " |")
    print("|---|" + "---|" * len(ALGS))

    def row(label, f):
        print(f"| {label} | " + " | ".join(f(g) for g in ALGS) + " |")

    def first_seen(bench, decode):
        def f(g):
            floor = None
            if m[(g, decode)] is not None and m[(g, "bare")] is not None:
                floor = m[(g, decode)] + m[(g, "bare")]
            return verdict(ratio(m[(g, bench)], floor), 1.05)
        return f

    row("first-seen, cache off ÷ (decode typed + bare) (≤ 1.05)",
        first_seen("verify_cache_off", "decode_typed"))
    row("first-seen, cache off ÷ (decode Value + bare) (≤ 1.05)",
        first_seen("verify_cache_off", "decode_value"))
    row("first-seen, cache on ÷ (decode typed + bare) (≤ 1.05)",
        first_seen("verify_fresh", "decode_typed"))
    row("repeated, cached ÷ bare (≤ 2)",
        lambda g: verdict(ratio(m[(g, "verify_cached")], m[(g, "bare")]), 2.0))
    row("repeated + scopes, cached ÷ bare (≤ 2)",
        lambda g: verdict(ratio(m[(g, "verify_scopes_cached")], m[(g, "bare")]), 2.0))

    def peers(g):
        if g not in PEERS or m[(g, "verify_cached")] is None:
            return "–"
        return verdict(PEERS[g] * 1000 / m[(g, "verify_cached")], 15.0, at_most=False)

    row("best peer (issue figures) ÷ cached (≥ 15)", peers)

    print()
    print("| other rows (criterion median) | |")
    print("|---|---|")
    for group, bench in [
        ("flood", "unknown_kid_remote"),
        ("flood", "unknown_kid_static"),
        ("claims", "parse_default"),
        ("claims", "parse_user"),
        ("claims", "verify_cached_default"),
        ("claims", "verify_cached_user"),
        ("claims", "axum_extract_default"),
        ("claims", "axum_extract_user"),
    ]:
        print(f"| `{group}/{bench}` | {fmt(median_ns(root, group, bench))} |")


if __name__ == "__main__":
    main()
