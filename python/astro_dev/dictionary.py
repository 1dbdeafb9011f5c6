"""One dictionary definition, two engines: the XML under clickhouse_config/dictionaries/ is the
source of truth (the server loads it); the embedded engine loads no XML dictionaries, so its DDL
twin in sql/embedded/ is generated from the XML by `ddl_from_xml` (`python -m
astro_dev.astro_db gen-dictionary` writes the file; the tests fail if the file and the XML drift).

The embedded DDL dictionary is created in the `default` database under the XML dictionary's
name, so `dictGet('astro_people', ...)` is the same SQL on both engines (an unqualified name
resolves to the XML dictionary on a server, to the current database, `default`, embedded).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from .embedded import DICTIONARIES_DIR, EMBEDDED_DIR, sql_string

DICTIONARY_XML = DICTIONARIES_DIR / "astro_people_dictionary.xml"
DICTIONARY_DDL = EMBEDDED_DIR / "09_astro_people_dictionary.sql"
EMBEDDED_DATABASE = "default"

__all__ = ["DICTIONARY_XML", "DICTIONARY_DDL", "ddl_from_xml", "render_ddl_file", "check_ddl_file"]


def _literal(value: str) -> str:
    """A source/layout parameter: numbers bare, everything else a string literal."""
    return value if value.isdigit() else sql_string(value)


def _text(elem: ET.Element | None, default: str | None = None) -> str:
    if elem is None:
        if default is None:
            raise ValueError("missing element")
        return default
    return (elem.text or "").strip()


def ddl_from_xml(xml_path: Path = DICTIONARY_XML, database: str = EMBEDDED_DATABASE) -> list[str]:
    """CREATE DICTIONARY statements (one per <dictionary> in the file) equivalent to the XML."""
    root = ET.parse(xml_path).getroot()
    statements = []
    for d in root.iter("dictionary"):
        name = _text(d.find("name"))
        structure = d.find("structure")
        keys = structure.findall("key/attribute")
        if structure.find("id") is not None:
            keys = [structure.find("id")]
        columns, key_names = [], []
        for attr in keys:
            key_names.append(_text(attr.find("name")))
            columns.append(f"    `{key_names[-1]}` {_text(attr.find('type'), 'UInt64')}")
        for attr in structure.findall("attribute"):
            col = f"    `{_text(attr.find('name'))}` {_text(attr.find('type'))}"
            null_value = attr.find("null_value")
            if null_value is not None and (null_value.text or "").strip():
                col += f" DEFAULT {_literal(_text(null_value))}"
            for flag in ("hierarchical", "injective", "is_object_id"):
                if _text(attr.find(flag), "false").lower() in ("1", "true"):
                    col += f" {flag.upper()}"
            columns.append(col)
        (source,) = list(d.find("source"))
        params = " ".join(f"{p.tag.upper()} {_literal(_text(p))}" for p in source)
        (layout,) = list(d.find("layout"))
        layout_params = " ".join(f"{p.tag.upper()} {_literal(_text(p))}" for p in layout)
        lifetime = d.find("lifetime")
        if lifetime.find("min") is not None:
            life = f"MIN {_text(lifetime.find('min'))} MAX {_text(lifetime.find('max'))}"
        else:
            life = _text(lifetime)
        statements.append(
            f"CREATE DICTIONARY IF NOT EXISTS {database}.{name}\n(\n" + ",\n".join(columns) + "\n)\n"
            f"PRIMARY KEY {', '.join(key_names)}\n"
            f"SOURCE({source.tag.upper()}({params}))\n"
            f"LAYOUT({layout.tag.upper()}({layout_params}))\n"
            f"LIFETIME({life})"
        )
    return statements


def render_ddl_file(xml_path: Path = DICTIONARY_XML) -> str:
    """The full text of sql/embedded/09_astro_people_dictionary.sql."""
    header = (
        "-- GENERATED from clickhouse_config/dictionaries/astro_people_dictionary.xml by\n"
        "-- `python -m astro_dev.astro_db gen-dictionary`; edit the XML, not this file.\n"
        "-- Embedded engine only: it loads no XML dictionaries but accepts an executable DDL\n"
        "-- dictionary (a server refuses this statement and uses the XML instead). Created in\n"
        "-- `default` under the XML's name so dictGet('astro_people', ...) reads the same on both.\n"
        "-- Key `name` is a String, hence a complex-key layout; why an executable source (not one\n"
        "-- reading astro.people_now) and JSONEachRow: see the XML's comment.\n"
    )
    return header + ";\n\n".join(ddl_from_xml(xml_path)) + ";\n"


def write_ddl_file() -> Path:
    DICTIONARY_DDL.parent.mkdir(parents=True, exist_ok=True)
    DICTIONARY_DDL.write_text(render_ddl_file())
    return DICTIONARY_DDL


def check_ddl_file() -> bool:
    """True when the committed DDL file is exactly what the XML generates."""
    return DICTIONARY_DDL.exists() and DICTIONARY_DDL.read_text() == render_ddl_file()
