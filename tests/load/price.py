#!/usr/bin/env python3
"""Cost per million issued and refreshed tokens on Flex Consumption (docs/capacity.md, "What a million tokens cost").

Holds the model, the measured inputs (each naming the section of docs/performance.md or docs/capacity.md it comes from)
and the list prices (each with its unit, region, source and the source's date) as parameters, and prints the tables of
that section, so that its numbers can be repeated and re-priced:

    python3 tests/load/price.py                      # the tables of docs/capacity.md
    python3 tests/load/price.py --utilisation 0.5    # instances busy half of their billed time
    python3 tests/load/price.py --price kv_op=0.04   # another price (per the unit listed in the price table)

Standard library only. Prices are US dollars, pay-as-you-go, East US unless the table says otherwise; the Azure pricing
calculator (azure.microsoft.com/pricing/calculator) is authoritative, and these figures are only as good as their
sources' dates."""
import argparse
import sys
from dataclasses import dataclass

HOURS_PER_MONTH = 730  # Azure's monthly figures use 730 h
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600


@dataclass
class Price:
    value: float
    unit: str
    source: str


# Every price: figure, unit, region (East US unless stated), where it was read and that source's date. "list price,
# not confirmed here" marks a figure this repository could not check against a dated source from the build machine
# (Azure's price pages are not reachable from it); check those first in the calculator.
PRICES = {
    "flex_gbs": Price(0.000026, "USD per GB-s, Flex Consumption on-demand execution time, East US",
                      "modal.com/blog/azure-function-pricing-guide (2025-05-22), quoting the Azure Functions pricing page"),
    "flex_exec": Price(0.40, "USD per million Flex Consumption on-demand executions, East US",
                       "Azure Functions pricing page (azure.microsoft.com/pricing/details/functions): list price, not confirmed here"),
    "flex_free_gbs": Price(100_000, "GB-s a month free per subscription (on-demand only)",
                           "Azure Functions pricing page: list figure, not confirmed here (the same grant is quoted in EUR by third-party estimates)"),
    "flex_free_exec": Price(250_000, "executions a month free per subscription (on-demand only)",
                            "Azure Functions pricing page: list figure, not confirmed here"),
    "flex_ar_baseline": Price(0.000004, "USD per GB-s, always-ready baseline (every second an always-ready instance exists)",
                              "Azure Functions pricing page: list price, not confirmed here"),
    "flex_ar_gbs": Price(0.000016, "USD per GB-s, always-ready execution time",
                         "Azure Functions pricing page: list price, not confirmed here"),
    "kv_op": Price(0.03, "USD per 10,000 Key Vault operations (RSA 2,048-bit keys, software or HSM), East US",
                   "gist.github.com/samngms/be1363b9dec13b1c8c78eec3d35edd19 (2018-09-11) and the Key Vault pricing page "
                   "(azure.microsoft.com/pricing/details/key-vault): unchanged list price, not confirmed here for 2026"),
    "kv_op_advanced": Price(0.15, "USD per 10,000 advanced key operations (RSA 3,072/4,096-bit, EC: ES256's P-256)",
                            "Key Vault pricing page: list price, not confirmed here"),
    "kv_key": Price(1.00, "USD per HSM-protected RSA 2,048-bit key (version) per month, Premium",
                    "Key Vault pricing page (meter 'Premium HSM-protected RSA 2048-bit key'): list price, not confirmed here"),
    "kv_key_advanced": Price(5.00, "USD per HSM-protected advanced key (version) per month, first 250 keys",
                             "Key Vault pricing page (meter 'Premium HSM-protected Advanced Key'): list price, not confirmed here"),
    "mhsm_hour": Price(3.20, "USD per Managed HSM pool-hour (Standard B1), East US",
                       "Key Vault pricing page, Managed HSM: list price, not confirmed here"),
    "table_tx": Price(0.00036, "USD per 10,000 Table transactions, Standard general-purpose v2, LRS, East US",
                      "Table storage pricing page (azure.microsoft.com/pricing/details/storage/tables): list price, not confirmed here"),
    "table_gb": Price(0.045, "USD per GB-month of Table data, LRS, first TB, East US",
                      "Table storage pricing page: list price, not confirmed here"),
    "eventgrid_op": Price(0.60, "USD per million Event Grid basic operations (first 100,000 a month free)",
                          "Event Grid pricing page (azure.microsoft.com/pricing/details/event-grid): list price, not confirmed here; "
                          "an operation is each publish and each delivery attempt (learn.microsoft.com/en-us/answers/questions/5830137)"),
    "log_gb": Price(2.30, "USD per GB ingested, Log Analytics Analytics Logs pay-as-you-go (first 5 GB a month free per billing account), East US",
                    "Azure Monitor pricing page (azure.microsoft.com/pricing/details/monitor): list price, not confirmed here"),
}

