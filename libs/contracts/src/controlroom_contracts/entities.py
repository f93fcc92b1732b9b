"""Lineage entity names: one canonical spelling per dataset (pure functions, plus a pydantic type).

Users name datasets in job specs (``spec.inputs.source``, ``sources``, ``target``, ``targets``)
and OpenLineage events name them as (namespace, name). Both are normalised to one canonical
string, so that the same dataset written differently is the same node of the lineage graph.

Canonical form (surrounding whitespace is stripped first; at most 1,024 characters; never any
whitespace, control or invisible character, nor any of ``< > " ' ` { } | \\ ^``):

``schema.table`` or ``database.schema.table``
    A table of the platform's own warehouse: two or three SQL identifiers
    (``[A-Za-z_][A-Za-z0-9_$-]*``, at most 128 characters each), lowercased, since unquoted SQL
    identifiers are case-insensitive. ``supabase://Raw.Orders`` is written ``raw.orders``. A bare
    ``orders`` is refused: without its schema it is ambiguous.
``postgres://host:port/database.schema.table``
    Another PostgreSQL database, as in the OpenLineage naming spec. ``postgresql://`` is written
    ``postgres://``, the host is lowercased (an IPv6 address is bracketed and compressed), the
    port defaults to 5432 and the three identifiers are lowercased. No credentials, query or
    fragment.
``s3://bucket/key`` (also ``gs://``, ``abfss://``, ``wasbs://``)
    An object store. ``s3a://`` and ``s3n://`` are written ``s3://``. The bucket is lowercased
    (for s3 and gs: 3 to 63 of ``a-z 0-9 . -``; for abfss and wasbs: ``[container@]host``); the
    key keeps its case, since object keys are case-sensitive, with repeated slashes collapsed and
    no trailing slash. ``s3://bucket`` is the bucket itself. ``.`` and ``..`` segments are refused.
``scheme://authority/path``
    Any other URI: the scheme and the authority (everything up to the first ``/``) are
    lowercased, the path keeps its case, with repeated slashes collapsed, no trailing slash and
    no ``.`` or ``..`` segment. An empty authority is kept: ``file:///data/x.csv``. Credentials
    (``@`` in the authority) are refused. Percent-encoding is not decoded.

The canonical form is a fixed point: ``canonical_entity(canonical_entity(x)) ==
canonical_entity(x)``.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Mapping
from typing import Annotated, Final

from pydantic import AfterValidator, Field

MAX_ENTITY_LENGTH: Final = 1024
MAX_DECLARED_ENTITIES: Final = 100  # per side (sources or targets) of one run
MAX_IDENTIFIER_LENGTH: Final = 128
POSTGRES_DEFAULT_PORT: Final = 5432

# The keys of a job's spec.inputs that declare lineage, in the order their names are taken.
SOURCE_KEYS: Final = ("source", "sources")
TARGET_KEYS: Final = ("target", "targets")

# The OpenLineage namespace of the platform's own warehouse (bare schema.table entities).
WAREHOUSE_NAMESPACE: Final = "supabase"

_FORBIDDEN = frozenset("<>\"'`{}|\\^")
# Cc: control (NUL included); Cf: invisible format characters such as U+200B, which would make
# two names look alike; Cs: lone surrogates, which cannot be stored as UTF-8.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$-]*")
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"  # "_" too: container host names use it
_DNS_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_IPV4_LIKE = re.compile(r"[0-9.]+")
_PORT = re.compile(r"[0-9]{1,5}")
_BUCKET = re.compile(r"[a-z0-9.-]{3,63}")
_AZURE_CONTAINER = re.compile(r"[a-z0-9$][a-z0-9$-]{0,62}")

_POSTGRES_SCHEMES = frozenset({"postgres", "postgresql"})
# scheme as written -> canonical scheme; the Hadoop s3a/s3n connectors read the same buckets
_OBJECT_STORE_SCHEMES: Final = {
    "s3": "s3",
    "s3a": "s3",
    "s3n": "s3",
    "gs": "gs",
    "abfss": "abfss",
    "wasbs": "wasbs",
}
_BUCKET_SCHEMES = frozenset({"s3", "gs"})

_CREDENTIALS = "credentials do not belong in an entity name; remove the 'user:password@' part"
_POSTGRES_FORM = "a postgres entity is postgres://host[:port]/database.schema.table"
_ACCEPTED_FORMS = (
    "A lineage entity (dataset): schema.table or database.schema.table in the platform's"
    " warehouse (also written supabase://schema.table), postgres://host[:port]/db.schema.table,"
    " s3://bucket/key (also s3a, s3n, gs, abfss, wasbs) or another scheme://authority/path URI."
    " Stored in one canonical form: warehouse identifiers, schemes and hosts lowercased,"
    " the postgres port made explicit, repeated and trailing slashes removed."
)


class EntityNameError(ValueError):
    """The reason a name is not an entity name (a sentence, for a 422 detail)."""


def canonical_entity(name: str) -> str:
    """The canonical spelling of an entity name; EntityNameError says why there is none."""
    name = name.strip()
    if not name:
        raise EntityNameError("the entity name is empty")
    if len(name) > MAX_ENTITY_LENGTH:  # checked first: nothing below runs on a huge input
        raise EntityNameError(f"the entity name is longer than {MAX_ENTITY_LENGTH} characters")
    _check_characters(name)
    scheme, sep, rest = name.partition("://")
    if not sep:
        canonical = _warehouse_table(name)
    else:
        canonical = _uri(scheme, rest)
    if len(canonical) > MAX_ENTITY_LENGTH:  # a default port can make the name longer
        raise EntityNameError(
            f"the entity name is longer than {MAX_ENTITY_LENGTH} characters once normalised"
        )
    return canonical


def _check_characters(name: str) -> None:
    for char in name:
        if char.isspace():
            raise EntityNameError("the entity name must not contain whitespace")
        if unicodedata.category(char) in _INVISIBLE_CATEGORIES:
            raise EntityNameError(
                "the entity name must not contain control or invisible characters"
                f" (U+{ord(char):04X})"
            )
        if char in _FORBIDDEN:
            raise EntityNameError(f"the entity name must not contain the character {char!r}")


def _uri(scheme: str, rest: str) -> str:
    if not _SCHEME.fullmatch(scheme):
        raise EntityNameError(
            f"{_shown(scheme)} is not a URI scheme"
            " (a letter, then letters, digits, '+', '.' or '-')"
        )
    scheme = scheme.lower()
    if scheme == WAREHOUSE_NAMESPACE:
        return _warehouse_table(rest)  # the platform's own warehouse is spelled bare
    if scheme in _POSTGRES_SCHEMES:
        return _postgres(rest)
    if scheme in _OBJECT_STORE_SCHEMES:
        return _object_store(_OBJECT_STORE_SCHEMES[scheme], rest)
    return _other_uri(scheme, rest)


def _warehouse_table(name: str) -> str:
    parts = name.split(".")
    if len(parts) == 1 and not _IDENTIFIER.fullmatch(name):
        raise EntityNameError(
            f"{_shown(name)} is neither a table name (schema.table) nor a URI (scheme://...)"
        )
    if len(parts) == 1:
        raise EntityNameError(
            f"{_shown(name)} is ambiguous without its schema; name the schema: schema.table"
        )
    if len(parts) > 3:
        raise EntityNameError(
            "a table name has at most three parts: schema.table or database.schema.table"
        )
    return ".".join(_identifier(part) for part in parts)


def _identifier(part: str) -> str:
    if not part:
        raise EntityNameError(
            "a table name has an empty part; write schema.table or database.schema.table"
        )
    if len(part) > MAX_IDENTIFIER_LENGTH:
        raise EntityNameError(f"a SQL identifier is longer than {MAX_IDENTIFIER_LENGTH} characters")
    if not _IDENTIFIER.fullmatch(part):
        raise EntityNameError(
            f"{_shown(part)} is not a SQL identifier"
            " (a letter or '_', then letters, digits, '_', '$' or '-')"
        )
    return part.lower()


def _postgres(rest: str) -> str:
    authority, _, path = rest.partition("/")
    if "@" in authority:
        raise EntityNameError(_CREDENTIALS)
    if "?" in rest or "#" in rest:
        raise EntityNameError("a query (?) or fragment (#) does not belong in an entity name")
    if not authority or not path:
        raise EntityNameError(_POSTGRES_FORM)
    host, port = _host_port(authority)
    parts = path.split(".")
    if len(parts) != 3:
        raise EntityNameError(_POSTGRES_FORM)
    table = ".".join(_identifier(part) for part in parts)
    return f"postgres://{host}:{port or POSTGRES_DEFAULT_PORT}/{table}"


def _host_port(authority: str) -> tuple[str, int | None]:
    """(canonical host, port or None) of ``host[:port]``; an IPv6 host comes bracketed."""
    if authority.startswith("["):
        inner, bracket, after = authority[1:].partition("]")
        if not bracket or (after and not after.startswith(":")):
            raise EntityNameError(f"{_shown(authority)} is not [IPv6 address][:port]")
        host = f"[{_ipv6(inner)}]"
        port_text = after[1:] if after else None
    else:
        host_text, colon, port_text_or_empty = authority.partition(":")
        if ":" in port_text_or_empty:
            raise EntityNameError("an IPv6 host must be written in brackets: [::1]")
        host = _host(host_text)
        port_text = port_text_or_empty if colon else None
    return host, None if port_text is None else _port(port_text)


def _ipv6(text: str) -> str:
    if "%" in text:  # a zone names an interface of one machine, not a database server
        raise EntityNameError("an IPv6 zone (%...) does not belong in an entity name")
    try:
        return ipaddress.IPv6Address(text.lower()).compressed
    except ValueError:
        raise EntityNameError(f"{_shown(text)} is not an IPv6 address") from None


def _host(text: str) -> str:
    host = text.lower()
    if _IPV4_LIKE.fullmatch(host):  # all digits and dots: only an IPv4 address reads so
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise EntityNameError(f"{_shown(text)} is not an IPv4 address") from None
    if len(host) > 253 or not host.isascii() or not _DNS_NAME.fullmatch(host):
        raise EntityNameError(
            f"{_shown(text)} is not a host name, an IPv4 address or a bracketed IPv6 address"
        )
    return host


def _port(text: str) -> int:
    if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise EntityNameError(f"{_shown(text)} is not a port (1 to 65535)")
    return int(text)


def _object_store(scheme: str, rest: str) -> str:
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise EntityNameError(f"the {scheme}:// entity names no bucket")
    bucket = bucket.lower()
    if scheme in _BUCKET_SCHEMES:
        if "@" in bucket:
            raise EntityNameError(_CREDENTIALS)
        if not _BUCKET.fullmatch(bucket):
            raise EntityNameError(
                f"{_shown(bucket)} is not a bucket name (3 to 63 letters, digits, '.' or '-')"
            )
    else:
        bucket = _azure_authority(bucket)
    path = _clean_path(key)
    return f"{scheme}://{bucket}/{path}" if path else f"{scheme}://{bucket}"


def _azure_authority(authority: str) -> str:
    # abfss/wasbs put the container before an "@": container@account.dfs.core.windows.net,
    # so "@" is not a credential here; a "user:password" still fails the host check (":").
    container, at, host = authority.rpartition("@")
    if at and not _AZURE_CONTAINER.fullmatch(container):
        raise EntityNameError(f"{_shown(container)} is not a container name")
    if not host.isascii() or not _DNS_NAME.fullmatch(host):
        raise EntityNameError(f"{_shown(authority)} is not [container@]account host")
    return authority


def _other_uri(scheme: str, rest: str) -> str:
    authority, _, path = rest.partition("/")
    if "@" in authority:
        raise EntityNameError(_CREDENTIALS)
    if "?" in authority or "#" in authority:
        raise EntityNameError("a URI authority (host) must not contain '?' or '#'")
    if not authority.isascii():
        raise EntityNameError(
            "a URI authority (host) must be ASCII; write international names in punycode"
        )
    path = _clean_path(path)
    if not authority and not path:
        raise EntityNameError(f"the {scheme}:// URI names nothing")
    if not authority:
        return f"{scheme}:///{path}"  # file:///data/x.csv: an empty authority is meaningful
    return f"{scheme}://{authority.lower()}/{path}" if path else f"{scheme}://{authority.lower()}"


def _clean_path(path: str) -> str:
    """``a//b/`` -> ``a/b``: the segments, without the empty ones that extra slashes make."""
    segments = [segment for segment in path.split("/") if segment]
    if any(segment in (".", "..") for segment in segments):
        # a/./b and a/b would otherwise be two nodes for one object
        raise EntityNameError("path segments '.' and '..' are not allowed in an entity name")
    return "/".join(segments)


