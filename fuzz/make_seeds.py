#!/usr/bin/env python3
"""Writes the seed corpora fuzz/seeds/{token,jwks} (small, committed).

Token seeds are HS256 tokens under the fuzz target's shared secret (so they
stay valid: the secret is fixed) plus malformed variants; JWKS seeds are the
Wycheproof key sets from ../shared/testdata/wycheproof and edge cases.
Run from the repository root: python3 fuzz/make_seeds.py
"""
import base64, hashlib, hmac, json, os, pathlib

root = pathlib.Path(__file__).resolve().parent
secret = b"fuzz-secret-fuzz-secret-fuzz-sec"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(header: dict, claims: dict) -> str:
    msg = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    sig = hmac.new(secret, msg.encode(), hashlib.sha256).digest()
    return f"{msg}.{b64(sig)}"


def write(kind: str, name: str, data: bytes) -> None:
    d = root / "seeds" / kind
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


claims = {"iss": "https://fuzz.test", "aud": "urn:fuzz", "sub": "alice",
          "exp": 4102444800, "iat": 1700000000, "scope": "orders:read"}
header = {"alg": "HS256", "kid": "hs", "typ": "at+jwt"}
valid = hs256(header, claims)
tokens = {
    "valid": valid,
    "none": b64(b'{"alg":"none"}') + "." + b64(json.dumps(claims).encode()) + ".",
    "crit": hs256({**header, "crit": ["exp"], "exp": 1}, claims),
    "aud_array": hs256(header, {**claims, "aud": ["x", "urn:fuzz"]}),
    "exp_string": hs256(header, {**claims, "exp": "4102444800"}),
    "exp_fraction": hs256(header, {**claims, "exp": 4102444800.5}),
    "nested": hs256({**header, "cty": "JWT"}, claims),
    "five_segments": valid + ".e30.e30",
    "rs256_kid": hs256({"alg": "RS256", "kid": "rsa-1"}, claims),
}
for name, token in tokens.items():
    write("token", f"raw_{name}", b"\x00" + token.encode())
    write("token", f"layer_{name}", b"\x02Bearer " + token.encode())
write("token", "layer_grpc", b"\x03bearer " + valid.encode())
for name, (h, c) in {
    "valid": (header, claims),
    "dup_alg": ('{"alg":"HS256","alg":"none","kid":"hs"}', claims),
    "dup_exp": (header, '{"iss":"https://fuzz.test","aud":"urn:fuzz","exp":4102444800,"exp":1}'),
    "null_nbf": (header, {**claims, "nbf": None}),
    "scp": (header, {**claims, "scp": ["a", "b"], "roles": ["r"], "tenant": "t"}),
}.items():
    h = h if isinstance(h, str) else json.dumps(h)
    c = c if isinstance(c, str) else json.dumps(c)
    write("token", f"signed_{name}", b"\x01" + h.encode() + b"\xff" + c.encode())

data = root.parent.parent / "shared" / "testdata" / "wycheproof"
n = 0
for fname in ("json_web_signature_test.json", "json_web_key_test.json"):
    doc = json.loads((data / fname).read_text())
    for group in doc["testGroups"]:
        for part in ("public", "private"):
            key = group.get(part)
            if not isinstance(key, dict):
                continue
            keys = key if "keys" in key else {"keys": [key]}
            write("jwks", f"wycheproof_{n:03}", json.dumps(keys).encode())
            n += 1
for name, doc in {
    "empty": {"keys": []},
    "not_a_set": [],
    "many_kinds": {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
                             {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
                             {"kty": "RSA", "n": "AQAB", "e": "AQ"},
                             {"kty": "oct", "k": ""}]},
}.items():
    write("jwks", name, json.dumps(doc).encode())
print(f"wrote {len(os.listdir(root / 'seeds' / 'token'))} token and "
      f"{len(os.listdir(root / 'seeds' / 'jwks'))} jwks seeds")
