"""A 1 KB YAML alias bomb as a study file, against parsing the default study (issue 15).

    python benchmarks/yaml_bomb.py

The bomb is 10 levels of 9 aliases (9^10 = 3.5 billion values if expanded). Before the bounded
parser it took all memory and ended in a MemoryError traceback. Prints, for the bomb given as a
file and through `--set`, the time and peak Python memory (tracemalloc) until the one-line error,
and the same for parsing the default study YAML (the baseline), with their ratio.
"""

from __future__ import annotations

import time
import tracemalloc

from tunescope.errors import TunescopeError
from tunescope.study.default_study import DEFAULT_STUDY_YAML
from tunescope.study.spec import from_yaml
from tunescope.study.yaml_source import parse_value


def bomb(levels: int = 10, fan: int = 9) -> str:
    lines = ["a0: &a0 [" + ", ".join(["x"] * fan) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fan) + "]")
    return "\n".join(lines) + "\nbase: gemma-3-270m\n"


def flow_bomb(levels: int = 10, fan: int = 9) -> str:
    """The same bomb as one flow value (what `--set PATH=VALUE` takes)."""
    items = ["&a0 [" + ", ".join(["x"] * fan) + "]"]
    for i in range(1, levels):
        items.append(f"&a{i} [" + ", ".join([f"*a{i - 1}"] * fan) + "]")
    return "[" + ", ".join(items) + "]"


def measure(action) -> tuple[float, float, str]:
    tracemalloc.start()
    start = time.perf_counter()
    try:
        action()
        message = "(accepted)"
    except TunescopeError as e:
        message = str(e)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak / 2**20, message


def main() -> None:
    text = bomb()
    print(f"bomb: {len(text.encode())} bytes")
    base_s, base_mib, _ = measure(lambda: from_yaml(DEFAULT_STUDY_YAML, "default.yaml"))
    print(f"baseline, the default study YAML: {base_s * 1000:.1f} ms, peak {base_mib:.2f} MiB")
    for how, action in [("study file", lambda: from_yaml(text, "bomb.yaml")),
                        ("--set value", lambda: parse_value(flow_bomb(), "--set datasets.x"))]:
        seconds, mib, message = measure(action)
        print(f"bomb as a {how}: {seconds * 1000:.1f} ms ({seconds / base_s:.2f}x the baseline), "
              f"peak {mib:.2f} MiB; error: {message[:160]}")


if __name__ == "__main__":
    main()
