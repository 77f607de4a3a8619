#!/usr/bin/env python3
"""Where a steady-state in-memory refresh's CPU goes: reads `perf script` output of the host (perf record -k mono -g),
keeps the samples inside the refresh pass (the load client's --phase-times lines) and attributes each to one part of
the request by the innermost frame on its stack that a rule below names. Library frames that several parts call (JSON
writers, base64, hashing) name no part of their own, so they count for the part that called them; kernel frames count
for the managed frame that made the system call. Usage: perf script -F tid,time,ip,sym,dso | steady-profile.py phases.txt [ms per request]"""
import collections, re, sys

from perf_stacks import classify, read_phases, samples

RULES = [  # (part, regex on a frame's "symbol (dso)"); the innermost frame that matches a rule decides, rules in this order
    ("JIT (tiering, still compiling)", re.compile(r"libclrjit\.so")),
    ("GC (allocation, collection)", re.compile(r"WKS::|SVR::|gc_heap|GCHeap|Alloc[A-Za-z]*Slow|JIT_New|RhpNew|AllocateObject|JIT_NewArr")),
    ("RS256 signature (OpenSSL; its stacks are not walkable, so SHA-256 and the CSPRNG of the path count here too)", re.compile(r"libcrypto|libssl|RSAOpenSsl|RSA::SignData|SignHash")),
    ("logging, metrics, tracing (ours and ASP.NET Core's)", re.compile(r"TokenServiceDiagnostics|TokenServiceMetrics|TokenService\.Diagnostics|System\.Diagnostics\.Activity|System\.Diagnostics\.DiagnosticListener|System\.Diagnostics\.Metrics|HostingApplicationDiagnostics|Microsoft\.Extensions\.Logging|HostingRequestStartingLog|LoggerMessage|RequestLineLogFilter")),
    ("form parsing", re.compile(r"TokenService\.Http\.FormRequest|FormReader|FormPipeReader|WebUtilities")),
    ("client authentication, request limits, CORS", re.compile(r"ClientAuthenticat|ClientRequestReader|RequestRateLimiter|TokenBucket|ConfigurationClientStore|CorsPolicy|RateLimiting|AuthenticationHeaderValue")),
    ("request validation (grant, scope, audience, DPoP check)", re.compile(r"TokenRequestValidator|AudiencePolicy|DpopRequestReader|GrantTypes")),
    ("access token building (JOSE header and claims, JSON, base64url)", re.compile(r"AccessTokenIssuer|Microsoft\.IdentityModel|SigningKeyService|SigningKeyResolver|TokenService\.Keys|TokenService\.Jose")),
    ("session store and compare-and-swap (rotation, refresh-token hash)", re.compile(r"SessionService|InMemorySessionStore|SessionRecord|RefreshTokens|TokenService\.Sessions")),
    ("response writing (token JSON, headers)", re.compile(r"TokenResponseWriter|OAuthResponses|JsonWriterExtensions|TokenService\.Http\.")),
    ("endpoint glue (invoker, dependency budget, routing to the handler)", re.compile(r"TokenService\.")),
    ("Kestrel, HTTP parsing and routing (ASP.NET Core)", re.compile(r"Microsoft\.AspNetCore|Kestrel|System\.IO\.Pipelines")),
    ("async machinery, thread pool, sockets", re.compile(r"System\.Threading|System\.Runtime\.CompilerServices|System\.Net\.Sockets|ThreadPool")),
]
OTHER = "runtime and kernel without a managed frame (context switches, futex wake-ups, epoll)"


def main():
    phases = [(start, end) for name, start, end in read_phases(sys.argv[1]) if name == "refresh"]
    ms = float(sys.argv[2]) if len(sys.argv) > 2 else None
    counts, total = collections.Counter(), 0
    for t, frames in samples(sys.stdin):
        if any(start <= t <= end for start, end in phases):
            counts[classify(frames, RULES, OTHER)] += 1
            total += 1
    print("| part | share of the host's samples | ms per refresh |" if ms else "| part | share of the host's samples |")
    print("| --- | --- | --- |" if ms else "| --- | --- |")
    for part in [r for r, _ in RULES] + [OTHER]:
        share = counts[part] / max(1, total)
        print(f"| {part} | {100.0 * share:.1f} % |" + (f" {share * ms:.3f} |" if ms else ""))
    print(f"| samples | {total} |" + (" |" if ms else ""))


main()
