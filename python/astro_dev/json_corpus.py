"""The corpus that holds astro's JSON scanner (src/json.rs) equal to ClickHouse's JSON functions.

Each case is a document; ClickHouse (chDB, in-process) decides whether it is valid, the way the
materialized view reads it: `isValidJSON(doc)` and, where the document has a `people` array,
`JSONExtract(doc, 'people', 'Array(Tuple(craft String, name String))')`. The two must agree (a
document isValidJSON refuses must extract nothing), or this script fails. The rapidjson fallback
(`allow_simdjson = 0`) is recorded too, for information only: the MV runs with the default.

    python -m astro_dev.json_corpus           rewrite tests/data/json/corpus.jsonl
    python -m astro_dev.json_corpus --check   exit 1 if a verdict differs from the file (a chDB
                                              upgrade)

One line per case: name, doc_b64, clickhouse_valid, rapidjson_valid, and where it applies
`clickhouse_people` (ClickHouse's reading of /people as [craft, name] pairs), `records` (the
pointer astro is asked for, default /people) and `astro: "refuse"` where astro is deliberately
stricter than ClickHouse (the Rust test in src/json.rs checks both directions).
"""

import base64
import json
import sys

import chdb

from .embedded import REPO_ROOT

CORPUS = REPO_ROOT / "tests" / "data" / "json" / "corpus.jsonl"

P = b'{"message":"success","people":[{"craft":"ISS","name":"A"}],"x":'


def field(value: bytes) -> bytes:
    """A valid Open Notify answer with `value` in an unrelated field."""
    return P + value + b"}"


def nest(kinds: str, inner: bytes) -> bytes:
    opening = b"".join(b"[" if k == "a" else b'{"k":' for k in kinds)
    closing = b"".join(b"]" if k == "a" else b"}" for k in reversed(kinds))
    return opening + inner + closing


OPEN_NOTIFY = {
    "message": "success",
    "number": 3,
    "people": [
        {"craft": "ISS", "name": "Oleg Kononenko"},
        {"craft": "ISS", "name": "Nikolai Chub"},
        {"craft": "Tiangong", "name": "Ye Guangfu"},
    ],
}