# Measured in this repository (the section each figure comes from):
MEASURED = {
    # docs/performance.md, "Table Storage path", "Before and after, side by side": host CPU per request of the
    # standalone host on Azurite, median of the after build's rounds (range in brackets there).
    "cpu_ms_exchange": 1.62,
    "cpu_ms_refresh": 0.82,
    "cpu_ms_introspection": 0.52,
    # docs/performance.md, "Under a real Functions host": worker + Functions host process = 2.25 x the standalone
    # host's CPU per request (the host process runs on the instance the app pays for).
    "functions_factor": 2.25,
    # docs/capacity.md, "What one request costs" (asserted in RoundTripTests and KeyVaultHostTests) and the
    # vault-latency table (1.00 signs, 0 key reads per token).
    "table_ops": {"exchange": 2, "refresh": 2, "introspection": 2},
    "signs": {"exchange": 1, "refresh": 1, "introspection": 0},
}

# Signs per second one configuration sustains (docs/capacity.md: a Premium vault allows 2,000 RSA-2048 or P-256 signs
# per 10 s and the limiter keeps 20/21 of it; five vaults are the subscription's limit per region; Managed HSM at two
# of three partitions, RSA-2048 900/s and P-256 330/s each).
SIGNS_PER_SECOND = {"vault": 2000 / 10 * 20 / 21, "mhsm_rsa2048": 1800, "mhsm_p256": 660}

# The default deployment (infra/main.bicep, infra/modules/functionapp.bicep, infra/modules/monitoring.bicep):
DEFAULT = {
    "instance_memory_mb": 2048,  # instanceMemoryMB
    "instance_vcpu": 1.0,  # 2,048 MB instances have 1 core (docs/capacity.md, Flex Consumption table)
    "always_ready": 0,  # httpAlwaysReadyInstances
    "vaults": 1,  # signingVaultCount
    "log_daily_cap_gb": 2,  # logDailyCapGb
}


def flex_gbs_per_request(cpu_ms, args):
    """Billed GB-s of one request: the instance's memory times the seconds the instance is active for it. Flex bills
    an instance's whole memory for every moment it runs at least one execution, however many run at once, so with
    the instance kept busy the active time per request is its CPU time divided by the instance's cores; with the
    cores busy only a share u of the active time, it is that divided by u."""
    cpu_s = cpu_ms / 1000 * MEASURED["functions_factor"]
    return args.memory_mb / 1024 * cpu_s / (args.vcpu * args.utilisation)


def lines_per_million(kind, args):
    """The variable cost lines of one million requests of one kind, in USD."""
    p = {k: v.value for k, v in PRICES.items()}
    cpu_ms = MEASURED[f"cpu_ms_{kind}"]
    gbs = flex_gbs_per_request(cpu_ms, args) * 1e6
    sign_price = p["kv_op_advanced"] if args.advanced_keys else p["kv_op"]
    signs = MEASURED["signs"][kind]
    lines = [
        (f"Flex execution time ({gbs:,.0f} GB-s)", gbs * p["flex_gbs"]),
        ("Flex executions (1 per request)", p["flex_exec"]),
        (f"Key Vault signs ({signs} per token)", 0.0 if args.managed_hsm else signs * 1e6 / 1e4 * sign_price),
        (f"Table transactions ({MEASURED['table_ops'][kind]} per request)", MEASURED["table_ops"][kind] * 1e6 / 1e4 * p["table_tx"]),
        ("Event Grid (0 per token)", 0.0),
    ]
    return lines


