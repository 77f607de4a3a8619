#!/usr/bin/env python3
"""Splits `perf script` output of the host (perf record -k mono -g) by pass (the load client's --phase-times lines)
and attributes each sample to one part of the Table path by the innermost frame on its stack that a rule below names
(an async continuation runs its callers' code on top of the frame that completed it, so the outermost frames say little). Usage: perf script -F tid,time,ip,sym,dso | table-profile.py phases.txt"""
import collections, re, sys

from perf_stacks import classify, read_phases, samples

RULES = [  # (part, regex on a frame's "symbol (dso)"); the innermost frame that matches a rule decides, rules in this order
    ("JIT", re.compile(r"libclrjit\.so")),
    ("Tables: shared-key auth policy (HMAC)", re.compile(r"SharedKey")),
    ("Tables: entity mapping (SDK dictionary + ours)", re.compile(r"DictionaryTableExtensions|TablesTypeBinder|Azure\.Data\.Tables\.TableEntity|SessionEntityMapper|TableTokenMarkerStore::Marker|ToOdataAnnotatedDictionary")),
    ("Tables: JSON (request and response bodies)", re.compile(r"System\.Text\.Json|Utf8JsonRequestContent|JsonElement|TableRestClient.*Deserializ|Azure\.Core\.Utf8JsonWriterExtensions")),
    ("Tables: request building (URI, headers, batch body)", re.compile(r"TableRestClient::Create|RequestUriBuilder|Azure\.Core\.Request[A-Z:]|HttpClientTransportRequest|Multipart|TableClient::CreateQueryFilter|ClientRequestIdPolicy|BatchOperation")),
    ("Tables: HTTP client (System.Net.Http, its sockets)", re.compile(r"System\.Net\.Http")),
    ("Tables: Azure.Core pipeline and SDK, rest", re.compile(r"Azure\.Core|Azure\.Data\.Tables|\[Azure\.|TableProvisioner|TableFaults")),
    ("access token: JOSE, RS256 sign (managed part)", re.compile(r"RSAOpenSsl|System\.Security\.Cryptography\.RSA|SignHash|TokenService\.Jose|ActiveKeySigning|Microsoft\.IdentityModel")),
    ("ASP.NET Core + Kestrel (server side)", re.compile(r"Microsoft\.AspNetCore|Kestrel")),
    ("our code (TokenService.*)", re.compile(r"TokenService\.")),
    ("async machinery, thread pool, sockets (unattributed)", re.compile(r"System\.Threading|System\.Runtime\.CompilerServices|System\.Net\.Sockets")),
    ("OpenSSL, stack not walkable (RS256 sign mostly; HMAC, SHA-256)", re.compile(r"libcrypto")),
]
OTHER = "runtime, GC, kernel without managed frames"


def main():
    phases = read_phases(sys.argv[1])
    counts = {name: collections.Counter() for name, _, _ in phases}
    totals = collections.Counter()
    for t, frames in samples(sys.stdin):
        for name, start, end in phases:
            if start <= t <= end:
                part = classify(frames, RULES, OTHER)
                # JSON is the Tables' only in the Tables client; elsewhere it is the endpoints' (our responses).
                if part.startswith("Tables: JSON") and not any("Azure." in f or "SessionEntityMapper" in f for f in frames):
                    part = "our code (TokenService.*)"
                counts[name][part] += 1
                totals[name] += 1
                break
    parts = [r for r, _ in RULES] + [OTHER]
    print("| part | " + " | ".join(n for n, _, _ in phases) + " |")
    print("| --- |" + " --- |" * len(phases))
    for part in parts:
        print(f"| {part} | " + " | ".join(f"{100.0 * counts[n][part] / max(1, totals[n]):.1f} %" for n, _, _ in phases) + " |")
    print("| samples | " + " | ".join(str(totals[n]) for n, _, _ in phases) + " |")


main()
