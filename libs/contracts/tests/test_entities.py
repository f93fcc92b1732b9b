"""Lineage entity names: the canonical form, lists in job specs, OpenLineage (namespace, name)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from controlroom_contracts.entities import (
    MAX_DECLARED_ENTITIES,
    MAX_ENTITY_LENGTH,
    CanonicalEntity,
    EntityNameError,
    canonical_entity,
    declared_entities,
    declared_entity_problems,
    entity_list,
    openlineage_dataset,
    openlineage_entity,
)

# --- canonical_entity: accepted ---------------------------------------------------------------

ACCEPTED = [
    pytest.param("raw.orders", "raw.orders", id="schema.table"),
    pytest.param("Raw.Orders", "raw.orders", id="warehouse-lowercased"),
    pytest.param("Shop.Public.Orders", "shop.public.orders", id="database.schema.table"),
    pytest.param(
        "_stg.order-items$v2", "_stg.order-items$v2", id="identifier-underscore-dash-dollar"
    ),
    pytest.param("  raw.orders\n", "raw.orders", id="surrounding-whitespace-stripped"),
    pytest.param("raw." + "T" * 128, "raw." + "t" * 128, id="identifier-of-128-chars"),
    pytest.param("supabase://Raw.Orders", "raw.orders", id="supabase-is-bare-warehouse"),
    pytest.param("SUPABASE://Db.Raw.Orders", "db.raw.orders", id="supabase-three-parts"),
    pytest.param(
        "postgres://db.host/shop.public.orders",
        "postgres://db.host:5432/shop.public.orders",
        id="postgres-default-port",
    ),
    pytest.param(
        "postgresql://DB.Host:6543/Shop.Public.Orders",
        "postgres://db.host:6543/shop.public.orders",
        id="postgresql-alias-host-and-path-lowercased",
    ),
    pytest.param(
        "postgres://10.0.0.7:05432/a.b.c", "postgres://10.0.0.7:5432/a.b.c", id="postgres-ipv4"
    ),
    pytest.param(
        "postgres://[2001:DB8:0:0::1]/a.b.c",
        "postgres://[2001:db8::1]:5432/a.b.c",
        id="postgres-ipv6-compressed",
    ),
    pytest.param(
        "postgres://db_1/a.b.c", "postgres://db_1:5432/a.b.c", id="postgres-container-host"
    ),
    pytest.param("s3://bucket/raw/orders.parquet", "s3://bucket/raw/orders.parquet", id="s3"),
    pytest.param("s3a://My-Bucket/Raw/Orders", "s3://my-bucket/Raw/Orders", id="s3a-key-case-kept"),
    pytest.param("s3n://bucket/x", "s3://bucket/x", id="s3n"),
    pytest.param("S3://bucket//raw///orders/", "s3://bucket/raw/orders", id="s3-slashes-collapsed"),
    pytest.param("s3://bucket", "s3://bucket", id="s3-bucket-itself"),
    pytest.param("s3://bucket/", "s3://bucket", id="s3-bucket-trailing-slash"),
    pytest.param("s3://bucket/a%20b?c#d", "s3://bucket/a%20b?c#d", id="s3-key-kept-verbatim"),
    pytest.param("gs://my.bucket/x/", "gs://my.bucket/x", id="gs"),
    pytest.param(
        "abfss://Data@Acct.dfs.core.windows.net//lake/T",
        "abfss://data@acct.dfs.core.windows.net/lake/T",
        id="abfss-container-at-account",
    ),
    pytest.param(
        "wasbs://c1@acct.blob.core.windows.net/x",
        "wasbs://c1@acct.blob.core.windows.net/x",
        id="wasbs",
    ),
    pytest.param(
        "kafka://Broker:9092/topic", "kafka://broker:9092/topic", id="kafka-host-lowercased"
    ),
    pytest.param(
        "bigquery://project.dataset.table", "bigquery://project.dataset.table", id="bigquery"
    ),
    pytest.param(
        "snowflake://org-account/db.schema.table",
        "snowflake://org-account/db.schema.table",
        id="snowflake",
    ),
    pytest.param("file:///data/x.csv", "file:///data/x.csv", id="file-empty-authority-kept"),
    pytest.param("FILE:////data//X.csv", "file:///data/X.csv", id="file-slashes-collapsed"),
    pytest.param(
        "HTTPS://Example.COM/A//B/", "https://example.com/A/B", id="other-uri-path-case-kept"
    ),
    pytest.param("hdfs://namenode:8020/", "hdfs://namenode:8020", id="other-uri-authority-only"),
]


@pytest.mark.parametrize(("name", "canonical"), ACCEPTED)
def test_canonical_entity_accepts(name: str, canonical: str) -> None:
    assert canonical_entity(name) == canonical
    assert canonical_entity(canonical) == canonical  # the table's own idempotence check


# --- canonical_entity: refused ----------------------------------------------------------------

REFUSED = [
    pytest.param("", "empty", id="empty"),
    pytest.param(" \t ", "empty", id="only-whitespace"),
    pytest.param("orders", "name the schema: schema.table", id="bare-table"),
    pytest.param("a..b", "empty part", id="empty-middle-part"),
    pytest.param(".a", "empty part", id="leading-dot"),
    pytest.param("a.", "empty part", id="trailing-dot"),
    pytest.param("a.b.c.d", "at most three parts", id="four-parts"),
    pytest.param("1raw.orders", "not a SQL identifier", id="identifier-starts-with-digit"),
    pytest.param("raw.ord@rs", "not a SQL identifier", id="identifier-bad-character"),
    pytest.param("raw." + "t" * 129, "longer than 128", id="identifier-of-129-chars"),
    pytest.param("s3:/bucket/x", "neither a table name", id="neither-table-nor-uri"),
    pytest.param("raw. orders", "whitespace", id="inner-space"),
    pytest.param("raw.\u00a0orders", "whitespace", id="inner-nbsp"),
    pytest.param("raw.orders\x00x", "control", id="nul"),
    pytest.param("raw.ord\u200bers", "U+200B", id="zero-width-space"),
    *[
        pytest.param(f"s3://bucket/a{char}b", "must not contain the character", id=f"char-{char}")
        for char in "<>\"'`{}|\\^"
    ],
    pytest.param("1s3://bucket", "not a URI scheme", id="scheme-starts-with-digit"),
    pytest.param("://raw.orders", "not a URI scheme", id="empty-scheme"),
    pytest.param("supabase://orders", "name the schema", id="supabase-bare-table"),
    pytest.param("supabase://raw.orders/", "not a SQL identifier", id="supabase-trailing-slash"),
    pytest.param("postgres://u:pw@db/a.b.c", "credentials", id="postgres-credentials"),
    pytest.param("postgres://db/a.b.c?sslmode=off", "query", id="postgres-query"),
    pytest.param("postgres://db/a.b.c#x", "fragment", id="postgres-fragment"),
    pytest.param("postgres://db", "postgres://host[:port]/database.schema.table", id="pg-no-path"),
    pytest.param("postgres:///a.b.c", "postgres://host[:port]", id="postgres-no-host"),
    pytest.param("postgres://db/public.orders", "database.schema.table", id="postgres-2-parts"),
    pytest.param("postgres://db:0/a.b.c", "not a port", id="postgres-port-0"),
    pytest.param("postgres://db:65536/a.b.c", "not a port", id="postgres-port-too-big"),
    pytest.param("postgres://db:/a.b.c", "not a port", id="postgres-port-empty"),
    pytest.param("postgres://db:x/a.b.c", "not a port", id="postgres-port-not-digits"),
    pytest.param("postgres://300.1.1.1/a.b.c", "not an IPv4 address", id="postgres-bad-ipv4"),
    pytest.param("postgres://::1/a.b.c", "brackets", id="postgres-unbracketed-ipv6"),
    pytest.param("postgres://[::g]/a.b.c", "not an IPv6 address", id="postgres-bad-ipv6"),
    pytest.param("postgres://[fe80::1%eth0]/a.b.c", "zone", id="postgres-ipv6-zone"),
    pytest.param("postgres://db!/a.b.c", "not a host name", id="postgres-bad-host"),
    pytest.param("postgres://-db/a.b.c", "not a host name", id="postgres-host-leading-dash"),
    pytest.param("s3://key:secret@bucket/x", "credentials", id="s3-credentials"),
    pytest.param("s3:///x", "names no bucket", id="s3-no-bucket"),
    pytest.param("s3://ab/x", "not a bucket name", id="s3-bucket-too-short"),
    pytest.param("s3://" + "b" * 64, "not a bucket name", id="s3-bucket-too-long"),
    pytest.param("gs://my_bucket/x", "not a bucket name", id="gs-bucket-underscore"),
    pytest.param("s3://bucket/a/../b", "'.' and '..'", id="s3-dotdot-segment"),
    pytest.param("s3://bucket/./b", "'.' and '..'", id="s3-dot-segment"),
    pytest.param("abfss://u:pw@acct.dfs.core.windows.net/x", "container", id="abfss-credentials"),
    pytest.param("abfss://c@bad!host/x", "not [container@]account host", id="abfss-bad-host"),
    pytest.param("kafka://user:pw@broker/t", "credentials", id="uri-credentials"),
    pytest.param("kafka://", "names nothing", id="uri-empty"),
    pytest.param("file:///", "names nothing", id="file-root"),
    pytest.param("x://host?q/y", "'?' or '#'", id="uri-query-in-authority"),
    pytest.param("x://h\u00f4st/y", "ASCII", id="uri-non-ascii-host"),
    pytest.param("file:///data/../etc/passwd", "'.' and '..'", id="uri-dotdot-segment"),
]


@pytest.mark.parametrize(("name", "reason"), REFUSED)
def test_canonical_entity_refuses(name: str, reason: str) -> None:
    with pytest.raises(EntityNameError) as caught:
        canonical_entity(name)
    assert reason in str(caught.value)


def test_entity_name_error_is_a_value_error() -> None:
    assert issubclass(EntityNameError, ValueError)


KEY_PREFIX = "s3://bucket/"


@pytest.mark.parametrize("padding", ["", "  \n"], ids=["bare", "surrounding-whitespace"])
def test_1024_characters_are_accepted(padding: str) -> None:
    name = KEY_PREFIX + "k" * (MAX_ENTITY_LENGTH - len(KEY_PREFIX))
    assert len(name) == MAX_ENTITY_LENGTH == 1024
    assert canonical_entity(padding + name + padding) == name


def test_1025_characters_are_refused() -> None:
    name = KEY_PREFIX + "k" * (MAX_ENTITY_LENGTH + 1 - len(KEY_PREFIX))
    with pytest.raises(EntityNameError, match="longer than 1024 characters"):
        canonical_entity(name)


def test_the_length_is_checked_before_normalising_too() -> None:
    name = "s3://bucket//" + "k" * (MAX_ENTITY_LENGTH + 1 - len("s3://bucket//"))
    assert len(canonical_entity(name[:-1])) == MAX_ENTITY_LENGTH - 1  # the "//" collapses
    with pytest.raises(EntityNameError, match="longer than 1024 characters"):
        canonical_entity(name)


# --- entity_list ------------------------------------------------------------------------------

HUNDRED = [f"raw.t{i}" for i in range(MAX_DECLARED_ENTITIES)]


@pytest.mark.parametrize(
    ("value", "names"),
    [
        pytest.param("raw.a, raw.b", ["raw.a", "raw.b"], id="two"),
        pytest.param("raw.b,raw.a", ["raw.b", "raw.a"], id="order-kept"),
        pytest.param(" s3://Bkt/x/ ", ["s3://bkt/x"], id="one-canonicalised"),
        pytest.param(
            "Raw.A, raw.b, supabase://RAW.A, raw.a", ["raw.a", "raw.b"], id="duplicates-first-seen"
        ),
        pytest.param(",".join(HUNDRED), HUNDRED, id="exactly-the-maximum"),
        pytest.param(",".join(HUNDRED + HUNDRED[:50]), HUNDRED, id="maximum-with-duplicates"),
    ],
)
def test_entity_list_accepts(value: str, names: list[str]) -> None:
    assert entity_list(value) == names


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param("raw.a,,raw.b", "item 2 is empty", id="empty-middle"),
        pytest.param("raw.a, raw.b,", "item 3 is empty", id="trailing-comma"),
        pytest.param(",raw.a", "item 1 is empty", id="leading-comma"),
        pytest.param("", "names no entity", id="empty-list"),
        pytest.param("raw.a, raw.b, orders", 'item 3 ("orders"): ', id="bad-item-named"),
        pytest.param("raw.a, orders", "name the schema", id="bad-item-reason"),
        pytest.param(
            ",".join([*HUNDRED, "raw.one_more"]), "more than 100 distinct", id="over-the-maximum"
        ),
    ],
)
def test_entity_list_refuses(value: str, reason: str) -> None:
    with pytest.raises(EntityNameError) as caught:
        entity_list(value)
    assert reason in str(caught.value)


def test_entity_list_shortens_a_long_bad_item_in_the_message() -> None:
    with pytest.raises(EntityNameError) as caught:
        entity_list("raw.a, " + "x" * 500)
    assert len(str(caught.value)) < 200


# --- declared_entities / declared_entity_problems ---------------------------------------------


@pytest.mark.parametrize(
    ("inputs", "sources", "targets"),
    [
        pytest.param({}, [], [], id="nothing-declared"),
        pytest.param({"text": "not an entity", "mode": "full"}, [], [], id="other-keys-ignored"),
        pytest.param(
            {"source": "Raw.B", "sources": "raw.a, raw.b", "target": "s3://Bucket/out/"},
            ["raw.b", "raw.a"],
            ["s3://bucket/out"],
            id="source-before-sources-deduplicated",
        ),
        pytest.param(
            {"targets": "mart.x, mart.y", "target": "mart.y"},
            [],
            ["mart.y", "mart.x"],
            id="target-before-targets-whatever-the-dict-order",
        ),
        pytest.param(
            {"source": "raw.t0", "sources": ",".join(HUNDRED)},
            HUNDRED,
            [],
            id="maximum-counted-after-deduplication",
        ),
    ],
)
def test_declared_entities(inputs: dict[str, str], sources: list[str], targets: list[str]) -> None:
    assert declared_entities(inputs) == (sources, targets)
    assert declared_entity_problems(inputs) == []


@pytest.mark.parametrize(
    ("inputs", "message_start"),
    [
        pytest.param({"sources": "raw.a, x"}, 'sources: item 2 ("x"): ', id="item-in-sources"),
        pytest.param({"target": "orders"}, "target: ", id="single-target"),
        pytest.param(
            {"targets": "mart.x", "source": "x"}, "source: ", id="first-problem-in-key-order"
        ),
    ],
)
def test_declared_entities_names_the_key(inputs: dict[str, str], message_start: str) -> None:
    with pytest.raises(EntityNameError) as caught:
        declared_entities(inputs)
    assert str(caught.value).startswith(message_start)


def test_declared_entity_problems_lists_every_bad_key_without_prefix() -> None:
    problems = declared_entity_problems(
        {"source": "orders", "sources": "raw.a,,raw.b", "target": "s3://ab", "targets": "ok.t"}
    )
    assert [key for key, _ in problems] == ["source", "sources", "target"]
    reasons = dict(problems)
    assert "name the schema" in reasons["source"]
    assert reasons["sources"] == "item 2 is empty"
    assert "not a bucket name" in reasons["target"]
    assert not any(reason.startswith(key) for key, reason in problems)


def test_a_list_under_the_single_key_points_to_the_plural_key() -> None:
    [(key, reason)] = declared_entity_problems({"source": "raw.a,raw.b"})
    assert key == "source" and "'sources'" in reason


@pytest.mark.parametrize(("single", "plural"), [("source", "sources"), ("target", "targets")])
def test_the_maximum_counts_both_keys_of_a_side(single: str, plural: str) -> None:
    inputs = {single: "raw.one_more", plural: ",".join(HUNDRED)}
    assert declared_entity_problems(inputs) == [
        (plural, f"more than 100 distinct {plural} ('{single}' and '{plural}' together)")
    ]


def test_a_side_over_the_maximum_is_reported_once() -> None:
    inputs = {"source": "raw.a", "sources": ",".join([*HUNDRED, "raw.one_more"])}
    assert declared_entity_problems(inputs) == [
        ("sources", "the list names more than 100 distinct entities")
    ]


# --- OpenLineage ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("namespace", "name", "entity"),
    [
        pytest.param(
            "postgres://db.host:5432",
            "shop.public.orders",
            "postgres://db.host:5432/shop.public.orders",
            id="postgres",
        ),
        pytest.param(
            "postgres://DB.Host",
            "Shop.Public.Orders",
            "postgres://db.host:5432/shop.public.orders",
            id="postgres-canonicalised",
        ),
        pytest.param("s3://bucket", "curated/out", "s3://bucket/curated/out", id="s3"),
        pytest.param("s3://bucket/", "/curated/out", "s3://bucket/curated/out", id="s3-slashes"),
        pytest.param("s3://bucket", "/", "s3://bucket", id="s3-bucket-itself"),
        pytest.param(
            "bigquery", "project.dataset.table", "bigquery://project.dataset.table", id="bigquery"
        ),
        pytest.param("file", "/path/x.csv", "file:///path/x.csv", id="file"),
        pytest.param("file://", "/path/x.csv", "file:///path/x.csv", id="file-empty-authority"),
        pytest.param(
            "bigquery:///", "p.d.t", "bigquery://p.d.t", id="scheme-and-slashes-is-a-bare-scheme"
        ),
        pytest.param("supabase", "Raw.Orders", "raw.orders", id="platform-warehouse"),
        pytest.param("kafka://broker:9092", "orders", "kafka://broker:9092/orders", id="kafka"),
        pytest.param(
            "snowflake://org-account",
            "db.schema.table",
            "snowflake://org-account/db.schema.table",
            id="snowflake",
        ),
        pytest.param(
            "abfss://data@acct.dfs.core.windows.net",
            "lake/t",
            "abfss://data@acct.dfs.core.windows.net/lake/t",
            id="azure",
        ),
        pytest.param(
            "hdfs://namenode:8020", "/warehouse/t", "hdfs://namenode:8020/warehouse/t", id="hdfs"
        ),
    ],
)
def test_openlineage_entity(namespace: str, name: str, entity: str) -> None:
    assert openlineage_entity(namespace, name) == entity


@pytest.mark.parametrize(
    ("namespace", "name", "reason"),
    [
        pytest.param("", "raw.orders", "namespace is empty", id="empty-namespace"),
        pytest.param("s3://bucket", " ", "name is empty", id="empty-name"),
        pytest.param("my warehouse", "raw.orders", "neither scheme://authority", id="not-a-scheme"),
        pytest.param("supabase", "orders", "name the schema", id="canonical-refuses"),
        pytest.param("s3://ab", "x", "not a bucket name", id="bad-bucket"),
    ],
)
def test_openlineage_entity_refuses(namespace: str, name: str, reason: str) -> None:
    with pytest.raises(EntityNameError) as caught:
        openlineage_entity(namespace, name)
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("entity", "dataset"),
    [
        pytest.param("raw.orders", ("supabase", "raw.orders"), id="warehouse"),
        pytest.param("Raw.Orders", ("supabase", "raw.orders"), id="canonicalised-first"),
        pytest.param("postgres://h:5432/a.b.c", ("postgres://h:5432", "a.b.c"), id="postgres"),
        pytest.param("s3://bucket/a/b", ("s3://bucket", "a/b"), id="s3"),
        pytest.param("s3://bucket", ("s3://bucket", "/"), id="s3-bucket-itself"),
        pytest.param("bigquery://p.d.t", ("bigquery", "p.d.t"), id="bigquery"),
        pytest.param("file:///data/x", ("file", "/data/x"), id="file"),
        pytest.param("kafka://broker:9092", ("kafka", "broker:9092"), id="authority-only"),
    ],
)
def test_openlineage_dataset(entity: str, dataset: tuple[str, str]) -> None:
    assert openlineage_dataset(entity) == dataset


def test_openlineage_dataset_refuses_a_non_entity() -> None:
    with pytest.raises(EntityNameError, match="name the schema"):
        openlineage_dataset("orders")


# --- properties over generated names of every form --------------------------------------------

IDENTIFIER = st.from_regex(r"[A-Za-z_][A-Za-z0-9_$-]{0,15}", fullmatch=True)
LABEL = st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,8}[A-Za-z0-9])?", fullmatch=True)
LAST_LABEL = st.from_regex(r"[A-Za-z](?:[A-Za-z0-9-]{0,8}[A-Za-z0-9])?", fullmatch=True)
SLASHES = st.sampled_from(["/", "//", "///"])
# a key or path segment: printable, possibly non-ASCII, never a forbidden character nor "/"
SEGMENT = st.text(
    st.characters(
        codec="utf-8", categories=["L", "N", "P", "S"], exclude_characters="<>\"'`{}|\\^/"
    ),
    min_size=1,
    max_size=8,
).filter(lambda segment: segment not in (".", ".."))
SPECIAL_SCHEMES = {"supabase", "postgres", "postgresql", "s3", "s3a", "s3n", "gs", "abfss", "wasbs"}


@st.composite
def paths(draw: st.DrawFn) -> str:
    """Segments joined by runs of slashes, maybe with a leading and a trailing run."""
    segments = draw(st.lists(SEGMENT, max_size=4))
    text = "".join(draw(SLASHES) + segment for segment in segments)
    return text + draw(st.sampled_from(["", "/", "//"]))


@st.composite
def warehouse_names(draw: st.DrawFn) -> str:
    parts = draw(st.lists(IDENTIFIER, min_size=2, max_size=3))
    return draw(st.sampled_from(["", "supabase://", "SupaBase://"])) + ".".join(parts)


@st.composite
def postgres_names(draw: st.DrawFn) -> str:
    host = draw(
        st.one_of(
            st.builds(
                lambda labels, last: ".".join([*labels, last]),
                st.lists(LABEL, max_size=2),
                LAST_LABEL,
            ),
            st.ip_addresses(v=4).map(str),
            st.ip_addresses(v=6).map(lambda address: f"[{address.exploded.upper()}]"),
        )
    )
    port = draw(st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}")))
    table = ".".join(draw(st.lists(IDENTIFIER, min_size=3, max_size=3)))
    scheme = draw(st.sampled_from(["postgres", "postgresql", "PostgreSQL"]))
    return f"{scheme}://{host}{port}/{table}"


@st.composite
def object_store_names(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["s3", "S3", "s3a", "s3n", "gs", "abfss", "wasbs"]))
    if scheme in ("abfss", "wasbs"):
        container = draw(st.from_regex(r"[a-z0-9][a-z0-9-]{2,10}", fullmatch=True))
        bucket = f"{container}@{draw(LAST_LABEL)}.dfs.core.windows.net"
    else:
        bucket = draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9.-]{1,20}[A-Za-z0-9]", fullmatch=True))
    return f"{scheme}://{bucket}{draw(paths())}"


@st.composite
def other_uris(draw: st.DrawFn) -> str:
    scheme = draw(
        st.from_regex(r"[A-Za-z][A-Za-z0-9+.-]{0,8}", fullmatch=True).filter(
            lambda s: s.lower() not in SPECIAL_SCHEMES
        )
    )
    authority = draw(st.from_regex(r"[A-Za-z0-9._:-]{0,15}", fullmatch=True))
    path = draw(paths())
    if not authority and not path.strip("/"):
        path = "/x"  # scheme:// and file:/// name nothing
    return f"{scheme}://{authority}{path}"


ANY_NAME = st.one_of(warehouse_names(), postgres_names(), object_store_names(), other_uris())
PADDED_NAME = st.builds(
    lambda before, name, after: before + name + after,
    st.sampled_from(["", " ", "\t\n"]),
    ANY_NAME,
    st.sampled_from(["", " ", "\n"]),
)


@given(PADDED_NAME)
def test_canonical_entity_is_idempotent(name: str) -> None:
    canonical = canonical_entity(name)
    assert canonical_entity(canonical) == canonical
    assert not any(char.isspace() for char in canonical)


@given(warehouse_names())
def test_warehouse_names_ignore_case(name: str) -> None:
    assert canonical_entity(name.upper()) == canonical_entity(name.lower())


@given(ANY_NAME)
def test_openlineage_round_trip(name: str) -> None:
    entity = canonical_entity(name)
    namespace, dataset_name = openlineage_dataset(entity)
    assert namespace and dataset_name  # OpenLineage wants both
    assert openlineage_entity(namespace, dataset_name) == entity


# --- pydantic ---------------------------------------------------------------------------------


class Edge(BaseModel):
    source: CanonicalEntity
    target: CanonicalEntity


def test_canonical_entity_type_returns_the_canonical_value() -> None:
    edge = Edge(source=" supabase://Raw.Orders ", target="S3A://Bucket//out/")
    assert (edge.source, edge.target) == ("raw.orders", "s3://bucket/out")


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        pytest.param("orders", "name the schema", id="reason-is-the-detail"),
        pytest.param("", "at least 1 character", id="empty"),
        pytest.param("x" * (MAX_ENTITY_LENGTH + 1), "at most 1024 characters", id="too-long"),
    ],
)
def test_canonical_entity_type_refuses(value: str, detail: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Edge(source=value, target="raw.orders")
    assert detail in str(caught.value)


def test_canonical_entity_type_documents_itself() -> None:
    schema = Edge.model_json_schema()["properties"]["source"]
    assert schema["maxLength"] == MAX_ENTITY_LENGTH
    assert schema["examples"] == ["raw.orders"]
    assert "schema.table" in schema["description"] and "s3://" in schema["description"]