def fixed_per_month(args):
    """Monthly costs that do not depend on the token count, in USD."""
    p = {k: v.value for k, v in PRICES.items()}
    out = []
    if args.managed_hsm:
        out.append(("Managed HSM pool (730 h)", p["mhsm_hour"] * HOURS_PER_MONTH))
    else:
        key = p["kv_key_advanced"] if args.advanced_keys else p["kv_key"]
        out.append((f"Key Vault keys ({args.vaults} vault(s) x {args.key_versions} versions)", args.vaults * args.key_versions * key))
    if args.always_ready:
        out.append((f"always-ready baseline ({args.always_ready} instance(s))",
                    args.always_ready * args.memory_mb / 1024 * SECONDS_PER_MONTH * p["flex_ar_baseline"]))
    return out


def money(x):
    return f"{x:,.2f}" if x >= 0.1 or x == 0 else f"{x:,.3f}"


def table(header, rows, numeric_from=1):
    """A Markdown table; columns from numeric_from on are right-aligned."""
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join(["---"] * numeric_from + ["---:"] * (len(header) - numeric_from)) + " |")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()


def with_args(args, **changes):
    copy = argparse.Namespace(**vars(args))
    for k, v in changes.items():
        setattr(copy, k, v)
    return copy


def blended_per_million(args):
    """Variable USD per million tokens of the mix (a share of exchanges, the rest refreshes)."""
    ex = sum(v for _, v in lines_per_million("exchange", args))
    rf = sum(v for _, v in lines_per_million("refresh", args))
    return args.exchange_share * ex + (1 - args.exchange_share) * rf


