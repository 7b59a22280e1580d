"""A hostile corpus of LLM outputs for the parsers, generated here (nothing is read from disk).

Each case is ``(name, text)``. The families: pathological nesting (JSON recursion), numbers Python cannot convert
(over 4,300 digits, floats that overflow), digit look-alikes (superscripts, circled, fullwidth, other scripts),
repetitive tag soup that makes backtracking regexes explode (the think/answer pattern was cubic), long runs of
braces and fences, control characters and lone surrogates.
"""

from __future__ import annotations

KB = 1024


def cases() -> list[tuple[str, str | None]]:
    big = "9" * 5000
    out: list[tuple[str, str | None]] = [
        ("none", None),
        ("empty", ""),
        # --- recursion and JSON
        ("open braces 100K", "{" * (100 * KB)),
        ("close braces 100K", "}" * (100 * KB)),
        ("nested objects", '{"a":' * 50_000 + "1" + "}" * 50_000),
        ("nested lists in answer", "<answer>```json\n" + "[" * 60_000 + "]" * 60_000 + "\n```</answer>"),
        ("nested key object", '{"[1]": ' + "{" * 30_000 + "}" * 30_000 + "}"),
        ("unterminated nesting", "<answer>" + '{"[1]": {' * 20_000),
        ("int over 4300 digits", '{"[1]": ' + "1" * 5000 + "}"),
        ("float overflow", '{"[1]": ' + "9" * 4000 + ', "[2]": 1e999, "[3]": "1e400", "[4]": -1e999}'),
        ("huge string value", '{"[1]": "' + "7" * 100_000 + '"}'),
        ("huge key", '{"[' + big + ']": 5, "[' + "0" * 5000 + '1]": 7}'),
        ("superscript keys", '{"[²]": 5, "[①]": 6, "[３]": 7, "[٣]": 8, "[፩]": 9}'),
        ("fences 100K", "```json" * (15 * KB)),
        ("fence then spaces", "```json" + " " * (100 * KB)),
        ("fence spaces fence", ("```json   ```" * 8 * KB)),
        ("answer tags 100K", "<answer>" * (12 * KB)),
        # --- ids
        ("id over 4300 digits", "[" + big + "] > [1] > [2]"),
        ("leading zeros 5000", "[" + "0" * 5000 + "2] > [1]"),
        ("digits 100K", "1" * (100 * KB)),
        ("superscript ids", "[²] > [¹] > [³]"),
        ("circled ids", "① > ③ > ②"),
        ("fullwidth ids", "［３］ > ［１］"),
        ("other scripts", "[٣] > [१] > [፩] > [𝟐]"),
        ("mixed digit scripts", "[1٣] > [²³] > [3²]"),
        ("negative and floats", "[-1] > [2.5] > [1e3] > [0x2]"),
        ("year in reasoning", "<think>In 2019 the study found [3] best</think>\n[2] > [1] > [3]"),
        # --- think / answer soup (cubic for the official regex)
        ("think soup 24K", ("<think></think> " * (3 * KB // 2)) + "<answer>" * (KB // 2)),
        ("think answer no close 24K", ("<think> </think> <answer> " * 1000)),
        ("think x answer x", "<think>" + ("</think>\n" * 4000) + "<answer>" + "x" * 10_000),
        ("nested think 30K", "<think>" * 2000 + "</think>" * 2000 + "<answer>[1]" * 1000),
        ("answer close only", "</answer>" * (10 * KB)),
        ("think close only", "</think>" * (10 * KB)),
        ("answer digits 100K", "<answer>" + "1" * (100 * KB)),
        ("answer spaces then digit", "<answer>" + " " * (100 * KB) + "7"),
        ("answer repeated ints", "<answer> 7 " * (10 * KB)),
        ("choice huge label", "<think>x</think><answer>[" + big + "]</answer>"),
        ("choice zero padded", "<think>x</think><answer>[0003]</answer>"),
        ("choice superscript", "<think>x</think><answer>[³]</answer>"),
        # --- bytes and case
        ("control chars", "\x00\x01<think>\x00</think>\x0b<answer>[1]\x00</answer>"),
        ("lone surrogates", "\ud800[1] > \udfff[2]"),
        ("dotted capital I lowercases longer", "İ" * 1000 + "<THINK>x</THINK><ANSWER>[2]</ANSWER>"),
        ("unicode whitespace", "<think>x</think>\u2003\u00a0\u3000<answer>[1]</answer>"),
    ]
    return out