# (name, document, extra fields)
CASES = [
    # Ordinary documents.
    ("open notify compact", json.dumps(OPEN_NOTIFY, separators=(",", ":")).encode(), {}),
    ("open notify pretty", json.dumps(OPEN_NOTIFY, indent=4).encode(), {}),
    ("open notify crlf tabs", json.dumps(OPEN_NOTIFY, indent="\t").replace("\n", "\r\n").encode(), {}),
    ("no people", b'{"message":"success","number":0,"people":[]}', {}),
    ("people not an array", b'{"message":"success","people":{"craft":"ISS"}}', {}),
    ("people with extra fields", b'{"people":[{"craft":"ISS","name":"A","age":40,"tags":["x",{"y":null}]}]}', {}),
    ("raw utf-8 names", '{"people":[{"craft":"МКС","name":"Олег Кононенко"},{"craft":"天宫","name":"叶光富 🚀"}]}'.encode(), {}),
    ("escapes in names", b'{"people":[{"craft":"I\\"S\\\\S\\/","name":"a\\nb\\tc\\u00e9\\ud83d\\ude80\\uD83D\\uDE80"}]}', {}),
    ("nul escape in a name", b'{"people":[{"craft":"ISS","name":"a\\u0000b"}]}', {}),
    ("escaped key is the same key", b'{"people":[{"\\u0063raft":"ISS","name":"A"}]}', {}),
    ("top-level array of records", b'[{"id":1},{"id":2,"v":[1,2]}]', {"records": ""}),
    ("nested records", b'{"data":{"items":[{"id":1},{"id":2}],"next":"/p2"}}', {"records": "/data/items"}),
    ("records pointer with escapes", b'{"a/b":{"m~n":[{"id":1}]}}', {"records": "/a~1b/m~0n"}),
    ("records at an array index", b'{"pages":[{"items":[]},{"items":[{"id":7}]}]}', {"records": "/pages/1/items"}),
    ("empty object", b"{}", {}),
    ("empty array", b"[]", {}),
    ("empty key", b'{"":1}', {}),
    ("raw DEL in a string", field(b'"a\x7fb"'), {}),
    ("noncharacter escape", field(b'"\\uffff"'), {}),
    ("raw U+10FFFF", field(b'"\xf4\x8f\xbf\xbf"'), {}),
    ("all simple escapes", field(b'"\\"\\\\\\/\\b\\f\\n\\r\\t"'), {}),
    # Top-level scalars.
    ("scalar number", b"1", {}),
    ("scalar string", b'"a"', {}),
    ("scalar true", b"true", {}),
    ("scalar false", b"false", {}),
    ("scalar null", b"null", {}),
    # Byte order mark and whitespace.
    ("leading BOM", b"\xef\xbb\xbf" + json.dumps(OPEN_NOTIFY).encode(), {}),
    ("BOM then whitespace", b"\xef\xbb\xbf \n[1]", {}),
    ("whitespace then BOM", b" \xef\xbb\xbf[1]", {}),
    ("BOM twice", b"\xef\xbb\xbf\xef\xbb\xbf[1]", {}),
    ("BOM only", b"\xef\xbb\xbf", {}),
    ("leading whitespace", b" \t\r\n[1]", {}),
    ("trailing whitespace", b"[1] \t\r\n", {}),
    ("form feed is not whitespace", b"[1]\x0c", {}),
    ("NUL byte after the document", b"[1]\x00", {}),
    ("empty input", b"", {}),
    ("whitespace only", b" \n ", {}),
    # Grammar errors.
    ("trailing garbage", b"[1]x", {}),
    ("two documents", b"{} {}", {}),
    ("trailing comma in an array", b"[1,]", {}),
    ("trailing comma in an object", b'{"a":1,}', {}),
    ("missing colon", b'{"a" 1}', {}),
    ("missing comma", b"[1 2]", {}),
    ("unclosed array", b"[1", {}),
    ("unclosed string", b'["a', {}),
    ("extra closing bracket", b"[1]]", {}),
    ("mismatched bracket", b"[1}", {}),
    ("single quotes", b"['a']", {}),
    ("comment", b"[1 /* c */]", {}),
    ("key not a string", b"{1:2}", {}),
    ("literal truncated", b"[tru]", {}),
    ("literal with a suffix", b"[truex]", {}),
    ("literal upper case", b"[TRUE]", {}),
    # Strings.
    ("issue 10: lone high surrogate in an unrelated field", field(b'"\\ud83d"'), {}),
    ("lone low surrogate", field(b'"\\ude00"'), {}),
    ("surrogates in the wrong order", field(b'"\\ude00\\ud83d"'), {}),
    ("high surrogate then a non-surrogate escape", field(b'"\\ud83d\\u0041"'), {}),
    ("two high surrogates then a low one", field(b'"\\ud83d\\ud83d\\ude00"'), {}),
    ("high surrogate at the end of the string", field(b'"a\\ud83d"'), {}),
    ("surrogate pair", field(b'"\\ud83d\\ude00"'), {}),
    ("surrogate pair upper case", field(b'"\\uD83D\\uDE00"'), {}),
    ("lone surrogate in a key", b'{"\\ud83d":1}', {}),
    ("raw control character", field(b'"a\x01b"'), {}),
    ("raw tab in a string", field(b'"a\tb"'), {}),
    ("raw newline in a string", field(b'"a\nb"'), {}),
    ("raw NUL in a string", field(b'"a\x00b"'), {}),
    ("invalid escape", field(b'"\\x"'), {}),
    ("bad hex in a unicode escape", field(b'"\\u12g4"'), {}),
    ("short unicode escape", field(b'"\\u12"'), {}),
    ("invalid UTF-8 byte", field(b'"a\xffb"'), {}),
    ("overlong UTF-8", field(b'"\xc0\x80"'), {}),
    ("UTF-8 encoded surrogate", field(b'"\xed\xa0\x80"'), {}),
    ("UTF-8 beyond U+10FFFF", field(b'"\xf4\x90\x80\x80"'), {}),
    ("five-byte UTF-8", field(b'"\xf8\x88\x80\x80\x80"'), {}),
    ("truncated UTF-8 sequence", field(b'"\xe2\x82"'), {}),
    ("invalid UTF-8 outside a string", b"[1]\xff", {}),
    ("non-ASCII outside a string", "[1,\u00a02]".encode(), {}),
    # Numbers.
    ("issue 10: 1e309 in an unrelated field", field(b"1e309"), {}),
    ("-1e309", field(b"-1e309"), {}),
    ("1.8e308", field(b"1.8e308"), {}),
    ("largest double", field(b"1.7976931348623157e308"), {}),
    ("just below the rounding boundary to infinity", field(b"1.797693134862315807e308"), {}),
    ("just above the rounding boundary to infinity", field(b"1.797693134862315808e308"), {}),
    # The exact midpoint between the largest double and 2**1024 rounds (half to even) to infinity.
    ("exactly the rounding boundary to infinity", field(str(2**1024 - 2**969).encode() + b".0"), {}),
    ("1e-400 underflows to zero", field(b"1e-400"), {}),
    ("smallest subnormal", field(b"4.9e-324"), {}),
    ("rounds to the smallest subnormal", field(b"3e-324"), {}),
    ("0e999", field(b"0e999"), {}),
    ("huge negative exponent", field(b"1e-99999999999999999999999"), {}),
    ("huge positive exponent on zero", field(b"0e99999999999999999999999"), {}),
    ("huge positive exponent", field(b"1e99999999999999999999999"), {}),
    ("exponent with leading zeros", field(b"1e0000000000000000000000000001"), {}),
    ("u64 max", field(b"18446744073709551615"), {}),
    ("u64 max plus one", field(b"18446744073709551616"), {}),
    ("integer beyond u64", field(b"123456789012345678901234567890"), {}),
    ("i64 min", field(b"-9223372036854775808"), {}),
    ("i64 min minus one", field(b"-9223372036854775809"), {}),
    ("integer of 309 digits", field(b"1" + b"0" * 308), {}),
    ("integer of 310 digits", field(b"1" + b"0" * 309), {"astro": "refuse"}),
    ("negative integer of 400 digits", field(b"-" + b"1" * 400), {"astro": "refuse"}),
    ("400 integer digits and a fraction", field(b"1" * 400 + b".5"), {}),
    ("400 integer digits and e-300", field(b"1" * 400 + b"e-300"), {}),
    ("small fraction times a big exponent", field(b"0." + b"0" * 400 + b"1e400"), {}),
    ("minus zero", field(b"-0"), {}),
    ("minus zero float", field(b"-0.0e-0"), {}),
    ("upper-case exponent with plus", field(b"1E+2"), {}),
    ("mantissa of 1000 digits", field(b"1." + b"1" * 1000), {}),
    ("mantissa of 20000 digits", field(b"0." + b"1" * 20000), {}),
    ("leading zero", field(b"01"), {}),
    ("negative leading zero", field(b"-01"), {}),
    ("plus sign", field(b"+1"), {}),
    ("minus alone", field(b"-"), {}),
    ("dot without digits after", field(b"1."), {}),
    ("dot without digits before", field(b".5"), {}),
    ("dot then exponent", field(b"1.e5"), {}),
    ("exponent without digits", field(b"1e"), {}),
    ("exponent sign without digits", field(b"1e+"), {}),
    ("NaN", field(b"NaN"), {}),
    ("Infinity", field(b"Infinity"), {}),
    ("hex number", field(b"0x10"), {}),
    # Nesting depth: a value's depth counts its enclosing containers plus itself.
    ("1024 nested empty arrays", nest("a" * 1024, b""), {}),
    ("1025 nested empty arrays", nest("a" * 1025, b""), {}),
    ("scalar inside 1023 arrays", nest("a" * 1023, b"1"), {}),
    ("scalar inside 1024 arrays", nest("a" * 1024, b"1"), {}),
    ("scalar inside 1023 objects", nest("o" * 1023, b"1"), {}),
    ("scalar inside 1024 objects", nest("o" * 1024, b"1"), {}),
    ("empty object inside 1023 objects", nest("o" * 1023, b"{}"), {}),
    ("empty object inside 1024 objects", nest("o" * 1024, b"{}"), {}),
    ("mixed nesting at the limit", nest("ao" * 511 + "a", b"1"), {}),
    ("mixed nesting past the limit", nest("oa" * 512, b"1"), {}),
    ("unrelated field nested to the limit", field(nest("a" * 1023, b"")), {}),
    ("unrelated field nested one past the limit", field(nest("a" * 1024, b"")), {}),
    ("issue 10: unrelated array nested 1100 deep", field(nest("a" * 1100, b"")), {}),
    # Duplicate keys: ClickHouse reads the first; astro refuses in the objects it reads.
    ("issue 10: duplicate key in a person", b'{"people":[{"craft":"A","name":"x","craft":"B"}]}', {"astro": "refuse"}),
    ("duplicate key spelled with an escape", b'{"people":[{"craft":"A","name":"x","\\u0063raft":"B"}]}', {"astro": "refuse"}),
    ("duplicate people array", b'{"people":[{"craft":"A","name":"x"}],"people":[{"craft":"B","name":"y"}]}', {"astro": "refuse"}),
    ("duplicate unrelated top-level key", b'{"message":"success","people":[],"message":"failure"}', {"astro": "refuse"}),
    ("duplicate key on the records path", b'{"data":{"items":[],"items":[{"id":1}]}}', {"records": "/data/items", "astro": "refuse"}),
    ("duplicate key deeper inside a person", b'{"people":[{"craft":"A","name":"x","meta":{"k":1,"k":2}}]}', {}),
    ("duplicate key in an unrelated object", b'{"people":[],"meta":{"k":1,"k":2}}', {}),
    ("duplicate key in a top-level array element", b'[{"k":1,"k":2}]', {"records": "/people"}),
]


