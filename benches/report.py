#!/usr/bin/env python3
"""Prints the criterion medians of `cargo bench --bench verify` as Markdown
tables, with the ratios against the targets of BENCHMARKS.md.

Usage: python3 benches/report.py [CRITERION_DIR ...]
(default: $CARGO_TARGET_DIR/criterion or target/criterion)

With several directories (copies of target/criterion after separate runs),
each figure is the median of the runs' medians, and each ratio is computed
within each run (both sides from the same run) and shown as the median of
the runs, with the lowest and highest in brackets.
"""

import json
import os
import statistics
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
OTHER = [
    ("flood", "unknown_kid_remote", "unknown kid, remote key set, cooldown active (401)"),
    ("flood", "unknown_kid_static", "unknown kid, static key set (401)"),
    ("claims", "parse_default", "parse payload into `Claims`"),
    ("claims", "parse_user", "parse payload into `Claims<UserClaims>`"),
    ("claims", "verify_cached_default", "`Verify` cache hit, `Claims`"),
    ("claims", "verify_cached_user", "`Verify` cache hit, `Claims<UserClaims>`"),
    ("claims", "axum_extract_default", "axum extractor `Claims`"),
    ("claims", "axum_extract_user", "axum extractor `Claims<UserClaims>`"),
    ("axum", "router_bare", "axum router, no auth"),
    ("axum", "router_verify_cached", "axum router + `VerifyLayer`, repeated token"),
    ("axum", "router_verify_scopes_cached",
     "axum router + `VerifyLayer` + `RequireScopes`, repeated token"),
    ("axum", "peer_from_fn_decode_RS256", "axum router + `from_fn` + decode, RS256"),
    ("axum", "peer_from_fn_decode_ES256", "axum router + `from_fn` + decode, ES256"),
    ("axum", "peer_from_fn_decode_EdDSA", "axum router + `from_fn` + decode, EdDSA"),
    ("axum", "peer_from_fn_decode_HS256", "axum router + `from_fn` + decode, HS256"),
]
# Reference peer figures (µs), fixed with the targets: the best of
# jwt-authorizer 0.15 and a hand-written axum `from_fn` + decode, per
# algorithm.
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


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main():
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    roots = sys.argv[1:] or [os.path.join(target, "criterion")]

    def get(group, bench):
        """The per-run medians of one benchmark."""
        return [median_ns(r, group, bench) for r in roots]

    def fig(group, bench):
        return fmt(med(get(group, bench)))

    runs = f" ({len(roots)} runs)" if len(roots) > 1 else ""
    print(f"| per request, criterion median{runs} | " + " | ".join(ALGS) + " |")
    print("|---|" + "---|" * len(ALGS))
    for bench, label in ROWS:
        print(f"| {label} | " + " | ".join(fig(g, bench) for g in ALGS) + " |")

    def ratio_cell(per_run, limit, at_most=True):
        per_run = [v for v in per_run if v is not None]
        if not per_run:
            return "–"
        m = statistics.median(per_run)
        ok = m <= limit if at_most else m >= limit
        spread = f" [{min(per_run):.2f}–{max(per_run):.2f}]" if len(per_run) > 1 else ""
        return f"{m:.2f}{spread} {'met' if ok else '**missed**'}"

    def div(a, b):
        return None if a is None or b is None or b == 0 else a / b

    def plus(a, b):
        return None if a is None or b is None else a + b

    print()
    print("| ratio, within each run (target) | " + " | ".join(ALGS) + " |")
    print("|---|" + "---|" * len(ALGS))

    def row(label, per_run_of_alg, limit, at_most=True):
        cells = [ratio_cell(per_run_of_alg(g), limit, at_most) for g in ALGS]
        print(f"| {label} | " + " | ".join(cells) + " |")

    def over(bench, floor_a, floor_b=None):
        def f(g):
            a, fa = get(g, bench), get(g, floor_a)
            fb = get(g, floor_b) if floor_b else [0] * len(roots)
            return [div(x, plus(y, z)) for x, y, z in zip(a, fa, fb)]
        return f

    row("first-seen, cache off ÷ (decode typed + bare) (≤ 1.05)",
        over("verify_cache_off", "decode_typed", "bare"), 1.05)
    row("first-seen, cache off ÷ (decode `Value` + bare) (≤ 1.05)",
        over("verify_cache_off", "decode_value", "bare"), 1.05)
    row("first-seen, cache on ÷ (decode typed + bare) (≤ 1.05)",
        over("verify_fresh", "decode_typed", "bare"), 1.05)
    row("repeated, cached ÷ bare tower service (≤ 2)",
        over("verify_cached", "bare"), 2.0)
    row("repeated + scopes, cached ÷ bare tower service (≤ 2)",
        over("verify_scopes_cached", "bare"), 2.0)

    def peers(g):
        if g not in PEERS:
            return []
        return [div(PEERS[g] * 1000, x) for x in get(g, "verify_cached")]

    row("reference peer figure ÷ cached (≥ 15)", peers, 15.0, at_most=False)

    def in_run_peer(g):
        if g not in PEERS:
            return []
        return [div(p, x) for p, x in zip(get("axum", f"peer_from_fn_decode_{g}"),
                                           get("axum", "router_verify_cached"))]

    row("in-run peer (axum `from_fn` + decode) ÷ axum + `Verify` cached (≥ 15)",
        in_run_peer, 15.0, at_most=False)
    router = [div(x, b) for x, b in zip(get("axum", "router_verify_cached"),
                                        get("axum", "router_bare"))]
    router_scopes = [div(x, b) for x, b in zip(get("axum", "router_verify_scopes_cached"),
                                               get("axum", "router_bare"))]
    print(f"| axum router + `Verify` cached ÷ bare axum router (≤ 2) | "
          f"{ratio_cell(router, 2.0)} (one token, RS256) | | | | |")
    print(f"| axum router + `Verify` + `RequireScopes` cached ÷ bare axum router (≤ 2) | "
          f"{ratio_cell(router_scopes, 2.0)} (one token, RS256) | | | | |")

    print()
    print(f"| other rows, criterion median{runs} | per request |")
    print("|---|---|")
    for group, bench, label in OTHER:
        print(f"| {label} (`{group}/{bench}`) | {fig(group, bench)} |")


if __name__ == "__main__":
    main()