def _shown(text: str, limit: int = 60) -> str:
    """``text`` quoted for an error message: shortened, non-printable characters escaped."""
    short = text if len(text) <= limit else text[: limit - 1] + "…"
    return '"' + "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in short) + '"'


def entity_list(value: str) -> list[str]:
    """The canonical names of a comma-separated list, first-seen order, without duplicates."""
    if not value.strip():
        raise EntityNameError("the list names no entity")
    names: dict[str, None] = {}  # a dict keeps insertion order: first seen wins
    for position, item in enumerate(value.split(","), start=1):
        item = item.strip()
        if not item:
            raise EntityNameError(f"item {position} is empty")
        try:
            names[canonical_entity(item)] = None
        except EntityNameError as error:
            raise EntityNameError(f"item {position} ({_shown(item)}): {error}") from None
        # stop at once: a long list is refused without canonicalising the rest of it
        if len(names) > MAX_DECLARED_ENTITIES:
            raise EntityNameError(
                f"the list names more than {MAX_DECLARED_ENTITIES} distinct entities"
            )
    return list(names)


def declared_entities(inputs: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(sources, targets) a job's ``spec.inputs`` declares; EntityNameError names the key."""
    sources, targets, problems = _declared(inputs)
    if problems:
        key, reason = problems[0]
        raise EntityNameError(f"{key}: {reason}")
    return sources, targets


def declared_entity_problems(inputs: Mapping[str, str]) -> list[tuple[str, str]]:
    """Every (key, reason) that makes ``inputs`` declare a bad entity; empty when all are fine."""
    return _declared(inputs)[2]


def _declared(
    inputs: Mapping[str, str],
) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    problems: list[tuple[str, str]] = []
    sources = _side(inputs, SOURCE_KEYS, problems)
    targets = _side(inputs, TARGET_KEYS, problems)
    return sources, targets, problems


def _side(
    inputs: Mapping[str, str],
    keys: tuple[str, str],
    problems: list[tuple[str, str]],
) -> list[str]:
    """The names of one side (``source`` then ``sources``), noting problems as it goes."""
    single, plural = keys
    names: dict[str, None] = {}
    if single in inputs:
        try:
            names[canonical_entity(inputs[single])] = None
        except EntityNameError as error:
            hint = f" (for several names use '{plural}')" if "," in inputs[single] else ""
            problems.append((single, f"{error}{hint}"))
    if plural in inputs:
        try:
            names.update(dict.fromkeys(entity_list(inputs[plural])))
        except EntityNameError as error:
            problems.append((plural, str(error)))
    # one name over the maximum at most (entity_list refuses a longer list on its own), and only
    # when both keys are fine, so this never repeats a problem already noted
    if len(names) > MAX_DECLARED_ENTITIES:
        problems.append(
            (
                plural,
                f"more than {MAX_DECLARED_ENTITIES} distinct {plural}"
                f" ('{single}' and '{plural}' together)",
            )
        )
    return list(names)


def openlineage_entity(namespace: str, name: str) -> str:
    """The canonical entity of an OpenLineage dataset (namespace, name)."""
    namespace, name = namespace.strip(), name.strip()
    if not namespace:
        raise EntityNameError("the OpenLineage namespace is empty")
    if not name:
        raise EntityNameError("the OpenLineage dataset name is empty")
    scheme, sep, authority = namespace.partition("://")
    authority = authority.rstrip("/")
    if sep and authority:  # s3://bucket + curated/out -> s3://bucket/curated/out
        return canonical_entity(f"{scheme}://{authority}/{name.lstrip('/')}")
    # a bare scheme (bigquery, file), or "file://" with nothing after it, which means the same
    if not _SCHEME.fullmatch(scheme):
        raise EntityNameError(
            f"the OpenLineage namespace {_shown(namespace)} is neither scheme://authority"
            " nor a bare scheme such as 'bigquery'"
        )
    return canonical_entity(f"{scheme}://{name}")


def openlineage_dataset(entity: str) -> tuple[str, str]:
    """The OpenLineage (namespace, name) of an entity: the inverse of openlineage_entity.

    A bucket without a key (``s3://bucket``) is (``s3://bucket``, ``/``): the namespace stays the
    bucket, as for its objects, and OpenLineage wants a non-empty name.
    """
    entity = canonical_entity(entity)
    scheme, sep, rest = entity.partition("://")
    if not sep:
        return WAREHOUSE_NAMESPACE, entity
    authority, slash, path = rest.partition("/")
    if not authority:
        return scheme, f"/{path}"  # file:///data/x -> (file, /data/x)
    if slash:
        return f"{scheme}://{authority}", path
    if scheme in _OBJECT_STORE_SCHEMES:
        return entity, "/"
    return scheme, rest  # bigquery://p.d.t -> (bigquery, p.d.t)


def _canonical(value: str) -> str:
    # pydantic reports a ValueError's message as the 422 detail
    try:
        return canonical_entity(value)
    except EntityNameError as error:
        raise ValueError(str(error)) from None


CanonicalEntity = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_ENTITY_LENGTH,
        description=_ACCEPTED_FORMS,
        examples=["raw.orders"],
    ),
    AfterValidator(_canonical),
]