def query(sql: str) -> list[list[str]]:
    out = chdb.query(sql, "TSV").bytes().decode()
    return [line.split("\t") for line in out.splitlines()]


def verdicts(docs: list[bytes]) -> list[dict]:
    """ClickHouse's reading of every document, in two queries (default and rapidjson)."""
    rows = ", ".join(f"({i}, base64Decode('{base64.b64encode(doc).decode()}'))" for i, doc in enumerate(docs))
    table = f"(SELECT * FROM values('i UInt32, doc String', {rows}))"
    settings = "max_query_size = 1000000000"
    people_type = "Array(Tuple(craft String, name String))"
    main = query(
        f"SELECT i, isValidJSON(doc), JSONLength(doc), "
        f"arrayStringConcat(arrayMap(t -> concat(hex(t.1), ':', hex(t.2)), "
        f"JSONExtract(doc, 'people', '{people_type}')), ',') "
        f"FROM {table} ORDER BY i SETTINGS {settings}"
    )
    rapid = query(f"SELECT i, isValidJSON(doc) FROM {table} ORDER BY i SETTINGS {settings}, allow_simdjson = 0")
    results = []
    for doc, (_, valid, length, *people), (_, rapid_valid) in zip(docs, main, rapid, strict=True):
        people = people[0] if people else ""
        result = {"clickhouse_valid": valid == "1", "rapidjson_valid": rapid_valid == "1"}
        if valid != "1" and (length != "0" or people != ""):
            raise SystemExit(f"isValidJSON refuses a document the JSON functions read: {doc[:60]!r}")
        if people:
            result["clickhouse_people"] = [
                [bytes.fromhex(h).decode() for h in pair.split(":")] for pair in people.split(",")
            ]
        results.append(result)
    return results


