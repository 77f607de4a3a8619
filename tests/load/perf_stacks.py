"""What the perf breakdown scripts (table-profile.py, steady-profile.py) share: the load client's pass boundaries
(its --phase-times lines), the samples of `perf script -F tid,time,ip,sym,dso` output with their stacks, and the rule
that the innermost frame a rule names decides a sample's part (an async continuation runs its callers' code on top of
the frame that completed it, so the outermost frames say little)."""
import re

_HEADER = re.compile(r"^\s*\d+\s+(\d+\.\d+):")


def read_phases(path):
    """The passes the load client timed: (name, start, end) in seconds of the monotonic clock perf records."""
    phases = []
    for line in open(path):
        p = line.split()
        if len(p) == 4 and p[0] == "phase":
            phases.append((p[1], int(p[2]) / 1e9, int(p[3]) / 1e9))
    return phases


def samples(stream):
    """Each sample of `perf script` output as (time, frames), frames innermost first."""
    frames, t = [], None
    for line in stream:
        m = _HEADER.match(line)
        if m:
            if t is not None and frames:
                yield t, frames
            frames, t = [], float(m.group(1))
        elif line.strip():
            frames.append(line.strip())
    if t is not None and frames:
        yield t, frames


def classify(frames, rules, other):
    """The part of the first rule (in order) that names the innermost frame it matches; else `other`."""
    for frame in frames:  # innermost first
        for part, rx in rules:
            if rx.search(frame):
                return part
    return other