def total_per_million(args, tokens_per_month):
    fixed = sum(v for _, v in fixed_per_month(args))
    return blended_per_million(args) + fixed / (tokens_per_month / 1e6)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--memory-mb", type=int, default=DEFAULT["instance_memory_mb"])
    ap.add_argument("--vcpu", type=float, default=DEFAULT["instance_vcpu"])
    ap.add_argument("--utilisation", type=float, default=1.0,
                    help="share of an instance's billed active time its cores are busy (1 = the floor; default 1)")
    ap.add_argument("--vaults", type=int, default=DEFAULT["vaults"])
    ap.add_argument("--key-versions", type=int, default=2,
                    help="key versions billed per vault (the active key and the next or previous one; default 2)")
    ap.add_argument("--advanced-keys", action="store_true", help="EC P-256 (ES256) or RSA 3,072/4,096 keys")
    ap.add_argument("--always-ready", type=int, default=DEFAULT["always_ready"])
    ap.add_argument("--exchange-share", type=float, default=0.15,
                    help="share of tokens that are exchanges, the rest refreshes (default 0.15: docs/capacity.md's "
                         "example of 111 refreshes/s with 20 logins/s)")
    ap.add_argument("--telemetry-kb", type=float, default=1.0,
                    help="billed telemetry KB per token (assumption; see docs/capacity.md)")
    ap.add_argument("--sessions", type=int, default=180_000,
                    help="sessions kept in the table, for the storage line (default: one vault's 180,000)")
    ap.add_argument("--session-kb", type=float, default=2.0,
                    help="KB stored per session, assumption (a row holds up to 32 retired hashes; default 2)")
    ap.add_argument("--price", action="append", default=[], metavar="NAME=VALUE", help="override a price")
    args = ap.parse_args(argv)
    args.managed_hsm = False
    if not 0 < args.utilisation <= 1:
        ap.error("--utilisation is a share of the billed time: more than 0, at most 1")
    if not 0 <= args.exchange_share <= 1:
        ap.error("--exchange-share is a share: 0 to 1")
    for item in args.price:
        name, _, value = item.partition("=")
        if name not in PRICES:
            ap.error(f"unknown price {name}; known: {', '.join(PRICES)}")
        try:
            PRICES[name].value = float(value)
        except ValueError:
            ap.error(f"--price {name}: {value!r} is not a number")

    print("## Prices (USD, pay-as-you-go; the Azure pricing calculator is authoritative)\n")
    table(["name", "figure", "unit", "source (date)"],
          [[k, f"{v.value:g}", v.unit, v.source] for k, v in PRICES.items()], numeric_from=4)

    print(f"## (a) Default deployment: {args.memory_mb} MB instances, {args.vcpu:g} core, utilisation {args.utilisation:g}, "
          f"{args.vaults} Premium vault, RSA-2048 (RS256), no always-ready instance\n")
    kinds = ["exchange", "refresh", "introspection"]
    per_kind = {k: lines_per_million(k, args) for k in kinds}
    gbs_million = " / ".join(f"{flex_gbs_per_request(MEASURED[f'cpu_ms_{k}'], args) * 1e6:,.0f}" for k in kinds)
    labels = [f"Flex execution time ({gbs_million} GB-s)", "Flex executions",
              "Key Vault signs (1 per token)" if not args.managed_hsm else "Key Vault signs (Managed HSM: none)",
              "Table transactions (" + " / ".join(str(MEASURED["table_ops"][k]) for k in kinds) + ")",
              "Event Grid (0 per token)"]
    rows = []
    for i, label in enumerate(labels):
        rows.append([label] + [f"{per_kind[k][i][1]:.3f}" for k in kinds])
    rows.append(["**total per million (variable)**"] + [f"**{sum(v for _, v in per_kind[k]):.2f}**" for k in kinds])
    table(["line, USD per million requests", "exchanges", "refreshes", "introspections"], rows)
    for k in ("exchange", "refresh"):
        gbs = flex_gbs_per_request(MEASURED[f"cpu_ms_{k}"], args)
        largest = max(per_kind[k], key=lambda x: x[1])
        print(f"- {k}: CPU {MEASURED[f'cpu_ms_{k}']} ms x {MEASURED['functions_factor']} = "
              f"{MEASURED[f'cpu_ms_{k}'] * MEASURED['functions_factor']:.2f} ms per request under the Functions host, "
              f"{gbs:.5f} GB-s billed; largest line: {largest[0]}, {largest[1]:.2f} USD of "
              f"{sum(v for _, v in per_kind[k]):.2f}")
    fixed = fixed_per_month(args)
    print(f"- fixed per month: " + "; ".join(f"{n} {money(v)} USD" for n, v in fixed))
    p = {k: v.value for k, v in PRICES.items()}
    print(f"- telemetry (separate line, assumption of {args.telemetry_kb:g} KB billed per token): "
          f"{args.telemetry_kb * 1e3 * 1e6 / 1e9 * p['log_gb']:.2f} USD per million tokens; the daily cap of "
          f"{DEFAULT['log_daily_cap_gb']} GB is reached at {DEFAULT['log_daily_cap_gb'] * 1e9 / (args.telemetry_kb * 1e3) / 86400:.0f} "
          f"tokens/s averaged over a day and bounds the line at "
          f"{DEFAULT['log_daily_cap_gb'] * p['log_gb'] * HOURS_PER_MONTH / 24:,.0f} USD a month")
    stored_gb = args.sessions * args.session_kb * 1e3 / 1e9
    print(f"- Table data: {args.sessions:,} sessions x {args.session_kb:g} KB (assumption) = {stored_gb:.2f} GB, "
          f"{money(stored_gb * p['table_gb'])} USD a month")
    print(f"- Event Grid: per IdP event, one publish and one delivery attempt (more on retries) = "
          f"{2 * p['eventgrid_op']:.2f} USD per million IdP events, past 100,000 free operations a month")
    active_hour = args.memory_mb / 1024 * 3600 * p["flex_gbs"]
    print(f"- an instance active without pause costs {active_hour:.3f} USD an hour ({active_hour * HOURS_PER_MONTH:,.0f} USD a month); "
          f"an isolated request bills the 1,000 ms minimum: {args.memory_mb / 1024 * p['flex_gbs'] * 1e6:,.0f} USD per million "
          f"such requests for execution time")
    print(f"- free grants each month (on-demand): {p['flex_free_gbs']:,.0f} GB-s and {p['flex_free_exec']:,.0f} executions per "
          f"subscription; the figures above are the price past them\n")

    print(f"## Sensitivity of the Flex execution-time line to utilisation (USD per million)\n")
    rows = []
    for u in (1.0, 0.6, 0.25):
        a = with_args(args, utilisation=u)
        rows.append([f"{u:g}"] + [f"{lines_per_million(k, a)[0][1]:.3f}" for k in kinds])
    table(["utilisation", "exchanges", "refreshes", "introspections"], rows)

    print("## Flex execution time by traffic shape: USD per million tokens of the mix, one instance, traffic spread over "
          "the whole month\n")
    rows = []
    one_instance_month = args.memory_mb / 1024 * SECONDS_PER_MONTH * p["flex_gbs"]
    isolated = args.memory_mb / 1024 * 1.0 * p["flex_gbs"] * 1e6  # the 1,000 ms minimum per request
    floor = (args.exchange_share * lines_per_million("exchange", args)[0][1]
             + (1 - args.exchange_share) * lines_per_million("refresh", args)[0][1])
    for volume in (1e6, 10e6, 45e6, 100e6, 500e6):
        ceiling = min(isolated, max(floor, one_instance_month / (volume / 1e6)))
        rows.append([f"{volume / 1e6:,.0f} M ({volume / SECONDS_PER_MONTH:,.1f}/s)", f"{floor:.2f}", f"{ceiling:.2f}",
                     f"{blended_per_million(args) - floor + ceiling:.2f}"])
    table(["tokens a month (averaged rate)", "floor: instance busy", "ceiling: billed all month, or 1 s per request",
           "total per million at the ceiling"], rows)

    volumes = (10e6, 100e6, 1e9)
    print(f"## (b) Several vaults and (c) Managed HSM: USD per million tokens, {args.exchange_share:.0%} exchanges, "
          f"fixed costs spread over the monthly volume\n")
    configs = [
        ("1 vault (default)", with_args(args, vaults=1)),
        ("3 vaults", with_args(args, vaults=3)),
        ("5 vaults", with_args(args, vaults=5)),
        ("Managed HSM instead of vaults", with_args(args, managed_hsm=True)),
        ("1 vault, ES256 (P-256, advanced key)", with_args(args, vaults=1, advanced_keys=True)),
        ("5 vaults, ES256", with_args(args, vaults=5, advanced_keys=True)),
    ]
    rows = []
    for name, a in configs:
        fixed = sum(v for _, v in fixed_per_month(a))
        per_second = SIGNS_PER_SECOND["mhsm_rsa2048"] if a.managed_hsm else a.vaults * SIGNS_PER_SECOND["vault"]
        capacity = per_second * SECONDS_PER_MONTH
        rows.append([name, f"{capacity / 1e6:,.0f} M", money(fixed), f"{blended_per_million(a):.2f}"]
                    + [f"{total_per_million(a, v):.2f}" if v <= capacity else "over capacity" for v in volumes])
    table(["configuration", "sign capacity, tokens/month", "fixed USD/month", "variable USD/million"]
          + [f"total at {v / 1e6:,.0f} M tokens/month" for v in volumes], rows)

    print("## Managed HSM break-even (monthly volume above which the pool costs less than vault signs)\n")
    rows = []
    for label, advanced in (("RSA-2048 (RS256, PS256)", False), ("EC P-256 (ES256)", True)):
        for vaults in (1, 5):
            vault_args = with_args(args, vaults=vaults, advanced_keys=advanced)
            hsm_args = with_args(args, managed_hsm=True)
            sign_price = (p["kv_op_advanced"] if advanced else p["kv_op"]) * 100  # per million signs
            vault_fixed = sum(v for _, v in fixed_per_month(vault_args))
            hsm_fixed = sum(v for _, v in fixed_per_month(hsm_args))
            volume = (hsm_fixed - vault_fixed) / sign_price * 1e6
            rows.append([label, str(vaults), money(sign_price), money(hsm_fixed - vault_fixed),
                         f"{volume / 1e6:,.0f} M", f"{volume / SECONDS_PER_MONTH:,.0f}"])
    table(["keys", "vaults replaced", "vault signs USD/million", "HSM pool less vault keys, USD/month",
           "break-even tokens/month", "tokens/s averaged"], rows)

    if args.always_ready == 0:
        ar = with_args(args, always_ready=1)
        print(f"Always-ready (not in the template's default): each instance adds "
              f"{money(fixed_per_month(ar)[-1][1])} USD a month of baseline; its busy time is billed at "
              f"{p['flex_ar_gbs']:g} instead of {p['flex_gbs']:g} USD per GB-s, with no free grant.")


if __name__ == "__main__":
    main(sys.argv[1:])