def build() -> list[str]:
    names = [name for name, _, _ in CASES]
    duplicates = {name for name in names if names.count(name) > 1}
    if duplicates:
        raise SystemExit(f"case names repeat: {sorted(duplicates)}")
    lines = []
    for (name, doc, extra), verdict in zip(CASES, verdicts([doc for _, doc, _ in CASES]), strict=True):
        case = {"name": name, "doc_b64": base64.b64encode(doc).decode(), **verdict, **extra}
        if case.get("astro") == "refuse" and not case["clickhouse_valid"]:
            raise SystemExit(f"{name}: marked astro-refuses but ClickHouse refuses it too")
        lines.append(json.dumps(case, ensure_ascii=True))
    return lines


def main() -> int:
    lines = build()
    if sys.argv[1:] == ["--check"]:
        old = CORPUS.read_text().splitlines()
        if old != lines:
            old_by_name = {json.loads(line)["name"]: line for line in old}
            for line in lines:
                name = json.loads(line)["name"]
                if old_by_name.get(name) != line:
                    print(f"differs: {name}", file=sys.stderr)
            print(f"{CORPUS} is out of date with chDB {chdb.__version__}; run python -m "
                  "astro_dev.json_corpus", file=sys.stderr)
            return 1
        return 0
    CORPUS.parent.mkdir(parents=True, exist_ok=True)
    CORPUS.write_text("\n".join(lines) + "\n")
    print(f"{len(lines)} cases written to {CORPUS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
